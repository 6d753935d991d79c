"""The history a chaos run checks (``pgfleet chaos``): what changed hands, what was written, what
ran, read from the system database once the run is over (``db.chaos_history``).

``install()`` adds the run's instrumentation to the (scratch) system database of a chaos run, in
a schema of its own (``pgfleet_chaos``), never part of pgfleet's migrations: deferred constraint
triggers that log, as each transaction commits, every change of a workflow row's ownership and
every step output, event, stream value and finish, each with the writing session's
``application_name`` (pgfleet names an executor's sessions ``pgfleet <pid> <executor_id>``, see
:func:`parse_writer`) and the workflow row's owner as the trigger reads it at commit (in pgfleet's
READ COMMITTED writes it sees every commit before its own; in a SERIALIZABLE ``@DBOS.transaction``
on the system database, its snapshot, but that transaction's fenced checkpoint cannot commit
after a concurrent takeover of the row anyway). The step-body starts come from pgfleet's own attempt ledger
(``dbos.pgfleet_step_attempts``), the takeovers and leader actions from pgfleet's own logs.
``load()`` reads it all in one snapshot; ``uninstall()`` removes the instrumentation.

Every time is the database's clock, as unix seconds (float). A takeover's and a leader
action's ``at`` are their transaction's start (``now()``, as pgfleet logs them); a change's and
a write's are their commit's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import psycopg

from .door import Door, row_to
from .errors import SystemDatabaseError
from .session_names import parse_session_name

if TYPE_CHECKING:
    from .database import DictConnection, Row

T = TypeVar("T")

__all__ = [
    "ChaosHistory",
    "parse_writer",
    "OwnershipChange",
    "WriteRecord",
    "StepStart",
    "TakeoverRecord",
    "LeaderAction",
    "FinalStatus",
    "MemberRecord",
    "QueueLimits",
    "EventValue",
    "ChaosHistoryRows",
]


@dataclass(frozen=True)
class OwnershipChange:
    """A committed change of a ``dbos.workflow_status`` row's ``(status, executor_id,
    owner_epoch)`` (its insert included), logged at commit."""

    seq: int
    workflow_uuid: str
    status: str
    executor_id: str | None
    owner_epoch: int | None
    queue_name: str | None
    queue_partition_key: str | None
    rate_limited: bool
    started_at_epoch_ms: int | None
    writer: str  # the writing session's application_name
    at: float


@dataclass(frozen=True)
class WriteRecord:
    """A committed write made on a workflow's behalf: a step output (``kind`` "output", with its
    ``function_id``), an event ("event"), a stream value ("stream") or the finish of its row
    ("finish"), with the workflow row's owner and status as read at that commit."""

    seq: int
    kind: str
    workflow_uuid: str
    function_id: int | None
    function_name: str | None
    writer: str
    row_status: str | None
    row_executor_id: str | None
    row_owner_epoch: int | None
    at: float
    # For an "output" that starts or enqueues a child workflow: the child's id (the row's
    # child_workflow_id), so the checker can tell a child that never got a row.
    child_workflow_id: str | None = None
    key: str | None = None  # the event's or stream's key


@dataclass(frozen=True)
class StepStart:
    """A start of a step body, from the attempt ledger."""

    id: int
    workflow_uuid: str
    function_id: int
    function_name: str
    executor_id: str
    owner_epoch: int
    pid: int
    attempt: int
    at: float
    owned: bool = True  # False: the database had given the workflow away; the body did not run


@dataclass(frozen=True)
class TakeoverRecord:
    """A workflow moved off a dead member (``dbos.pgfleet_takeovers``)."""

    workflow_uuid: str
    from_executor_id: str | None
    from_epoch: int | None
    to_executor_id: str | None
    to_epoch: int | None
    requeued_to: str | None
    by_executor_id: str
    leader_term: int | None
    at: float


@dataclass(frozen=True)
class LeaderAction:
    """One action of a leader (``dbos.pgfleet_leader_log``)."""

    id: int
    term: int
    executor_id: str
    action: str
    at: float


@dataclass(frozen=True)
class FinalStatus:
    """A workflow row as the run left it. ``output`` and ``error`` are as stored (serialized)."""

    workflow_uuid: str
    name: str
    status: str
    queue_name: str | None
    executor_id: str | None
    output: str | None
    error: str | None
    serialization: str | None
    created_at: float
    updated_at: float
    # The workflow that started or enqueued this one (a child's parent), so the checker can
    # follow an app's workflow to its descendants.
    parent_workflow_id: str | None = None


@dataclass(frozen=True)
class MemberRecord:
    """A member of the fleet as its row stands (``dbos.pgfleet_executors``)."""

    executor_id: str
    pid: int | None
    hostname: str | None
    status: str
    epoch: int | None
    last_heartbeat: float | None


