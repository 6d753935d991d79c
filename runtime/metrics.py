"""Prometheus metrics of one executor process (``pgfleet supervise --metrics-port``).

Counters and the step-latency histogram are updated where things happen (cheap in-memory
increments, always on); queue depth, heartbeat age and the leader term are read when Prometheus
scrapes, by a collector that asks the running executor. ``serve_metrics(port)`` starts the
HTTP endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Histogram, start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "WORKFLOWS_FINISHED",
    "STEPS",
    "STEP_SECONDS",
    "CLAIMS",
    "TAKEOVERS",
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


class _ExecutorCollector(Collector):
    """Reads the live executor at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from .dbos import DBOS

        instance = DBOS._instance
        executor = instance._executor if instance is not None else None
        services = getattr(executor, "services", None)
        if executor is None or services is None:
            return
        heartbeat = GaugeMetricFamily("pgfleet_heartbeat_age_seconds", "Seconds since this member's last successful heartbeat")
        heartbeat.add_metric([], services.heartbeat.seconds_since_success())
        yield heartbeat
        term = GaugeMetricFamily("pgfleet_leader_term", "The leader term this process holds (0 when not leader)")
        term.add_metric([], float(services.leader.term or 0) if services.leader.is_leader else 0.0)
        yield term
        depth = GaugeMetricFamily("pgfleet_queue_depth", "Workflows per queue and state", labels=["queue", "state"])
        try:
            counts = executor.db.claims.counts()
        except Exception:
            counts = []
        for queue in counts:
            for state, count in (("enqueued", queue.enqueued), ("delayed", queue.delayed), ("running", queue.running)):
                depth.add_metric([queue.queue_name, state], float(count))
        yield depth


_collector_registered = False


def serve_metrics(port: int) -> None:
    """Expose this process's metrics on ``http://0.0.0.0:<port>/metrics``."""
    global _collector_registered
    if not _collector_registered:
        REGISTRY.register(_ExecutorCollector())
        _collector_registered = True
    start_http_server(port)
