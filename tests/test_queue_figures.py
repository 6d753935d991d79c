"""The per-queue figures door (``db.queue_figures``, issue #13) on a real database: limits of
declared, database-backed and undeclared queues, counts by status, the oldest wait, the last
minute's starts, and a plan that never scans finished workflows."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from sysdb import SystemDatabase
from sysdb.queue_figures import QueueFigures

# Rows written straight into the table: the figures are about rows, whoever wrote them.
INSERT = """
INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, created_at, updated_at, started_at_epoch_ms)
SELECT %(prefix)s || g, %(status)s, 'figures_job', %(queue)s,
       now_ms - %(created_ago_ms)s, now_ms - %(updated_ago_ms)s,
       CASE WHEN %(started_ago_ms)s::bigint IS NULL THEN NULL ELSE now_ms - %(started_ago_ms)s::bigint END
FROM generate_series(1, %(n)s) AS g,
     LATERAL (SELECT (extract(epoch FROM now()) * 1000)::bigint AS now_ms) AS t
"""


def add_rows(db: psycopg.Connection, prefix: str, status: str, queue: str | None, n: int = 1, *,
             created_ago_sec: float = 0, updated_ago_sec: float = 0, started_ago_sec: float | None = None) -> None:
    db.execute(INSERT, {
        "prefix": prefix, "status": status, "queue": queue, "n": n,
        "created_ago_ms": int(created_ago_sec * 1000), "updated_ago_ms": int(updated_ago_sec * 1000),
        "started_ago_ms": None if started_ago_sec is None else int(started_ago_sec * 1000),
    })


def declare(db: psycopg.Connection, executor_id: str, status: str, limits: dict[str, dict[str, object]]) -> None:
    """A member row as a registering executor writes it: its queues' limits from code."""
    db.execute(
        "INSERT INTO dbos.pgfleet_executors (executor_id, epoch, host, pid, status, queue_limits) VALUES (%s, 1, 'h', 1, %s, %s)",
        (executor_id, status, json.dumps(limits)),
    )


@pytest.fixture
def sysdb(sys_url: str) -> Iterator[SystemDatabase]:
    database = SystemDatabase(sys_url, pool_size=1)
    database.open(run_migrations=False)
    yield database
    database.close()


def by_name(figures: list[QueueFigures]) -> dict[str, QueueFigures]:
    return {f.name: f for f in figures}


def test_an_empty_fleet_has_no_queues(sysdb: SystemDatabase) -> None:
    assert sysdb.queue_figures.current() == []


