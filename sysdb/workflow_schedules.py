"""The door to database-backed schedules (``dbos.workflow_schedules``: ``DBOS.create_schedule``
and friends) and to the runs they enqueue.

The rows are DBOS 2.30's, written as DBOS writes them, so DBOS's own client and CLI read what
pgfleet writes (and the other way round). Each write takes an optional ``connection``: called
from inside a workflow, it runs in the transaction of the workflow's fenced checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .door import Door, row_to
from .timestamps import now_ms

if TYPE_CHECKING:
    from .database import DictConnection, Row

__all__ = [
    "WorkflowSchedules",
    "WorkflowScheduleRow",
    "ScheduleFilter",
    "ScheduleRun",
    "FiredTick",
    "ScheduleExistsError",
    "ScheduleOwnedElsewhereError",
]


@dataclass(frozen=True)
class WorkflowScheduleRow:
    """One schedule, as stored (``context`` is serialized text, ``last_fired_at`` ISO text)."""

    schedule_id: str
    schedule_name: str
    workflow_name: str
    workflow_class_name: str | None
    schedule: str
    status: str
    context: str
    last_fired_at: str | None
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    application_name: str | None


@dataclass(frozen=True)
class ScheduleFilter:
    """What ``list`` selects; ``None`` matches everything. ``application_names`` also matches
    schedules nobody owns (they belong to every application)."""

    statuses: Sequence[str] | None = None
    workflow_names: Sequence[str] | None = None
    prefixes: Sequence[str] | None = None
    application_names: Sequence[str] | None = None


@dataclass(frozen=True)
class ScheduleRun:
    """One workflow a schedule starts: ENQUEUED on ``queue_name`` with ``inputs``."""

    workflow_id: str
    schedule_name: str
    workflow_name: str
    class_name: str | None
    queue_name: str
    inputs: str
    application_name: str | None


@dataclass(frozen=True)
class FiredTick:
    """What firing a tick did: whether the lease held, whether the schedule was still active
    with the definition read, and how many workflows it enqueued (0: the tick existed)."""

    leading: bool
    active: bool
    enqueued: int


class ScheduleExistsError(Exception):
    """A schedule of this name exists already."""

    def __init__(self, schedule_name: str) -> None:
        super().__init__(schedule_name)
        self.schedule_name = schedule_name


class ScheduleOwnedElsewhereError(Exception):
    """The schedule belongs to another application than the writer's."""

    def __init__(self, schedule_name: str, current: str, owner: str) -> None:
        super().__init__(schedule_name, current, owner)
        self.schedule_name, self.current, self.owner = schedule_name, current, owner


