"""The claim statement: which rows one claim takes, and how many it reads to find them.

The claim picks a queue's ENQUEUED rows and its due DELAYED rows apart, each by one ordered
index walk that stops after ``max_claim`` unlocked rows, and merges the two (issue #14: one
OR-ed scan fetched and sorted the queue's whole backlog at every claim). These tests call the
claim door directly on a real database and check what must not change with that: the budget's
rows are the first in priority then enqueue order across both kinds, rows locked by another
session are skipped and the budget is filled from the rows behind them, a not-yet-due delayed
row stays, and a claim reads about ``max_claim`` rows of a long backlog, not all of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sysdb import SystemDatabase
from sysdb.claims import ClaimRequest

QUEUE = "claim-order"
MEMBER = "claim-order-member"
CLAIM_SQL = (Path(__file__).resolve().parent.parent / "sysdb" / "sql" / "claim_queued_workflows.sql").read_text()


@pytest.fixture
def system_db(sys_url: str, db: psycopg.Connection) -> Iterator[SystemDatabase]:
    db.execute("INSERT INTO dbos.pgfleet_executors (executor_id, epoch, host, pid) VALUES (%s, 1, 'h', 1)", (MEMBER,))
    system_db = SystemDatabase(sys_url, pool_size=2)
    system_db.open()
    yield system_db
    system_db.close()


def _add(db: psycopg.Connection, wf: str, created_at: int, *, status: str = "ENQUEUED", priority: int = 0,
         delay_until: int | None = None) -> None:
    db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, created_at, updated_at, "
        "recovery_attempts, priority, delay_until_epoch_ms, enqueue_seq) "
        "VALUES (%s, %s, 'wf', %s, %s, %s, 0, %s, %s, nextval('dbos.pgfleet_enqueue_seq'))",
        (wf, status, QUEUE, created_at, created_at, priority, delay_until))


def _request(max_claim: int, worker_concurrency: int | None = None) -> ClaimRequest:
    return ClaimRequest(queue_name=QUEUE, partition_key=None, executor_id=MEMBER, member_epoch=1,
                        application_version="v1", workflow_names=["wf"], max_claim=max_claim,
                        concurrency=None, worker_concurrency=worker_concurrency, rate_limit=None)


def _claimed(system_db: SystemDatabase, request: ClaimRequest) -> set[str]:
    return {row.workflow_uuid for row in system_db.claims.claim(request)}


def test_a_claim_takes_due_delayed_and_enqueued_rows_in_priority_then_enqueue_order(system_db, db):
    now = int(time.time() * 1000)
    _add(db, "enq-late", 40)
    _add(db, "enq-early", 20)
    _add(db, "delayed-due", 10, status="DELAYED", delay_until=now - 1000)
    _add(db, "delayed-not-due", 5, status="DELAYED", delay_until=now + 3_600_000)
    _add(db, "delayed-due-later", 30, status="DELAYED", delay_until=now - 1000)
    _add(db, "enq-urgent", 50, priority=-1)

    assert _claimed(system_db, _request(2)) == {"enq-urgent", "delayed-due"}
    assert _claimed(system_db, _request(2)) == {"enq-early", "delayed-due-later"}
    assert _claimed(system_db, _request(5)) == {"enq-late"}
    status = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'delayed-not-due'").fetchone()
    assert status == ("DELAYED",)


def test_rows_locked_elsewhere_are_skipped_and_the_budget_filled_from_the_rows_behind(system_db, db, sys_url):
    for i in range(6):
        _add(db, f"wf-{i}", 10 + i)
    with psycopg.connect(sys_url) as holder:  # a writer (a cancel, say) holding the two oldest
        holder.execute("SELECT 1 FROM dbos.workflow_status WHERE workflow_uuid IN ('wf-0', 'wf-1') FOR UPDATE")
        assert _claimed(system_db, _request(3)) == {"wf-2", "wf-3", "wf-4"}
    assert _claimed(system_db, _request(3)) == {"wf-0", "wf-1", "wf-5"}


def test_a_claim_with_no_budget_takes_nothing(system_db, db):
    _add(db, "running", 1, status="PENDING")
    db.execute("UPDATE dbos.workflow_status SET executor_id = %s WHERE workflow_uuid = 'running'", (MEMBER,))
    _add(db, "waiting", 2)
    assert _claimed(system_db, _request(4, worker_concurrency=1)) == set()
    assert _claimed(system_db, _request(4, worker_concurrency=2)) == {"waiting"}


def _status_rows_read(plan: dict[str, Any]) -> int:
    """Rows every scan of dbos.workflow_status or one of its indexes returned, loops included."""
    on_status = plan.get("Relation Name") == "workflow_status" or "workflow_status" in plan.get("Index Name", "")
    own = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1) if "Scan" in plan["Node Type"] and on_status else 0
    return int(own) + sum(_status_rows_read(child) for child in plan.get("Plans", []))


def test_a_claim_reads_about_max_claim_rows_of_a_long_backlog(system_db, db):
    db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, created_at, updated_at, "
        "recovery_attempts, priority, enqueue_seq) "
        "SELECT 'backlog-' || g, 'ENQUEUED', 'wf', %s, g, g, 0, 0, nextval('dbos.pgfleet_enqueue_seq') "
        "FROM generate_series(1, 5000) AS g", (QUEUE,))
    db.execute("ANALYZE dbos.workflow_status")
    params = {"queue_name": QUEUE, "partition_key": None, "executor_id": MEMBER, "member_epoch": 1,
              "application_version": "v1", "workflow_names": ["wf"], "instance_classes": [], "instance_configs": [],
            "instance_methods": [], "class_methods": [], "classes": [],
              "max_claim": 10, "concurrency": None, "worker_concurrency": None, "limiter_limit": None,
              "limiter_period_ms": 0, "database_backed": False}
    with db.transaction(force_rollback=True):
        (plan,) = db.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + CLAIM_SQL, params).fetchone()
    plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
    assert plan["Plan"]["Actual Rows"] == 10
    # The old OR-ed scan read all 5,000 rows (and sorted them) to claim 10; an ordered walk reads
    # the claim's rows plus one batch of the incremental sort (at least 32 rows), and the update
    # looks each claimed row up once more.
    assert _status_rows_read(plan["Plan"]) <= 100
