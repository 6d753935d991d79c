"""``@DBOS.scheduled``: workflows run on a cron schedule, once per tick across the fleet.

Executors declare the schedules they can run (``dbos.pgfleet_schedules``) at launch. The leader,
on each of its ticks, enqueues every due tick on the internal queue with the workflow id
``sched-<name>-<tick time>``; any executor that registered the function claims and runs it with
``(scheduled_time, actual_time)``. A tick is never run twice: its id is deterministic and the
insert does nothing when it exists, even if two leaders overlap across a term change. Ticks
missed while no leader was active are caught up for at most ``MAX_CATCH_UP_SEC``.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from croniter import croniter

from sysdb import SystemDatabase
from sysdb.logs import get_logger
from sysdb.schedules import ScheduledTick, ScheduleRow
from sysdb.workflow_rows import QueuePlacement
from sysdb.workflow_schedules import ScheduleFilter, WorkflowScheduleRow

from . import schedules
from .config import DEFAULT_SCHEDULER_POLLING_INTERVAL_SEC
from .errors import DBOSException
from .queues import INTERNAL_QUEUE_NAME
from .registry import Registry, Schedule
from .serialization import serialize_args
from .workflow_start import WorkflowStart

__all__ = ["ScheduleTicker", "WorkflowScheduleTicker", "add_schedule", "declare_schedules", "enqueue_due_ticks", "tick_start", "MAX_CATCH_UP_SEC"]

log = get_logger("pgfleet.runtime")

# After a gap with no leader, ticks older than this are skipped rather than run in a burst.
MAX_CATCH_UP_SEC = 60.0
# At most this many ticks of one schedule are enqueued per leader tick.
MAX_TICKS_PER_PASS = 100


def add_schedule(registry: Registry, workflow_name: str, cron: str) -> None:
    """Declare a schedule (5 cron fields, or 6 with seconds first). Raises on a bad cron."""
    fields = cron.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(cron, second_at_beginning=len(fields) == 6):
        raise DBOSException(f"invalid cron expression {cron!r} for scheduled workflow {workflow_name!r}")
    registry.add_schedule(Schedule(workflow_name, cron))


def declare_schedules(db: SystemDatabase, schedules: Iterable[Schedule], can_run: Callable[[str], bool]) -> None:
    """Write a process's schedules to the database (at launch, and for one declared later)."""
    for schedule in schedules:
        if can_run(schedule.workflow_name):
            db.schedules.upsert(schedule.workflow_name, schedule.workflow_name, schedule.cron)


def _due_ticks(cron: str, after: datetime.datetime, until: datetime.datetime) -> list[datetime.datetime]:
    iterator = croniter(cron, after, second_at_beginning=len(cron.split()) == 6)
    ticks: list[datetime.datetime] = []
    while len(ticks) < MAX_TICKS_PER_PASS:
        tick = iterator.get_next(datetime.datetime)
        if tick > until:
            break
        ticks.append(tick)
    return ticks


def tick_start(workflow_name: str, tick: datetime.datetime) -> WorkflowStart:
    """The start of one tick: a deterministic id (a tick is never run twice), on the internal
    queue, called with ``(scheduled_time, actual_time)``."""
    return WorkflowStart(
        workflow_id=f"sched-{workflow_name}-{tick.isoformat()}",
        name=workflow_name,
        inputs=serialize_args((tick, datetime.datetime.now(datetime.timezone.utc)), {}, workflow_name=workflow_name),
        placement=QueuePlacement(queue_name=INTERNAL_QUEUE_NAME),
    )


