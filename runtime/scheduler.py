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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from croniter import croniter

from sysdb import SystemDatabase
from sysdb.logs import get_logger
from sysdb.schedules import ScheduledTick, ScheduleRow

from .errors import DBOSException
from .queues import INTERNAL_QUEUE_NAME
from .serialization import SERIALIZATION_FORMAT, serialize_args

__all__ = ["Schedule", "ScheduleTicker", "schedules", "add_schedule", "declare_schedules", "enqueue_due_ticks", "MAX_CATCH_UP_SEC"]

log = get_logger("pgfleet.runtime")

# After a gap with no leader, ticks older than this are skipped rather than run in a burst.
MAX_CATCH_UP_SEC = 60.0
# At most this many ticks of one schedule are enqueued per leader tick.
MAX_TICKS_PER_PASS = 100


@dataclass(frozen=True)
class Schedule:
    workflow_name: str
    cron: str

    @property
    def with_seconds(self) -> bool:
        return len(self.cron.split()) == 6


schedules: dict[str, Schedule] = {}
_lock = threading.Lock()
# Bumped whenever this process declares schedules, so its ticker re-reads them at once.
_declared_version = 0


def add_schedule(workflow_name: str, cron: str) -> None:
    """Register a schedule (5 cron fields, or 6 with seconds first). Raises on a bad cron."""
    fields = cron.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(cron, second_at_beginning=len(fields) == 6):
        raise DBOSException(f"invalid cron expression {cron!r} for scheduled workflow {workflow_name!r}")
    with _lock:
        schedules[workflow_name] = Schedule(workflow_name, cron)


def declare_schedules(db: SystemDatabase, can_run: Callable[[str], bool]) -> None:
    """Write this process's schedules to the database (at launch)."""
    global _declared_version
    for schedule in list(schedules.values()):
        if can_run(schedule.workflow_name):
            db.schedules.upsert(schedule.workflow_name, schedule.workflow_name, schedule.cron)
    _declared_version += 1


def _due_ticks(cron: str, after: datetime.datetime, until: datetime.datetime) -> list[datetime.datetime]:
    iterator = croniter(cron, after, second_at_beginning=len(cron.split()) == 6)
    ticks: list[datetime.datetime] = []
    while len(ticks) < MAX_TICKS_PER_PASS:
        tick = iterator.get_next(datetime.datetime)
        if tick > until:
            break
        ticks.append(tick)
    return ticks


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
            name = row.workflow_name
            result = db.schedules.enqueue_tick(ScheduledTick(
                term=term,
                leader_id=leader_id,
                schedule_name=row.schedule_name,
                workflow_name=name,
                workflow_id=f"sched-{name}-{tick.isoformat()}",
                queue_name=INTERNAL_QUEUE_NAME,
                inputs=serialize_args((tick, datetime.datetime.now(datetime.timezone.utc)), {}, workflow_name=name),
                serialization=SERIALIZATION_FORMAT,
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

    def __init__(self, db: SystemDatabase, leader_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._leader_id = leader_id
        self._clock = clock
        self._rows: list[ScheduleRow] = []
        self._next_refresh = 0.0
        self._term: int | None = None
        self._version = -1

    def __call__(self, term: int) -> int:
        if term != self._term or self._version != _declared_version or self._clock() >= self._next_refresh:
            self._version = _declared_version
            # A new term may follow another leader's ticks: start from the database's view.
            self._rows = self._db.schedules.declared()
            self._next_refresh = self._clock() + self.REFRESH_SEC
            self._term = term
        if not self._rows:
            return 0
        return enqueue_due_ticks(self._db, term, self._leader_id, self._rows)
