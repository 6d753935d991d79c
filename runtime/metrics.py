"""Prometheus metrics of one executor process (``pgfleet supervise --metrics-port``).

Counters and the step-latency histogram are updated where things happen (cheap in-memory
increments, always on); heartbeat age and the leader term are read when Prometheus scrapes, by a
collector that asks the process object it was given. The per-queue gauges are the fleet's, so
only the leader exports them (:mod:`runtime.queue_gauges`). ``serve_metrics(port, process)``
starts the HTTP endpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram, start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .queue_gauges import QueueGaugeCollector

if TYPE_CHECKING:
    from .process import DBOSProcess

__all__ = [
    "WORKFLOWS_FINISHED",
    "STEPS",
    "STEP_SECONDS",
    "CLAIMS",
    "TAKEOVERS",
    "count_step",
    "count_finished",
    "serve_metrics",
]

WORKFLOWS_FINISHED = Counter("pgfleet_workflows_finished", "Workflows this process finished, by outcome", ["status"])
STEPS = Counter("pgfleet_steps", "Steps this process executed (not replayed), by outcome", ["outcome"])
STEP_SECONDS = Histogram(
    "pgfleet_step_duration_seconds",
    "Time of a step's execution including its checkpoint",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CLAIMS = Counter("pgfleet_queue_claims", "Queued workflows this process claimed", ["queue"])
TAKEOVERS = Counter("pgfleet_takeovers", "Workflows moved off dead members by this process")


# The labelled children of the hot-path counters, looked up once per label value: ``labels()``
# takes the metric's lock and builds a key on every call, which was as much as a step's
# serialization (issue #14). Made on first use, so no series is exported before it counts.
@functools.cache
def _step_counter(outcome: str) -> Counter:
    return STEPS.labels(outcome)


@functools.cache
def _finished_counter(status: str) -> Counter:
    return WORKFLOWS_FINISHED.labels(status)


def count_step(outcome: str) -> None:
    """One more step executed here with ``outcome`` (``success`` or ``error``)."""
    _step_counter(outcome).inc()


def count_finished(status: str) -> None:
    """One more workflow finished here with ``status`` (``SUCCESS``, ``ERROR``)."""
    _finished_counter(status).inc()


class _ProcessCollector(Collector):
    """Reads a process object's executor and services at scrape time (nothing before launch)."""

    def __init__(self, process: DBOSProcess) -> None:
        self._process = process

    def collect(self) -> Iterator[GaugeMetricFamily]:
        executor, services = self._process.executor, self._process.services
        if executor is None or services is None:
            return
        heartbeat = GaugeMetricFamily("pgfleet_heartbeat_age_seconds", "Seconds since this member's last successful heartbeat")
        heartbeat.add_metric([], services.heartbeat.seconds_since_success())
        yield heartbeat
        term = GaugeMetricFamily("pgfleet_leader_term", "The leader term this process holds (0 when not leader)")
        term.add_metric([], float(services.leader.term or 0) if services.leader.is_leader else 0.0)
        yield term


class _DefaultRegistry(Collector):
    """Everything in prometheus_client's default registry: the counters above and the
    interpreter's own metrics."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def serve_metrics(port: int, process: DBOSProcess) -> None:
    """Expose the metrics of this process (``process``'s gauges with the counters) on
    ``http://0.0.0.0:<port>/metrics``. Each endpoint has a registry of its own, so nothing
    global is registered."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DefaultRegistry())
    registry.register(_ProcessCollector(process))
    registry.register(QueueGaugeCollector(process))
    start_http_server(port, registry=registry)
