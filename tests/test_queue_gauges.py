"""The per-queue Prometheus gauges (issue #13): exported by the leader only, with the database's
figures, through a short cache; when leadership moves, the gauges move with it.

Two process objects in this interpreter, each serving its own ``/metrics`` as a worker does
(``serve_metrics``), on the test's real database. Leadership is moved with the elector's own
hook (``leader.paused``, what a member that lost its membership sets), not by waiting.
"""

from __future__ import annotations

import re
import socket
import urllib.request
from collections.abc import Callable, Iterator

import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from conftest import wait_until
from runtime import DBOS, DBOSClient, Queue
from runtime.config import resolve_config
from runtime.metrics import serve_metrics
from runtime.process import DBOSProcess
from runtime.queue_gauges import FiguresCache, QueueGaugeCollector
from runtime.registry import registry
from sysdb import SystemDatabase

GAUGES = (
    "pgfleet_queue_depth",
    "pgfleet_queue_running",
    "pgfleet_queue_oldest_enqueued_age_seconds",
    "pgfleet_queue_started_last_minute",
    "pgfleet_queue_concurrency_limit",
    "pgfleet_queue_worker_concurrency_limit",
    "pgfleet_queue_rate_limit",
    "pgfleet_queue_rate_limit_period_seconds",
)


PORTS: dict[DBOSProcess, int] = {}  # the metrics port of each process built


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric's samples in an exposition text."""
    found = {}
    for match in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE):
        found[match.group(1) or ""] = float(match.group(2))
    return found


def has_no_queue_gauges(text: str) -> bool:
    return not any(re.search(rf"^(# TYPE )?{name}[ {{]", text, re.MULTILINE) for name in GAUGES)


@pytest.fixture
def build(sys_url: str) -> Iterator[Callable[[str], DBOSProcess]]:
    """``build(executor_id)``: a launched process object on the test's database serving metrics
    on a port of its own (``PORTS[process]``); destroyed afterwards."""
    DBOS.destroy(destroy_registry=True)
    built: list[DBOSProcess] = []

    def make(executor_id: str) -> DBOSProcess:
        config = resolve_config({
            "name": "gauges", "system_database_url": sys_url, "executor_id": executor_id, "sys_db_pool_size": 4,
            "heartbeat_interval_sec": 0.25, "member_timeout_sec": 1.5,
        })
        process = DBOSProcess(config, registry)
        built.append(process)
        PORTS[process] = free_port()
        serve_metrics(PORTS[process], process)
        process.launch()
        return process

    yield make
    for process in built:
        process.destroy()
        PORTS.pop(process, None)
    DBOS.destroy(destroy_registry=True)


def leader_of(*processes: DBOSProcess) -> DBOSProcess | None:
    leading = [p for p in processes if p.services is not None and p.services.leader.is_leader]
    return leading[0] if len(leading) == 1 else None


