"""``outcomes``: every workflow the workload started reached the outcome it would have reached
without faults.

- An exact expectation (the built-in workload): the row is SUCCESS with the expected output, and
  its event (when one is expected) has the expected value; its descendants as below.
- Otherwise (an app's workload, which cannot say what its workflows return): the workflow and
  every descendant (its children, theirs, ...) ended: none is PENDING, ENQUEUED or DELAYED;
  none was dead-lettered (MAX_RECOVERY_ATTEMPTS_EXCEEDED: the faults used up its recovery
  attempts); and none is ERROR from an infrastructure cause (see errors_cause.py). An ERROR of
  the app's own making and a CANCELLED workflow are outcomes the app chose.

A missing row is a violation: an expected workflow, or a child its parent recorded starting.
Descendants come from the rows' ``parent_workflow_id`` and the parents' recorded child ids; with
neither in the history, from DBOS's default child id ``<parent>-<step position>``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from runtime.serialization import deserialize
from sysdb.chaos_history import ChaosHistoryRows, EventValue, FinalStatus

from .errors_cause import describe_error, infrastructure_cause
from .model import ExpectedOutcome, InvariantResult, Violation
from .replay import evidence

__all__ = ["check_outcomes", "descendants"]

UNFINISHED = ("PENDING", "ENQUEUED", "DELAYED")
DEAD_LETTERED = "MAX_RECOVERY_ATTEMPTS_EXCEEDED"
_TITLE = "every workflow reached its outcome: none unfinished, none ERROR from an infrastructure cause"
_INFRA = (
    "infrastructure causes: psycopg/psycopg_pool and pgfleet's sysdb errors, DBOSWorkflowFencedError, "
    "DBOSDatabaseUnavailableError, DBOSNotLaunchedError, a deserialization failure"
)


def _children(history: ChaosHistoryRows) -> dict[str, set[str]]:
    children: dict[str, set[str]] = defaultdict(set)
    for s in history.statuses:
        if s.parent_workflow_id is not None:
            children[s.parent_workflow_id].add(s.workflow_uuid)
    for w in history.writes:
        # A start or enqueue records the child under its own name; DBOS.getResult and the like
        # name the workflow they read, which need not be a child.
        if w.kind == "output" and w.child_workflow_id is not None and not (w.function_name or "").startswith("DBOS."):
            children[w.workflow_uuid].add(w.child_workflow_id)
    if not children:  # the history names no parent: DBOS's default child ids, <parent>-<position>
        ids = {s.workflow_uuid for s in history.statuses}
        for workflow_id in ids:
            match = re.fullmatch(r"(.+)-\d+", workflow_id)
            if match is not None and match.group(1) in ids:
                children[match.group(1)].add(workflow_id)
    return children


def descendants(workflow_id: str, children: dict[str, set[str]]) -> list[str]:
    """Every workflow below ``workflow_id`` (children, theirs, ...), in a stable order."""
    found: list[str] = []
    todo = sorted(children.get(workflow_id, ()))
    seen = {workflow_id}
    while todo:
        child = todo.pop(0)
        if child in seen:
            continue
        seen.add(child)
        found.append(child)
        todo += sorted(children.get(child, ()))
    return found


def _status_evidence(s: FinalStatus) -> dict[str, Any]:
    return evidence(s, output=(s.output or "")[:200] or None, error=(s.error or "")[:200] or None,
                    error_repr=describe_error(s.error, s.serialization))  # fmt: skip


def _exact(e: ExpectedOutcome, s: FinalStatus, events: dict[tuple[str, str], EventValue]) -> list[Violation]:
    if s.status != "SUCCESS":
        why = describe_error(s.error, s.serialization)
        return [Violation(f"{e.workflow_id} ended {s.status} on {s.executor_id}, expected SUCCESS: {why}", [_status_evidence(s)])]
    found: list[Violation] = []
    try:
        output = deserialize(s.output, s.serialization, what="output")
        if output != e.output:
            found.append(Violation(f"{e.workflow_id} returned {output!r}, expected {e.output!r}", [_status_evidence(s)]))
    except Exception as exc:
        found.append(Violation(f"{e.workflow_id}: its recorded output cannot be read: {exc}", [_status_evidence(s)]))
    if e.event_key is not None:
        event = events.get((e.workflow_id, e.event_key))
        if event is None:
            found.append(Violation(f"{e.workflow_id} has no event {e.event_key!r}, expected {e.event_value!r}", [_status_evidence(s)]))
            return found
        try:
            value = deserialize(event.value, event.serialization, what="event")
            if value != e.event_value:
                found.append(Violation(f"{e.workflow_id} event {e.event_key!r} is {value!r}, expected {e.event_value!r}", [evidence(event)]))
        except Exception as exc:
            found.append(Violation(f"{e.workflow_id} event {e.event_key!r} cannot be read: {exc}", [evidence(event)]))
    return found


def _ended(workflow_id: str, s: FinalStatus, root: str) -> Violation | None:
    of = "" if workflow_id == root else f" (a descendant of {root})"
    if s.status in UNFINISHED:
        return Violation(f"{workflow_id}{of} never ended: it is {s.status} on {s.executor_id}", [_status_evidence(s)])
    if s.status == DEAD_LETTERED:
        return Violation(f"{workflow_id}{of} was dead-lettered ({DEAD_LETTERED}): the faults used up its recovery attempts", [_status_evidence(s)])
    if s.status == "ERROR":
        cause = infrastructure_cause(s.error, s.serialization)
        if cause is not None:
            why = describe_error(s.error, s.serialization)
            return Violation(f"{workflow_id}{of} ended ERROR from an infrastructure cause, {cause}: {why}", [_status_evidence(s)])
    return None


def check_outcomes(history: ChaosHistoryRows, expected: list[ExpectedOutcome]) -> InvariantResult:
    """Each expected workflow (and, for an app's workload, each descendant) reached its outcome."""
    rows = {s.workflow_uuid: s for s in history.statuses}
    events = {(e.workflow_uuid, e.key): e for e in history.events}
    children = _children(history)
    found: list[Violation] = []
    checked = 0
    app_errors = 0
    for e in expected:
        tree = [e.workflow_id, *descendants(e.workflow_id, children)]
        for workflow_id in tree:
            checked += 1
            s = rows.get(workflow_id)
            if s is None:
                parent = "" if workflow_id == e.workflow_id else f" (a descendant of {e.workflow_id}, recorded as started)"
                found.append(Violation(f"{workflow_id}{parent} has no workflow row", [{"workflow_uuid": workflow_id, "expected_by": e.workflow_id}]))
            elif e.exact and workflow_id == e.workflow_id:
                found += _exact(e, s, events)
            else:
                problem = _ended(workflow_id, s, e.workflow_id)
                app_errors += problem is None and s.status == "ERROR"
                if problem is not None:
                    found.append(problem)
    exact = sum(e.exact for e in expected)
    parts = [f"{exact} with an exact result (SUCCESS, output, event), {len(expected) - exact} the app's" if expected else "the workload reported no workflow"]
    if app_errors:
        parts.append(f"{app_errors} ended ERROR from the app's own exceptions (allowed)")
    return InvariantResult("outcomes", _TITLE, checked, found, "; ".join([*parts, _INFRA]))
