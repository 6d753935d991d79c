"""``no-write-by-fenced-owner``: every write an executor made on a workflow's behalf (a step output,
an event, a stream value, the finish of its row) was made while it owned the workflow.

The instrumentation logs each write at commit with the row's status and owner as the commit saw
them (for a finish, the owner that finished it), and the writing session's application_name,
``pgfleet <pid> <executor_id>[ <purpose>]``. A write is sound when the row was PENDING and owned
by the writer's executor id at that commit, and the writer's process held that ownership: an
ownership granted by a start, claim or recovery that a session of pid P committed is P's, so a
write under it by another pid of the same executor id (a restarted slot's old process) is stale.
An ownership another session granted (a takeover assigning it to a live member) is bound to the
first pid that wrote under it.

Not owners, so skipped (and counted in the note): sessions that are not an executor's (clients,
the CLI, the chaos runner) and leader sessions; and writes to a row nobody had owned yet (a fork
copies the original's outputs into its new, ENQUEUED row).
"""

from __future__ import annotations

from dataclasses import dataclass

from sysdb.chaos_history import ChaosHistoryRows, WriteRecord

from .model import InvariantResult, Violation
from .replay import Ownership, Writer, around, changes_by_workflow, evidence, parse_writer, replay_ownership, ts

__all__ = ["check_no_write_by_fenced_owner"]

# A finish is logged with the row's status as its trigger read it: PENDING before, or the outcome.
_FINISH_STATUSES = {"PENDING", "SUCCESS", "ERROR"}


@dataclass
class _Tally:
    checked: int = 0
    not_executor: int = 0
    leader: int = 0
    unowned: int = 0
    bound_late: int = 0


def _first_owned_at(owned: dict[tuple[str, int], Ownership]) -> dict[str, float]:
    first: dict[str, float] = {}
    for own in owned.values():
        first[own.workflow_uuid] = min(own.start, first.get(own.workflow_uuid, own.start))
    return first


def _problem(write: WriteRecord, writer: Writer, own: Ownership | None, bound: dict[tuple[str, int], int]) -> str | None:
    """What is wrong with this write, or None."""
    statuses = _FINISH_STATUSES if write.kind == "finish" else {"PENDING"}
    if write.row_status not in statuses:
        return f"the row was {write.row_status} at that commit"
    if not writer.is_executor(write.row_executor_id):
        return f"the row was owned by {write.row_executor_id}@{write.row_owner_epoch}, not by the writer's executor"
    if own is None:
        return f"the row never had the ownership {write.row_executor_id}@{write.row_owner_epoch} in the ownership log"
    holder = own.pid if own.pid is not None else bound.setdefault((own.workflow_uuid, own.epoch), writer.pid)
    if holder != writer.pid:
        how = "granted to" if own.pid is not None else "first written under by"
        return (
            f"the ownership {write.row_executor_id}@{write.row_owner_epoch} was {how} pid {holder}: "
            f"pid {writer.pid} is a stale process of that executor id (a restarted slot)"
        )
    return None


def check_no_write_by_fenced_owner(history: ChaosHistoryRows) -> InvariantResult:
    """Every executor's write made while its process owned the workflow."""
    owned = replay_ownership(history.ownership)
    first_owned = _first_owned_at(owned)
    by_workflow = changes_by_workflow(history.ownership)
    bound: dict[tuple[str, int], int] = {}
    tally = _Tally()
    found: list[Violation] = []
    for write in sorted(history.writes, key=lambda w: (w.at, w.seq)):
        writer = parse_writer(write.writer)
        if writer is None:
            tally.not_executor += 1
            continue
        if writer.purpose == "leader":
            tally.leader += 1
            continue
        if write.row_executor_id is None and write.row_status != "PENDING" and first_owned.get(write.workflow_uuid, write.at + 1) > write.at:
            tally.unowned += 1
            continue
        tally.checked += 1
        own = owned.get((write.workflow_uuid, write.row_owner_epoch)) if write.row_owner_epoch is not None else None
        problem = _problem(write, writer, own, bound)
        if problem is not None:
            rows = [evidence(write, writer_pid=writer.pid, writer_executor_id=writer.executor_id)]
            if own is not None:
                rows.append(evidence(own.granted_by, role="grant of the ownership"))
            rows += [evidence(c) for c in around(by_workflow.get(write.workflow_uuid, []), write.at)]
            what = f"step {write.function_id} output" if write.kind == "output" else write.kind
            found.append(Violation(
                f"{write.workflow_uuid} {what} written at {ts(write.at)} by {writer.executor_id} pid {writer.pid}: {problem}", rows
            ))
    tally.bound_late = len(bound)
    return InvariantResult("no-write-by-fenced-owner", "no write by a fenced owner", tally.checked, found, _note(tally))


def _note(t: _Tally) -> str:
    parts = [f"skipped {t.not_executor} writes by sessions that are not an executor's (clients, CLI)"]
    if t.leader:
        parts.append(f"{t.leader} by leader sessions")
    if t.unowned:
        parts.append(f"{t.unowned} to rows nobody had owned yet (fork copies)")
    if t.bound_late:
        parts.append(f"{t.bound_late} ownerships granted by another session (a takeover's assignment) bound to their first writing pid")
    if not t.checked:
        parts.append("no write by an executor session was seen: are the executors' sessions named 'pgfleet <pid> <executor_id>'?")
    return "; ".join(parts)