def test_declared_database_backed_and_undeclared_queues(sysdb: SystemDatabase, db: psycopg.Connection) -> None:
    declare(db, "live", "active", {
        "orders": {"concurrency": 10, "worker_concurrency": 2, "rate_limit": [50, 30.0], "partitioned": True, "priority_enabled": True},
        "_dbos_internal_queue": {"concurrency": None, "worker_concurrency": None, "rate_limit": None},
    })
    # A dead member's declaration does not count: its queue is only listed for its rows.
    declare(db, "gone", "dead", {"legacy": {"concurrency": 99}})
    db.execute("INSERT INTO dbos.queues (name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec) "
               "VALUES ('refunds', 3, NULL, 5, 1.5), ('orders', 1000, 1000, NULL, NULL)")
    add_rows(db, "o-e-", "ENQUEUED", "orders", 4, created_ago_sec=600, updated_ago_sec=30)
    add_rows(db, "o-e2-", "ENQUEUED", "orders", 1, created_ago_sec=5, updated_ago_sec=5)
    add_rows(db, "o-d-", "DELAYED", "orders", 2, updated_ago_sec=900)
    add_rows(db, "o-p-", "PENDING", "orders", 3, started_ago_sec=10)
    add_rows(db, "o-p-old-", "PENDING", "orders", 1, started_ago_sec=120)
    add_rows(db, "o-s-", "SUCCESS", "orders", 5, started_ago_sec=20)
    add_rows(db, "o-s-old-", "SUCCESS", "orders", 7, started_ago_sec=3600)
    add_rows(db, "l-e-", "ENQUEUED", "legacy", 2, updated_ago_sec=1)
    add_rows(db, "direct-", "SUCCESS", None, 3, started_ago_sec=1)  # not queued: no queue at all

    figures = sysdb.queue_figures.current()
    assert [f.name for f in figures] == ["legacy", "orders", "refunds"]
    queues = by_name(figures)

    orders = queues["orders"]  # the code declaration wins over the dbos.queues row of that name
    assert (orders.concurrency, orders.worker_concurrency, orders.rate_limit_max, orders.rate_limit_period_sec) == (10, 2, 50, 30.0)
    assert orders.partitioned and orders.priority_enabled
    assert (orders.enqueued, orders.delayed, orders.pending) == (5, 2, 4)
    # The wait counts from when the row became ENQUEUED (updated_at), not from its creation.
    assert orders.oldest_enqueued_age_sec is not None and 30 <= orders.oldest_enqueued_age_sec < 90
    assert orders.started_last_minute == 3 + 5

    refunds = queues["refunds"]
    assert (refunds.concurrency, refunds.worker_concurrency, refunds.rate_limit_max, refunds.rate_limit_period_sec) == (3, None, 5, 1.5)
    assert (refunds.enqueued, refunds.delayed, refunds.pending, refunds.started_last_minute) == (0, 0, 0, 0)
    assert refunds.oldest_enqueued_age_sec is None and not refunds.partitioned

    legacy = queues["legacy"]
    assert legacy == QueueFigures(
        name="legacy", concurrency=None, worker_concurrency=None, rate_limit_max=None, rate_limit_period_sec=None,
        priority_enabled=False, partitioned=False, enqueued=2, delayed=0, pending=0,
        oldest_enqueued_age_sec=legacy.oldest_enqueued_age_sec, started_last_minute=0,
    )
    assert legacy.oldest_enqueued_age_sec is not None and 1 <= legacy.oldest_enqueued_age_sec < 60


def test_a_queue_with_only_recent_starts_is_listed(sysdb: SystemDatabase, db: psycopg.Connection) -> None:
    add_rows(db, "done-", "SUCCESS", "bursty", 6, started_ago_sec=15)
    add_rows(db, "older-", "ERROR", "bursty", 2, started_ago_sec=61)
    add_rows(db, "ancient-", "SUCCESS", "quiet", 2, started_ago_sec=7200)
    figures = sysdb.queue_figures.current()
    assert [(f.name, f.started_last_minute, f.enqueued, f.oldest_enqueued_age_sec) for f in figures] == [("bursty", 6, 0, None)]


def test_the_statement_reads_no_finished_rows(sysdb: SystemDatabase, db: psycopg.Connection) -> None:
    """On a table of mostly finished workflows, every count goes through a partial or range
    index: the plan has no sequential scan of dbos.workflow_status."""
    add_rows(db, "hist-", "SUCCESS", "orders", 60_000, started_ago_sec=86_400)
    add_rows(db, "err-", "ERROR", "orders", 5_000, started_ago_sec=86_400)
    add_rows(db, "live-e-", "ENQUEUED", "orders", 20)
    add_rows(db, "live-d-", "DELAYED", "orders", 5)
    add_rows(db, "live-p-", "PENDING", "orders", 7, started_ago_sec=3)
    db.execute("ANALYZE dbos.workflow_status")

    from sysdb.statements import statement

    plan = "\n".join(row[0] for row in db.execute("EXPLAIN (COSTS OFF) " + statement("queue_figures")))
    assert "Seq Scan on workflow_status" not in plan, plan
    for index in ("idx_workflow_status_in_flight", "idx_workflow_status_delayed", "idx_workflow_status_started_at"):
        assert index in plan, plan
    (orders,) = sysdb.queue_figures.current()
    assert (orders.enqueued, orders.delayed, orders.pending, orders.started_last_minute) == (20, 5, 7, 7)