def enqueue_due_ticks(db: SystemDatabase, term: int, leader_id: str, rows: list[ScheduleRow] | None = None) -> int:
    """The leader's duty: enqueue every schedule's due ticks, fenced by its lease.

    ``rows`` are the schedules (read from the database when not given); each row is replaced
    in the list by one with its ``last_tick_epoch_ms`` advanced as ticks are enqueued.
    """
    # A tick is due on the database clock: a leader whose host clock runs ahead must not fire
    # ticks early (nor one that runs behind, late), and a new leader continues where the last left.
    now = datetime.datetime.fromtimestamp(db.clock.now_ms() / 1000, datetime.timezone.utc)
    floor = now - datetime.timedelta(seconds=MAX_CATCH_UP_SEC)
    enqueued = 0
    schedule_rows = db.schedules.declared() if rows is None else rows
    for index, row in enumerate(schedule_rows):
        last = row.last_tick_epoch_ms
        after = datetime.datetime.fromtimestamp(last / 1000, datetime.timezone.utc) if last else now
        for tick in _due_ticks(row.cron, max(after, floor), now):
            start = tick_start(row.workflow_name, tick)
            result = db.schedules.enqueue_tick(ScheduledTick(
                term=term,
                leader_id=leader_id,
                schedule_name=row.schedule_name,
                workflow_name=start.name,
                workflow_id=start.workflow_id,
                queue_name=start.queue_placement().queue_name,
                inputs=start.inputs,
                serialization=start.serialization,
                tick_ms=int(tick.timestamp() * 1000),
            ))
            if result is None:
                return enqueued  # the lease is gone: stop at once
            enqueued += result
            row = schedule_rows[index] = replace(row, last_tick_epoch_ms=int(tick.timestamp() * 1000))
    if enqueued:
        log.info("enqueued scheduled workflow ticks", count=enqueued, term=term)
    return enqueued


class ScheduleTicker:
    """The leader's scheduled-workflow duty, cheap when idle: the schedules are re-read every
    ``REFRESH_SEC`` (new ones appear within that), and a statement is sent only for due ticks."""

    REFRESH_SEC = 10.0

    def __init__(
        self,
        db: SystemDatabase,
        leader_id: str,
        declared: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        *,
        application_name: str | None = None,
        workflow_schedules_refresh_sec: float = DEFAULT_SCHEDULER_POLLING_INTERVAL_SEC,
    ) -> None:
        """``application_name`` is the leader's, which the runs of unowned database-backed
        schedules are owned by (as DBOS does); ``workflow_schedules_refresh_sec``: how often
        those are re-read (the ``scheduler_polling_interval_sec`` setting)."""
        self._db = db
        self.workflow_schedules = WorkflowScheduleTicker(db, leader_id, application_name,
                                                         refresh_sec=workflow_schedules_refresh_sec)
        self._leader_id = leader_id
        # How often this process has declared schedules: a new declaration is re-read at once.
        self._declared = declared
        self._clock = clock
        self._rows: list[ScheduleRow] = []
        self._next_refresh = 0.0
        self._term: int | None = None
        self._version = -1

    def __call__(self, term: int) -> int:
        declared = self._declared()
        if term != self._term or self._version != declared or self._clock() >= self._next_refresh:
            self._version = declared
            # A new term may follow another leader's ticks: start from the database's view.
            self._rows = self._db.schedules.declared()
            self._next_refresh = self._clock() + self.REFRESH_SEC
            self._term = term
        enqueued = enqueue_due_ticks(self._db, term, self._leader_id, self._rows) if self._rows else 0
        queues = self.workflow_schedules(term)
        for queue_name in queues - {INTERNAL_QUEUE_NAME}:
            self._db.claims.wake_queue(queue_name)
        return enqueued + (1 if INTERNAL_QUEUE_NAME in queues else 0)


@dataclass
class _Cursor:
    """The leader's place in one schedule: the definition it read and the last tick it fired
    (or the time it started from)."""

    row: WorkflowScheduleRow
    after: datetime.datetime
    broken: bool = False  # its ticks cannot be computed here: skipped (and said so once)


def _definition(row: WorkflowScheduleRow) -> tuple[object, ...]:
    # What a run is built from; a change starts the schedule afresh (as DBOS restarts its thread).
    return (row.workflow_name, row.workflow_class_name, row.schedule, row.context, row.cron_timezone, row.queue_name)