@dataclass(frozen=True)
class QueueLimits:
    """A queue's limits as the members declared them."""

    name: str
    concurrency: int | None
    worker_concurrency: int | None
    rate_limit_max: int | None
    rate_limit_period_sec: float | None
    partition_queue: bool


@dataclass(frozen=True)
class EventValue:
    """A workflow event's final value, as stored (serialized)."""

    workflow_uuid: str
    key: str
    value: str | None
    serialization: str | None


@dataclass(frozen=True)
class ChaosHistoryRows:
    """Everything a chaos run's checker reads, loaded at once after the run."""

    ownership: list[OwnershipChange]
    writes: list[WriteRecord]
    starts: list[StepStart]
    takeovers: list[TakeoverRecord]
    leader_actions: list[LeaderAction]
    statuses: list[FinalStatus]
    members: list[MemberRecord]
    queues: list[QueueLimits]
    events: list[EventValue]


def parse_writer(application_name: str) -> tuple[int, str] | None:
    """``(pid, executor_id)`` of the executor whose session wrote a row (its ``writer``), or None
    when the writer was not an executor (a client, the supervisor, a test's own session). An
    executor id longer than about 45 characters comes back cut at Postgres's 63-byte limit:
    compare it with ``startswith``."""
    return parse_session_name(application_name)


class ChaosHistory(Door):
    """A chaos run's instrumentation of its system database, and its whole history read back."""

    def install(self) -> None:
        """Create schema ``pgfleet_chaos``, its logs and the deferred triggers that fill them
        (idempotent: a second install changes nothing). Install before the fleet starts: what
        committed earlier is not in the logs."""
        self._execute("install_chaos_history")

    def uninstall(self) -> None:
        """Drop the triggers and schema ``pgfleet_chaos`` (idempotent)."""
        self._execute("uninstall_chaos_history")

    def load(self) -> ChaosHistoryRows:
        """Everything the checker reads, from one snapshot of the database (times as unix
        seconds on its clock). Requires :meth:`install` (the logs are its tables)."""
        try:
            return self._db.with_retries(self._load_once)
        except psycopg.errors.UndefinedTable as exc:
            raise SystemDatabaseError(
                f"this database has no chaos history to load (install it first: ChaosHistory.install): {exc}"
            ) from exc

    def _load_once(self) -> ChaosHistoryRows:
        # The rows are fetched inside the snapshot and made dataclasses after it ends: the
        # session's idle-in-transaction limit never sees Python work on a large history.
        with self._db.pooled() as conn, conn.transaction():
            self._begin_snapshot(conn)
            raw = (self._ownership(conn), self._writes(conn), self._starts(conn), self._takeovers(conn),
                   self._leader_actions(conn), self._statuses(conn), self._members(conn), self._queues(conn), self._events(conn))
        ownership, writes, starts, takeovers, leader_actions, statuses, members, queues, events = raw
        return ChaosHistoryRows(
            ownership=self._rows(OwnershipChange, ownership),
            writes=self._rows(WriteRecord, writes),
            starts=self._rows(StepStart, starts),
            takeovers=self._rows(TakeoverRecord, takeovers),
            leader_actions=self._rows(LeaderAction, leader_actions),
            statuses=self._rows(FinalStatus, statuses),
            members=self._rows(MemberRecord, members),
            queues=self._rows(QueueLimits, queues),
            events=self._rows(EventValue, events),
        )

    @staticmethod
    def _rows(cls: type[T], rows: list[Row]) -> list[T]:
        return [row_to(cls, r) for r in rows]

    # One statement each, run on the snapshot's connection.

    def _begin_snapshot(self, conn: DictConnection) -> None:
        self._db._execute_on(conn, "begin_chaos_history_snapshot", {})

    def _ownership(self, conn: DictConnection) -> list[Row]:
        return self._db._execute_on(conn, "list_chaos_ownership_changes", {})

    def _writes(self, conn: DictConnection) -> list[Row]:
        return self._db._execute_on(conn, "list_chaos_writes", {})

    def _starts(self, conn: DictConnection) -> list[Row]:
        return self._db._execute_on(conn, "list_all_step_attempts", {})

    def _takeovers(self, conn: DictConnection) -> list[Row]:
        return self._db._execute_on(conn, "list_all_takeovers", {})

    def _leader_actions(self, conn: DictConnection) -> list[Row]:
        return self._db._execute_on(conn, "list_leader_actions", {})

    def _statuses(self, conn: DictConnection) -> list[Row]:
        return self._db._execute_on(conn, "list_final_statuses", {})

    def _members(self, conn: DictConnection) -> list[Row]:
        return self._db._execute_on(conn, "list_all_members", {})

    def _queues(self, conn: DictConnection) -> list[Row]:
        return self._db._execute_on(conn, "list_declared_queue_limits", {})

    def _events(self, conn: DictConnection) -> list[Row]:
        return self._db._execute_on(conn, "list_all_workflow_events", {})