class WorkflowSchedules(Door):
    """Create, replace, read, pause, resume and delete schedules; enqueue their runs.

    ``writes`` counts the changes made through this door (in this process), so that a leader
    here re-reads the schedules at once after one instead of at its next periodic refresh."""

    def __init__(self, db: Any, runner: Any = None) -> None:
        super().__init__(db, runner)
        self.writes = 0

    def _run_on(self, name: str, params: dict[str, Any], connection: DictConnection | None) -> list[Row]:
        return self._execute(name, params) if connection is None else self._db._execute_on(connection, name, params)

    def _in_transaction(self, connection: DictConnection | None, body: Any) -> Any:
        """``body(conn)`` in the caller's transaction, or in one of its own (retried whole)."""
        if connection is not None:
            return body(connection)

        def run() -> Any:
            with self._db.pooled() as conn, conn.transaction():
                return body(conn)

        return self._db.with_retries(run)

    def _owner(self, conn: DictConnection, schedule_name: str, writer: str | None) -> str | None:
        """The owner to write (DBOS's rule): an unowned or new row takes the writer's, a writer
        naming no application keeps the current owner, another application's row is refused."""
        rows = self._db._execute_on(conn, "workflow_schedule_owner", {"schedule_name": schedule_name})
        current: str | None = rows[0]["application_name"] if rows else None
        if current is None:
            return writer
        if writer is not None and writer != current:
            raise ScheduleOwnedElsewhereError(schedule_name, current, writer)
        return current

    def create(self, row: WorkflowScheduleRow, *, connection: DictConnection | None = None) -> None:
        """Create ``row``. Raises :class:`ScheduleExistsError` (or, for another application's
        schedule, :class:`ScheduleOwnedElsewhereError`) when the name is taken."""

        self.writes += 1

        def body(conn: DictConnection) -> None:
            params = {**vars(row), "application_name": self._owner(conn, row.schedule_name, row.application_name)}
            if self._db._execute_on(conn, "create_workflow_schedule", params):
                return
            existing = self.get(row.schedule_name, connection=conn)
            # A retry after a reply lost on the way back finds its own row (the same fresh id).
            if existing is None or existing.schedule_id != row.schedule_id:
                raise ScheduleExistsError(row.schedule_name)

        self._in_transaction(connection, body)

    def apply(self, rows: Sequence[WorkflowScheduleRow]) -> None:
        """Create or replace every one of ``rows``, all in one transaction (none on an error)."""
        self.writes += 1

        def body(conn: DictConnection) -> None:
            for row in rows:
                params = {**vars(row), "application_name": self._owner(conn, row.schedule_name, row.application_name)}
                self._db._execute_on(conn, "upsert_workflow_schedule", params)

        self._in_transaction(None, body)

    def get(self, schedule_name: str, *, connection: DictConnection | None = None) -> WorkflowScheduleRow | None:
        """The schedule named ``schedule_name`` (None: there is none)."""
        rows = self._run_on("get_workflow_schedule", {"schedule_name": schedule_name}, connection)
        return row_to(WorkflowScheduleRow, rows[0]) if rows else None

    def list(self, selection: ScheduleFilter, *, connection: DictConnection | None = None) -> list[WorkflowScheduleRow]:
        """The schedules ``selection`` matches, in the table's order (as DBOS lists them)."""
        params = {
            "statuses": _array(selection.statuses),
            "workflow_names": _array(selection.workflow_names),
            "prefixes": _array(selection.prefixes),
            "application_names": _array(selection.application_names),
        }
        return [row_to(WorkflowScheduleRow, r) for r in self._run_on("list_workflow_schedules", params, connection)]

    def set_status(self, schedule_name: str, status: str, *, connection: DictConnection | None = None) -> None:
        """Set a schedule's status (``ACTIVE`` or ``PAUSED``); nothing if it does not exist."""
        self.writes += 1
        self._run_on("set_workflow_schedule_status", {"schedule_name": schedule_name, "status": status}, connection)

    def delete(self, schedule_name: str, *, connection: DictConnection | None = None) -> None:
        """Delete a schedule; nothing if it does not exist."""
        self.writes += 1
        self._run_on("delete_workflow_schedule", {"schedule_name": schedule_name}, connection)

    def enqueue_run(self, run: ScheduleRun) -> bool:
        """Enqueue ``run`` (a trigger or a backfilled tick). False when its id exists already."""
        return bool(self._execute("enqueue_schedule_run", {**vars(run), "now_ms": now_ms()}))

    def fire_tick(
        self, term: int, leader_id: str, schedule: WorkflowScheduleRow, run: ScheduleRun, last_fired_at: str
    ) -> FiredTick:
        """The leader of ``term`` enqueues ``run``, a tick of ``schedule``, and records the tick
        as its last fired (``last_fired_at``), while its lease holds and the schedule is still
        ACTIVE with this definition; see :class:`FiredTick`."""
        params = {
            **vars(run),
            "term": term,
            "leader_id": leader_id,
            "now": self._now(),
            "now_ms": now_ms(),
            "schedule_id": schedule.schedule_id,
            "cron": schedule.schedule,
            "context": schedule.context,
            "cron_timezone": schedule.cron_timezone,
            "schedule_queue_name": schedule.queue_name,
            "last_fired_at": last_fired_at,
        }
        row = self._execute("fire_schedule_tick", params)[0]
        return FiredTick(leading=row["leading"], active=row["active"], enqueued=row["enqueued"])


def _array(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else list(values)