class WorkflowScheduleTicker:
    """The leader's duty for database-backed schedules (``DBOS.create_schedule``): each leader
    tick it reads the ACTIVE schedules and fires every due tick, once across the fleet.

    Each tick is one statement, fenced on the leader's lease and on the schedule still being
    ACTIVE with the definition read (a pause that commits first stops it), which enqueues the
    run under DBOS's id ``sched-<schedule>-<tick>`` (an existing one is left alone) and records
    the tick in ``last_fired_at``. A new leader continues from there: ticks missed during the
    hand-over (up to ``MAX_CATCH_UP_SEC``, all of them with ``automatic_backfill``) are fired,
    none twice. A schedule created or resumed during a term starts at its next tick (with
    ``automatic_backfill``: after its last fired tick), as DBOS's scheduler does.
    """

    def __init__(
        self,
        db: SystemDatabase,
        leader_id: str,
        application_name: str | None,
        now: Callable[[], datetime.datetime] | None = None,
        *,
        refresh_sec: float = DEFAULT_SCHEDULER_POLLING_INTERVAL_SEC,
    ) -> None:
        """``refresh_sec``: how often the ACTIVE schedules are re-read (see below)."""
        self._db = db
        self.refresh_sec = refresh_sec
        self._leader_id = leader_id
        self._application_name = application_name
        # The database clock by default: a leader whose host clock is off fires on time.
        self._now = now or (lambda: datetime.datetime.fromtimestamp(db.clock.now_ms() / 1000, datetime.timezone.utc))
        self._cursors: dict[str, _Cursor] = {}
        self._term: int | None = None
        # The ACTIVE schedules as last read, and when to read them again: every refresh_sec
        # (DBOS's scheduler polls every 30 s by default), at once after a change made in this
        # process or a tick that found its schedule changed. A stale copy cannot fire a paused or changed
        # schedule: each tick's statement checks the definition it was computed from.
        self._rows: list[WorkflowScheduleRow] = []
        self._refresh_at: datetime.datetime | None = None
        self._seen_writes = -1

    def __call__(self, term: int) -> set[str]:
        """Fire the due ticks as the leader of ``term``; the queues that got work."""
        now = self._now()
        continuing = term != self._term  # a new term carries on from the last leader's ticks
        if continuing:
            self._cursors.clear()
            self._term = term
        rows = self._active_rows(now, continuing)
        active = {row.schedule_id for row in rows}
        for schedule_id in list(self._cursors):
            if schedule_id not in active:  # paused or deleted: a later resume starts afresh
                del self._cursors[schedule_id]
        queues: set[str] = set()
        for row in rows:
            cursor = self._cursors.get(row.schedule_id)
            if cursor is None or _definition(cursor.row) != _definition(row):
                # A changed definition starts at its next tick (DBOS restarts it, no backfill).
                after = self._start(row, now, continuing) if cursor is None else now
                cursor = self._cursors[row.schedule_id] = _Cursor(row, after)
            if not self._fire_due(term, cursor, now, queues):
                break  # the lease is gone: fire nothing more
        return queues

    def _active_rows(self, now: datetime.datetime, continuing: bool) -> list[WorkflowScheduleRow]:
        writes = self._db.workflow_schedules.writes
        if continuing or writes != self._seen_writes or self._refresh_at is None or now >= self._refresh_at:
            self._rows = self._db.workflow_schedules.list(ScheduleFilter(statuses=["ACTIVE"]))
            self._seen_writes = writes
            self._refresh_at = now + datetime.timedelta(seconds=self.refresh_sec)
        return self._rows

    def _start(self, row: WorkflowScheduleRow, now: datetime.datetime, continuing: bool) -> datetime.datetime:
        try:
            last = datetime.datetime.fromisoformat(row.last_fired_at) if row.last_fired_at else None
        except ValueError:  # not written by a scheduler: start afresh
            last = None
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=datetime.timezone.utc)
        if last is not None and (row.automatic_backfill or (continuing and last >= now - datetime.timedelta(seconds=MAX_CATCH_UP_SEC))):
            return last
        return now

    def _fire_due(self, term: int, cursor: _Cursor, now: datetime.datetime, queues: set[str]) -> bool:
        """Fire ``cursor``'s due ticks (at most ``MAX_TICKS_PER_PASS``); False: the lease is gone."""
        if cursor.broken:
            return True
        row = cursor.row
        ticks = schedules.ticks_after(row, cursor.after)
        for _ in range(MAX_TICKS_PER_PASS):
            try:
                tick = next(ticks)
                if tick > now:
                    break
                run = schedules.run_of(row, schedules.tick_workflow_id(row.schedule_name, tick), tick, self._application_name)
            except Exception as exc:  # noqa: BLE001 - computing a tick touches no database
                # A cron with no next date (a past year), an unknown time zone or a context only
                # its application can read: this schedule cannot fire here, the others still do.
                cursor.broken = True
                log.warning("schedule cannot be fired", schedule=row.schedule_name, error=str(exc))
                return True
            fired = self._db.workflow_schedules.fire_tick(term, self._leader_id, row, run, tick.isoformat())
            if not fired.leading:
                return False
            if not fired.active:  # paused, deleted or changed meanwhile: re-read next tick
                self._cursors.pop(row.schedule_id, None)
                self._refresh_at = None
                return True
            cursor.after = tick
            if fired.enqueued:
                queues.add(run.queue_name)
        return True
