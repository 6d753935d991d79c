"""Per-queue figures for operators and autoscalers (issue #13): how much work waits, how old the
oldest is, how much runs against the limits, how fast work starts. Read by the web console's
queues page and JSON endpoint, and exported as Prometheus gauges by the leader (once per fleet).
"""

from __future__ import annotations

from dataclasses import dataclass

from .door import Door, row_to

__all__ = ["QueueFigures", "QueueFiguresDoor"]


@dataclass(frozen=True)
class QueueFigures:
    """One queue now. Limits are as the live members declared them (or its ``dbos.queues`` row);
    None when the queue has none. Ages and rates are on the database clock."""

    name: str
    concurrency: int | None
    worker_concurrency: int | None
    rate_limit_max: int | None
    rate_limit_period_sec: float | None
    priority_enabled: bool
    partitioned: bool
    enqueued: int
    delayed: int
    pending: int
    oldest_enqueued_age_sec: float | None  # the oldest ENQUEUED row's wait so far
    started_last_minute: int


class QueueFiguresDoor(Door):
    """The figures of every queue in one indexed statement (``db.queue_figures``): cheap enough
    for a scrape every few seconds on a database with millions of finished workflows, since it
    reads only live rows and the last minute's starts."""

    def current(self) -> list[QueueFigures]:
        """Every queue now, by name: those the live members declare, the database-backed ones,
        and any queue with live rows or recent starts that nobody declares (limits None)."""
        return [row_to(QueueFigures, row) for row in self._execute("queue_figures")]
