"""The door to ``@DBOS.scheduled`` schedules (``dbos.pgfleet_schedules``) and their ticks."""

from __future__ import annotations

from dataclasses import dataclass

from .door import Door
from .timestamps import now_ms

__all__ = ["Schedules", "ScheduleRow", "ScheduledTick"]


@dataclass(frozen=True)
class ScheduleRow:
    """A declared schedule and its latest enqueued tick (epoch ms; None before the first)."""

    schedule_name: str
    workflow_name: str
    cron: str
    last_tick_epoch_ms: int | None


@dataclass(frozen=True)
class ScheduledTick:
    """One tick of a schedule, enqueued by the leader of ``term`` as workflow ``workflow_id``
    on ``queue_name`` with ``inputs``; ``tick_ms`` is the tick's time (epoch ms)."""

    term: int
    leader_id: str
    schedule_name: str
    workflow_name: str
    workflow_id: str
    queue_name: str
    inputs: str
    serialization: str | None
    tick_ms: int


class Schedules(Door):
    """Declare schedules, list them, and enqueue their ticks under the leader's lease."""

    def upsert(self, schedule_name: str, workflow_name: str, cron: str) -> None:
        """Declare a schedule (or update its cron expression)."""
        params = {"schedule_name": schedule_name, "workflow_name": workflow_name, "cron": cron, "now_ms": now_ms()}
        self._execute("upsert_schedule", params)

    def declared(self) -> list[ScheduleRow]:
        """Every declared schedule."""
        return [ScheduleRow(**row) for row in self._execute("list_schedules")]

    def enqueue_tick(self, tick: ScheduledTick) -> int | None:
        """Enqueue ``tick`` and advance its schedule's latest tick, while the leader's lease of
        ``tick.term`` holds. Returns how many workflows were enqueued (0: the tick existed
        already), or None when the lease is gone."""
        rows = self._execute("enqueue_scheduled_tick", {**vars(tick), "now_ms": now_ms(), "now": self._now()})
        if not rows:
            return None
        enqueued: int = rows[0]["enqueued"]
        return enqueued