def test_the_leader_alone_exports_the_queue_gauges_and_they_follow_leadership(
    build: Callable[[str], DBOSProcess], sys_url: str, db: psycopg.Connection
) -> None:
    Queue("scaled", concurrency=4, worker_concurrency=2, limiter={"limit": 10, "period": 30})
    a, b = build("gauges-a"), build("gauges-b")
    client = DBOSClient(system_database_url=sys_url)
    try:
        # Nobody runs this workflow, so its rows stay as enqueued.
        for i in range(3):
            client.enqueue({"workflow_name": "nobody_runs_this", "queue_name": "scaled", "workflow_id": f"wait-{i}"}, i)
        client.enqueue({"workflow_name": "nobody_runs_this", "queue_name": "scaled", "delay_seconds": 600})
    finally:
        client.destroy()
    db.execute("UPDATE dbos.workflow_status SET updated_at = updated_at - 45000 WHERE workflow_uuid = 'wait-0'")
    # Running elsewhere (an executor that is no member, so no sweep touches them), started now;
    # and a queue nobody declares.
    db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, executor_id, started_at_epoch_ms) "
        "SELECT 'run-' || g, 'PENDING', 'nobody_runs_this', 'scaled', 'external', (extract(epoch FROM now()) * 1000)::bigint "
        "FROM generate_series(1, 2) g"
    )
    db.execute("INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name) VALUES ('stray-1', 'ENQUEUED', 'x', 'stray')")

    leader = wait_until(lambda: leader_of(a, b), "one leader", 30)
    follower = b if leader is a else a
    text = scrape(PORTS[leader])
    assert samples(text, "pgfleet_queue_depth") == {
        '{queue="scaled",status="ENQUEUED"}': 3.0, '{queue="scaled",status="DELAYED"}': 1.0,
        '{queue="scaled",status="PENDING"}': 2.0, '{queue="stray",status="ENQUEUED"}': 1.0,
        '{queue="stray",status="DELAYED"}': 0.0, '{queue="stray",status="PENDING"}': 0.0,
    }
    assert samples(text, "pgfleet_queue_running") == {'{queue="scaled"}': 2.0, '{queue="stray"}': 0.0}
    assert samples(text, "pgfleet_queue_started_last_minute") == {'{queue="scaled"}': 2.0, '{queue="stray"}': 0.0}
    # Limits the queue has, and none for the undeclared queue (absent, not 0).
    assert samples(text, "pgfleet_queue_concurrency_limit") == {'{queue="scaled"}': 4.0}
    assert samples(text, "pgfleet_queue_worker_concurrency_limit") == {'{queue="scaled"}': 2.0}
    assert samples(text, "pgfleet_queue_rate_limit") == {'{queue="scaled"}': 10.0}
    assert samples(text, "pgfleet_queue_rate_limit_period_seconds") == {'{queue="scaled"}': 30.0}
    ages = samples(text, "pgfleet_queue_oldest_enqueued_age_seconds")
    assert 45.0 <= ages['{queue="scaled"}'] < 105.0 and 0.0 <= ages['{queue="stray"}'] < 60.0
    # The follower exports its own metrics but none of the fleet's queue gauges.
    followed = scrape(PORTS[follower])
    assert "pgfleet_heartbeat_age_seconds" in followed and has_no_queue_gauges(followed), followed

    # The leader loses its membership (the elector's hook): it steps down, the other one leads,
    # and the gauges move with the leadership; the new leader reads the database afresh.
    db.execute("UPDATE dbos.workflow_status SET status = 'SUCCESS' WHERE workflow_uuid = 'stray-1'")
    assert leader.services is not None
    leader.services.leader.paused.set()
    wait_until(lambda: follower.services is not None and follower.services.leader.is_leader, "the other process to lead", 30)
    wait_until(lambda: has_no_queue_gauges(scrape(PORTS[leader])), "the old leader to stop exporting", 10)
    moved = samples(scrape(PORTS[follower]), "pgfleet_queue_depth")
    # The stray queue's only row finished (and never started): it is no queue any more.
    assert moved == {
        '{queue="scaled",status="ENQUEUED"}': 3.0, '{queue="scaled",status="DELAYED"}': 1.0, '{queue="scaled",status="PENDING"}': 2.0,
    }


def test_scrapes_within_the_cache_period_read_the_database_once(sys_url: str, db: psycopg.Connection) -> None:
    sysdb = SystemDatabase(sys_url, pool_size=1)
    sysdb.open(run_migrations=False)
    now = [100.0]
    try:
        cache = FiguresCache(sysdb.queue_figures.current, max_age_sec=2.0, clock=lambda: now[0])
        assert cache.get() == [] and cache.reads == 1
        db.execute("INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name) VALUES ('c-1', 'ENQUEUED', 'x', 'cached')")
        now[0] += 1.9
        assert cache.get() == [] and cache.reads == 1  # still the first read's figures
        now[0] += 0.1
        (figures,) = cache.get()
        assert (figures.name, figures.enqueued, cache.reads) == ("cached", 1, 2)
    finally:
        sysdb.close()
    # A database that cannot answer gives no figures (the scrape still answers), and is not
    # asked again before the period is over.
    now[0] += 5
    assert cache.get() == [] and cache.reads == 3
    assert cache.get() == [] and cache.reads == 3
    with pytest.raises(ValueError, match="max_age_sec must be >= 0"):
        FiguresCache(sysdb.queue_figures.current, max_age_sec=-1)


def test_a_process_that_has_not_launched_exports_no_queue_gauges(sys_url: str) -> None:
    DBOS.destroy(destroy_registry=True)
    process = DBOSProcess(resolve_config({"name": "gauges", "system_database_url": sys_url, "executor_id": "idle"}), registry)
    try:
        scrape_registry = CollectorRegistry(auto_describe=False)
        scrape_registry.register(QueueGaugeCollector(process))
        assert generate_latest(scrape_registry) == b""
    finally:
        process.destroy()
        DBOS.destroy(destroy_registry=True)
