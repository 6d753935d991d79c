"""The fleet's per-queue Prometheus gauges, exported once per fleet: by the leader (issue #13).

Every worker serves ``/metrics``, but a queue's depth is a fact about the fleet, not about one
worker: if each worker exported it, a scraper summing over pods (a KEDA or HPA query) would
count every queue once per worker. So only the process that is leader at scrape time yields
these gauges; the others yield none of them, and when leadership moves, so do they.

The figures come from one indexed statement (``db.queue_figures.current()``) read at scrape time
through a short cache (:data:`FIGURES_MAX_AGE_SEC`), so any number of scrapers costs the database
at most one read per cache period.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sysdb.logs import get_logger
from sysdb.queue_figures import QueueFigures

if TYPE_CHECKING:
    from .process import DBOSProcess

__all__ = ["FIGURES_MAX_AGE_SEC", "QUEUE_STATUSES", "FiguresCache", "QueueGaugeCollector", "queue_gauges"]

log = get_logger("pgfleet.runtime")

# How long one read of the figures answers scrapes: Prometheus scrapes every 15-60 s, so 2 s
# never hides a change from it, while a burst of scrapers (several Prometheus replicas, a
# console polling the JSON endpoint) costs one statement.
FIGURES_MAX_AGE_SEC = 2.0

# The statuses of pgfleet_queue_depth's status label, as the rows name them.
QUEUE_STATUSES = ("ENQUEUED", "DELAYED", "PENDING")


class FiguresCache:
    """The last read of ``read()``, reused for ``max_age_sec`` (on ``clock``, monotonic seconds).
    A failed read is remembered as "no figures" for the same time, so a database that is down is
    not asked again at every scrape."""

    def __init__(
        self,
        read: Callable[[], list[QueueFigures]],
        max_age_sec: float = FIGURES_MAX_AGE_SEC,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age_sec < 0:
            raise ValueError(f"FiguresCache max_age_sec must be >= 0, got {max_age_sec}")
        self._read = read
        self._max_age_sec = max_age_sec
        self._clock = clock
        self._lock = threading.Lock()  # concurrent scrapes wait for one read instead of each reading
        self._figures: list[QueueFigures] = []
        self._read_at: float | None = None
        self.reads = 0  # how many times the database was asked (the cache's effect is testable)

    def get(self) -> list[QueueFigures]:
        """The figures, read again only when the last read is older than ``max_age_sec``."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._max_age_sec:
                self._figures = self._fresh()
                self._read_at = self._clock()
            return self._figures

    def _fresh(self) -> list[QueueFigures]:
        self.reads += 1
        try:
            return self._read()
        except Exception as exc:  # a scrape must answer, with what it has: the other metrics
            log.warning("queue figures unreadable; exporting no queue gauges", error=str(exc))
            return []


def queue_gauges(figures: list[QueueFigures]) -> list[GaugeMetricFamily]:
    """The gauge families for these figures. A limit a queue does not have is left out (no
    sample) rather than exported as 0, which would read as "nothing may run"; an empty queue's
    oldest wait is 0, so an autoscaler's query on it always has a value."""
    depth = GaugeMetricFamily("pgfleet_queue_depth", "Workflows of a queue by status (fleet-wide; leader only)", labels=["queue", "status"])
    running = GaugeMetricFamily("pgfleet_queue_running", "PENDING workflows of a queue (fleet-wide; leader only)", labels=["queue"])
    oldest = GaugeMetricFamily(
        "pgfleet_queue_oldest_enqueued_age_seconds",
        "How long the longest-waiting ENQUEUED workflow of a queue has waited, 0 when none waits",
        labels=["queue"],
    )
    started = GaugeMetricFamily("pgfleet_queue_started_last_minute", "Workflows of a queue started in the last minute", labels=["queue"])
    concurrency = GaugeMetricFamily("pgfleet_queue_concurrency_limit", "A queue's fleet-wide concurrency limit", labels=["queue"])
    worker = GaugeMetricFamily("pgfleet_queue_worker_concurrency_limit", "A queue's per-worker concurrency limit", labels=["queue"])
    rate = GaugeMetricFamily("pgfleet_queue_rate_limit", "A queue's rate limit: starts allowed per period", labels=["queue"])
    period = GaugeMetricFamily("pgfleet_queue_rate_limit_period_seconds", "A queue's rate-limit period", labels=["queue"])
    for f in figures:
        for status, count in zip(QUEUE_STATUSES, (f.enqueued, f.delayed, f.pending)):
            depth.add_metric([f.name, status], float(count))
        running.add_metric([f.name], float(f.pending))
        oldest.add_metric([f.name], f.oldest_enqueued_age_sec or 0.0)
        started.add_metric([f.name], float(f.started_last_minute))
        for family, limit in ((concurrency, f.concurrency), (worker, f.worker_concurrency), (rate, f.rate_limit_max)):
            if limit is not None:
                family.add_metric([f.name], float(limit))
        if f.rate_limit_max is not None and f.rate_limit_period_sec is not None:
            period.add_metric([f.name], float(f.rate_limit_period_sec))
    return [depth, running, oldest, started, concurrency, worker, rate, period]


class QueueGaugeCollector(Collector):
    """Yields :func:`queue_gauges` while ``process`` leads the fleet, nothing otherwise.

    Leadership is asked at every scrape (never cached): a process that stepped down stops
    exporting at once, so two pods never export the same queue for longer than a lease."""

    def __init__(self, process: DBOSProcess, max_age_sec: float = FIGURES_MAX_AGE_SEC) -> None:
        self._process = process
        self.cache = FiguresCache(self._read, max_age_sec)

    def _read(self) -> list[QueueFigures]:
        executor = self._process.executor
        return [] if executor is None else executor.db.queue_figures.current()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        services = self._process.services
        if self._process.executor is None or services is None or not services.leader.is_leader:
            return
        yield from queue_gauges(self.cache.get())
