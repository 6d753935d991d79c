"""The invariant checker of the fleet chaos run (tests/test_chaos_fleet.py), as plain functions.

Every check takes plain rows (dicts; times are unix seconds as floats, on the one host clock the
database and the workers share) and returns a list of :class:`Violation`, each naming what was
violated with the evidence rows, so a failing run says exactly what went wrong, and
tests/test_chaos_checks.py feeds each check a hand-made history with a planted violation.

The rows come from four sources (see ``load_history`` for the exact queries):

- ``ledger``: the side-effect ledger. Every step body of tests/apps/chaos_app.py first inserts
  one row, on its own autocommit connection: ``workflow_id, function_id, step, pid,
  executor_id, owner_epoch`` (its fencing token, from the workflow context) and ``started_at``
  (the time the body was entered, taken before anything else: the moment it "started").
- ``ownership``: every change of a ``dbos.workflow_status`` row's ``(status, executor_id,
  owner_epoch)``, logged by a deferred trigger, so ``at`` is taken as its transaction commits.
- ``outputs``: every insert into ``dbos.operation_outputs``, logged the same way at commit.
- ``takeovers`` (``dbos.pgfleet_takeovers``) and ``leader_log`` (``dbos.pgfleet_leader_log``).

The definitions, chosen to be sound (a correct pgfleet never trips them):

(a) rerun: a (workflow, step position) whose output was committed at T_rec must have no
    ledger start after T_rec. Its own body (and a losing owner's body) started before T_rec.
(b) stale start: an ownership (workflow, executor, epoch) ends at the first commit that changes
    the row's epoch or takes it out of PENDING (a takeover, a requeue, a recovery, the end).
    A body started under that ownership after its end was started by a process that had lost
    the workflow (paused, partitioned, fenced). Pgfleet checks its membership lease before each
    body, and a lease check that passes is at least one heartbeat interval before any takeover,
    so the only slack a correct run needs is the microseconds between that check and our
    timestamp. A ledger row under an epoch the row never had is reported too.
(c) a step position whose output row was inserted twice.
(d) queue concurrency: replaying the ownership log in commit order, the number of PENDING rows
    of the queue (and of one executor in it) never exceeds the limit. A claim holds the queue's
    advisory lock until it commits, so its commit-time timestamp follows every claim it counted
    and every release it saw: replaying in that order never overcounts.
(e) every workflow SUCCESS with the expected result (and event); one leader per term.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

Row = dict[str, Any]

__all__ = [
    "Violation",
    "check_no_rerun_after_record",
    "check_no_start_after_ownership_lost",
    "check_outputs_recorded_once",
    "check_queue_concurrency",
    "queue_peaks",
    "check_outcomes",
    "check_one_leader_per_term",
    "ownerships",
    "format_report",
    "describe_row",
]


@dataclass
class Violation:
    kind: str
    message: str
    evidence: list[Row] = field(default_factory=list)


def _ts(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3]


# -- (a) no completed step's body ran again -----------------------------------------------------


def check_no_rerun_after_record(ledger: Iterable[Row], outputs: Iterable[Row]) -> list[Violation]:
    """No ledger start of a (workflow, position) after its output was committed."""
    recorded: dict[tuple[str, int], float] = {}
    for o in outputs:
        key = (o["workflow_id"], o["function_id"])
        recorded[key] = min(o["at"], recorded.get(key, o["at"]))  # the first commit counts
    found = []
    for row in ledger:
        t_rec = recorded.get((row["workflow_id"], row["function_id"]))
        if t_rec is not None and row["started_at"] > t_rec:
            found.append(Violation(
                "rerun-after-record",
                f"{row['workflow_id']} step {row['function_id']} ({row.get('step')}) started again at "
                f"{_ts(row['started_at'])}, {row['started_at'] - t_rec:.3f}s after its output was recorded at "
                f"{_ts(t_rec)}, by {row['executor_id']}@{row['owner_epoch']} pid {row.get('pid')}",
                [row, {"recorded_at": t_rec}],
            ))
    return found


# -- (b) no body started under an ownership that had ended --------------------------------------


def ownerships(ownership_log: Iterable[Row]) -> dict[tuple[str, int], Row]:
    """(workflow, epoch) → {executor_id, start, end, ended_by}: each PENDING ownership the rows
    had, from the commit that gave it to the first commit that changed the epoch or the status
    (end None while it lasts). ``ended_by`` is the log row that ended it."""
    result: dict[tuple[str, int], Row] = {}
    current: dict[str, tuple[str, int] | None] = {}
    for change in sorted(ownership_log, key=lambda r: (r["at"], r.get("seq", 0))):
        workflow = change["workflow_id"]
        held = current.get(workflow)
        owner = (workflow, change["owner_epoch"]) if change["status"] == "PENDING" and change["owner_epoch"] is not None else None
        if held is not None and held != owner:
            result[held]["end"] = change["at"]
            result[held]["ended_by"] = change
        if owner is not None and owner != held:
            result.setdefault(owner, {"executor_id": change["executor_id"], "start": change["at"], "end": None, "ended_by": None})
        current[workflow] = owner
    return result


def _how_it_ended(own: Row, workflow: str, epoch: int, takeovers: list[Row]) -> str:
    for t in takeovers:
        if t["workflow_id"] == workflow and t["from_epoch"] == epoch:
            where = f"requeued to {t['requeued_to']}" if t.get("requeued_to") else f"given to {t.get('to_executor_id')}@{t.get('to_epoch')}"
            return f"taken over by {t['by_executor_id']} (term {t.get('leader_term')}) at {_ts(t['at'])}, {where}"
    nxt = own["ended_by"]
    if nxt["status"] != "PENDING":
        return f"row became {nxt['status']} at {_ts(nxt['at'])}"
    return f"row re-owned by {nxt['executor_id']}@{nxt['owner_epoch']} at {_ts(nxt['at'])}"


def check_no_start_after_ownership_lost(
    ledger: Iterable[Row], ownership_log: Iterable[Row], takeovers: Iterable[Row] = (), slack_sec: float = 0.0
) -> list[Violation]:
    """No step body started under (workflow, executor, epoch) after that ownership ended."""
    log = list(ownership_log)
    owned = ownerships(log)
    moves = list(takeovers)
    history: dict[str, list[Row]] = defaultdict(list)  # for the evidence: how the row changed hands
    for change in sorted(log, key=lambda r: (r["at"], r.get("seq", 0))):
        history[change["workflow_id"]].append(change)
    found = []
    for row in ledger:
        key = (row["workflow_id"], row["owner_epoch"])
        own = owned.get(key)
        who = f"{row['executor_id']}@{row['owner_epoch']} pid {row.get('pid')}"
        if own is None or own["executor_id"] != row["executor_id"]:
            found.append(Violation(
                "unknown-ownership",
                f"{row['workflow_id']} step {row['function_id']} started at {_ts(row['started_at'])} by {who}: "
                "the workflow's row never had that owner and epoch",
                [row],
            ))
        elif own["end"] is not None and row["started_at"] > own["end"] + slack_sec:
            found.append(Violation(
                "start-after-ownership-lost",
                f"{row['workflow_id']} step {row['function_id']} ({row.get('step')}) started at {_ts(row['started_at'])} by "
                f"{who}, {row['started_at'] - own['end']:.3f}s after that ownership ended: "
                f"{_how_it_ended(own, row['workflow_id'], row['owner_epoch'], moves)}; evidence: the body, then the "
                "workflow row's ownership changes",
                [row, *history[row["workflow_id"]][-8:]],
            ))
    return found


# -- (c) no output recorded twice ---------------------------------------------------------------


def check_outputs_recorded_once(outputs: Iterable[Row]) -> list[Violation]:
    by_key: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for o in outputs:
        by_key[(o["workflow_id"], o["function_id"])].append(o)
    return [
        Violation("output-recorded-twice", f"{w} step {f}: its output row was inserted {len(rows)} times "
                  f"(at {', '.join(_ts(r['at']) for r in rows)})", rows)
        for (w, f), rows in sorted(by_key.items()) if len(rows) > 1
    ]


# -- (d) queue limits -----------------------------------------------------------------------------


def _replay_queue(ownership_log: Iterable[Row], queue: str) -> Iterator[tuple[Row, dict[str, str]]]:
    """Each change of ``queue``'s rows in commit order, with the queue's PENDING rows after it
    (workflow → executor)."""
    running: dict[str, str] = {}
    for change in sorted(ownership_log, key=lambda r: (r["at"], r.get("seq", 0))):
        if change.get("queue_name") != queue:
            continue
        if change["status"] == "PENDING":
            running[change["workflow_id"]] = change["executor_id"]
        else:
            running.pop(change["workflow_id"], None)
        yield change, running


def check_queue_concurrency(
    ownership_log: Iterable[Row], queue: str, limit: int | None, worker_limit: int | None = None
) -> list[Violation]:
    """Replay the ownership log in commit order: PENDING rows of ``queue`` never exceed
    ``limit`` in total, nor ``worker_limit`` for one executor. One violation per excursion."""
    found: list[Violation] = []
    over: set[str] = set()  # what is over its limit right now ("*" the queue, else an executor)
    for change, running in _replay_queue(ownership_log, queue):
        counts: dict[str, int] = defaultdict(int)
        for executor in running.values():
            counts[executor] += 1
        now_over = set()
        if limit is not None and len(running) > limit:
            now_over.add("*")
        if worker_limit is not None:
            now_over |= {e for e, n in counts.items() if n > worker_limit}
        for what in sorted(now_over - over):
            members = sorted(w for w, e in running.items() if what == "*" or e == what)
            cap = limit if what == "*" else worker_limit
            scope = f"queue {queue}" if what == "*" else f"queue {queue} on executor {what}"
            found.append(Violation(
                "queue-limit-exceeded",
                f"{scope}: {len(members)} workflows PENDING at {_ts(change['at'])}, limit {cap}, "
                f"after {change['workflow_id']} became {change['status']} on {change['executor_id']}: {members}",
                [change],
            ))
        over = now_over
    return found


def queue_peaks(ownership_log: Iterable[Row], queue: str) -> tuple[int, int]:
    """The most PENDING rows ``queue`` had at once, in total and on one executor: how close the
    run came to its limits (a check of a queue that never filled up proves little)."""
    total = per_executor = 0
    for _, running in _replay_queue(ownership_log, queue):
        total = max(total, len(running))
        for executor in set(running.values()):
            per_executor = max(per_executor, sum(1 for e in running.values() if e == executor))
    return total, per_executor


# -- (e) outcomes and leaders ---------------------------------------------------------------------


def check_outcomes(statuses: Iterable[Row], expected: dict[str, Any], events: dict[str, Any] | None = None) -> list[Violation]:
    """Every workflow row SUCCESS; those in ``expected`` with that output (and ``events``: the
    value of their event), and every expected workflow present."""
    found = []
    seen = set()
    for s in statuses:
        workflow = s["workflow_id"]
        seen.add(workflow)
        if s["status"] != "SUCCESS":
            found.append(Violation("not-successful", f"{workflow} ended {s['status']} on {s.get('executor_id')}: {s.get('error')}", [s]))
        elif workflow in expected and s["output"] != expected[workflow]:
            found.append(Violation("wrong-result", f"{workflow} returned {s['output']!r}, expected {expected[workflow]!r}", [s]))
        if events is not None and workflow in events and s.get("event") != events[workflow]:
            found.append(Violation("wrong-event", f"{workflow} event is {s.get('event')!r}, expected {events[workflow]!r}", [s]))
    missing = sorted(set(expected) - seen)
    if missing:
        found.append(Violation("missing-workflow", f"{len(missing)} expected workflows have no row: {missing[:10]}", []))
    return found


def check_one_leader_per_term(leader_log: Iterable[Row]) -> list[Violation]:
    by_term: dict[int, set[str]] = defaultdict(set)
    for r in leader_log:
        by_term[r["term"]].add(r["executor_id"])
    return [Violation("two-leaders-in-a-term", f"term {t}: actions logged by {sorted(e)}", [{"term": t, "executors": sorted(e)}])
            for t, e in sorted(by_term.items()) if len(e) > 1]


# -- the report -----------------------------------------------------------------------------------


def format_report(violations: list[Violation], per_kind: int = 5, describe: Callable[[Row], str] | None = None) -> str:
    """Violations grouped by kind: a count, then the first ``per_kind`` with their evidence."""
    if not violations:
        return "no invariant violated"
    by_kind: dict[str, list[Violation]] = defaultdict(list)
    for v in violations:
        by_kind[v.kind].append(v)
    lines = [f"{len(violations)} invariant violations: " + ", ".join(f"{k} x{len(vs)}" for k, vs in by_kind.items())]
    for kind, vs in by_kind.items():
        lines.append(f"== {kind} ({len(vs)})")
        for v in vs[:per_kind]:
            lines.append(f"  - {v.message}")
            for row in v.evidence:
                lines.append(f"      {describe(row) if describe else describe_row(row)}")
        if len(vs) > per_kind:
            lines.append(f"  ... and {len(vs) - per_kind} more")
    return "\n".join(lines)


def describe_row(row: Row | None) -> str:
    if row is None:
        return "(none)"
    return ", ".join(f"{k}={_ts(v) if k in ('at', 'started_at', 'recorded_at', 'wall') and isinstance(v, float) else v}"
                     for k, v in row.items())
