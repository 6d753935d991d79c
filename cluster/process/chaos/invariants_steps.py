"""The step invariants of a chaos run, over the attempt ledger (every start of a step body) and the
output log (every commit of a step's output):

- ``no-rerun-after-record``: a (workflow, step position) whose output was committed at T has no
  body start after T. Its own body, and a losing owner's, started before T.
- ``no-start-after-takeover``: an ownership (workflow, executor, epoch) ends at the first commit
  that changes the row's epoch or takes it out of PENDING (a takeover, a requeue, a recovery,
  the end). A body started under it after that was started by a process that had lost the
  workflow (paused, partitioned, fenced). pgfleet checks its membership lease before each body,
  and a lease that passes is at least one heartbeat before any takeover, so a correct run needs
  no slack. A start under an ownership the row never had is reported too. A cancel is the one
  end an owner learns of late (it stops at its next checkpoint, sysdb/sql/cancel_workflows.sql):
  a body started after its workflow was cancelled, before anyone else owned it, is counted, not
  reported.
- ``outputs-recorded-once``: no step position's output row inserted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sysdb.chaos_history import ChaosHistoryRows, OwnershipChange, StepStart, TakeoverRecord, WriteRecord

from .model import InvariantResult, Violation
from .replay import Ownership, around, changes_by_workflow, evidence, replay_ownership, ts

__all__ = ["check_no_rerun_after_record", "check_no_start_after_takeover", "check_outputs_recorded_once", "first_outputs"]

def first_outputs(writes: list[WriteRecord]) -> dict[tuple[str, int], WriteRecord]:
    """(workflow, function_id) → the first commit of its output."""
    first: dict[tuple[str, int], WriteRecord] = {}
    for w in writes:
        if w.kind != "output" or w.function_id is None:
            continue
        key = (w.workflow_uuid, w.function_id)
        if key not in first or (w.at, w.seq) < (first[key].at, first[key].seq):
            first[key] = w
    return first


def body_starts(history: ChaosHistoryRows) -> list[StepStart]:
    """The ledger rows of bodies that ran: a row the database refused (its owner had lost the
    workflow as the row was written) stopped its body before it started."""
    return [s for s in history.starts if s.owned]


def _refused_note(history: ChaosHistoryRows) -> str:
    refused = sum(1 for s in history.starts if not s.owned)
    return f"{refused} starts refused by the database (their owner had lost the workflow; the body did not run)" if refused else ""


def _who(start: StepStart) -> str:
    return f"{start.executor_id}@{start.owner_epoch} pid {start.pid}"


def check_no_rerun_after_record(history: ChaosHistoryRows) -> InvariantResult:
    """No body start of a step position after its output was committed."""
    recorded = first_outputs(history.writes)
    found: list[Violation] = []
    checked = 0
    for start in body_starts(history):
        record = recorded.get((start.workflow_uuid, start.function_id))
        if record is None:
            continue
        checked += 1
        if start.at > record.at:
            found.append(Violation(
                f"{start.workflow_uuid} step {start.function_id} ({start.function_name}) started again at {ts(start.at)}, "
                f"{start.at - record.at:.3f}s after its output was recorded at {ts(record.at)}, by {_who(start)}",
                [evidence(start), evidence(record)],
            ))
    note = "" if checked else "no step body started at a position whose output was recorded: nothing to compare"
    return InvariantResult("no-rerun-after-record", "no completed step ran again", checked, found, note)


def _how_it_ended(own: Ownership, takeovers: list[TakeoverRecord]) -> tuple[str, TakeoverRecord | None]:
    for t in takeovers:
        if t.workflow_uuid == own.workflow_uuid and t.from_epoch == own.epoch:
            where = f"requeued to {t.requeued_to}" if t.requeued_to else f"given to {t.to_executor_id}@{t.to_epoch}"
            return f"taken over by {t.by_executor_id} (term {t.leader_term}) at {ts(t.at)}, {where}", t
    nxt = own.ended_by
    assert nxt is not None  # only an ended ownership is asked about
    if nxt.status != "PENDING":
        return f"row became {nxt.status} at {ts(nxt.at)}", None
    return f"row re-owned by {nxt.executor_id}@{nxt.owner_epoch} at {ts(nxt.at)}", None


def _stale_start(start: StepStart, own: Ownership, takeovers: list[TakeoverRecord], changes: list[OwnershipChange]) -> Violation:
    assert own.end is not None
    how, takeover = _how_it_ended(own, takeovers)
    rows = [evidence(start), *(evidence(c) for c in around(changes, start.at))]
    if takeover is not None:
        rows.append(evidence(takeover))
    return Violation(
        f"{start.workflow_uuid} step {start.function_id} ({start.function_name}) started at {ts(start.at)} by {_who(start)}, "
        f"{start.at - own.end:.3f}s after that ownership ended: {how}; evidence: the body, the row's ownership changes"
        + (", the takeover" if takeover is not None else ""),
        rows,
    )


def _cancelled_unowned(own: Ownership, start: StepStart, owned: Iterable[Ownership]) -> bool:
    """Whether the ownership was ended by a cancel and nobody owned the workflow since, up to the start."""
    if own.ended_by is None or own.ended_by.status != "CANCELLED":
        return False
    return not any(o.workflow_uuid == own.workflow_uuid and own.start < o.start <= start.at for o in owned)


def check_no_start_after_takeover(history: ChaosHistoryRows) -> InvariantResult:
    """No step body started under an ownership after it ended, nor under one the row never had."""
    owned = replay_ownership(history.ownership)
    by_workflow = changes_by_workflow(history.ownership)
    takeovers = sorted(history.takeovers, key=lambda t: t.at)
    found: list[Violation] = []
    after_cancel = 0
    bodies = body_starts(history)
    for start in bodies:
        own = owned.get((start.workflow_uuid, start.owner_epoch))
        changes = by_workflow.get(start.workflow_uuid, [])
        if own is None or own.executor_id != start.executor_id:
            found.append(Violation(
                f"{start.workflow_uuid} step {start.function_id} ({start.function_name}) started at {ts(start.at)} by {_who(start)}: "
                "the workflow's row never had that owner and epoch",
                [evidence(start), *(evidence(c) for c in around(changes, start.at))],
            ))
        elif own.end is not None and start.at > own.end:
            if _cancelled_unowned(own, start, owned.values()):
                after_cancel += 1
            else:
                found.append(_stale_start(start, own, takeovers, changes))
    notes = [] if history.starts else ["the attempt ledger is empty: no step body start to check (was attempt_ledger on?)"]
    if after_cancel:
        notes.append(
            f"{after_cancel} bodies started after their workflow was cancelled, before anyone else owned it "
            "(allowed: a cancel stops a workflow at its next checkpoint)"
        )
    notes.append(_refused_note(history))
    return InvariantResult(
        "no-start-after-takeover", "no step body started by a process after its workflow was taken over", len(bodies), found,
        "; ".join(n for n in notes if n),
    )


def check_outputs_recorded_once(history: ChaosHistoryRows) -> InvariantResult:
    """No step position's output inserted twice."""
    by_key: dict[tuple[str, int], list[WriteRecord]] = defaultdict(list)
    for w in history.writes:
        if w.kind == "output" and w.function_id is not None:
            by_key[(w.workflow_uuid, w.function_id)].append(w)
    found = [
        Violation(
            f"{workflow} step {fid}: its output row was inserted {len(rows)} times (at {', '.join(ts(r.at) for r in rows)}, "
            f"by {', '.join(r.writer for r in rows)})",
            [evidence(r) for r in rows],
        )
        for (workflow, fid), rows in sorted(by_key.items())
        if len(rows) > 1
    ]
    note = "" if by_key else "no step output was recorded"
    return InvariantResult("outputs-recorded-once", "each step output recorded once", len(by_key), found, note)
