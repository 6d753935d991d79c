"""Stopping async workflows on purpose or by an outage: `pgfleet supervise` draining an app whose
workflows are ``async def`` (SIGTERM), and a database restart while async workflows run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psycopg
import pytest

from conftest import REPO_ROOT, wait_until
from faults.ledger import create_ledger
from runtime import DBOSClient
from sysdb import SystemDatabase
from test_async_cluster import STEPS, Worker, mixed_ids, statuses
from test_supervisor import RUN, worker_pids

APP = str(REPO_ROOT / "tests" / "apps" / "supervised_async_app.py")


class Node:
    """A supervisor of tests/apps/supervised_async_app.py."""

    def __init__(self, url: str, tmp_path, name: str, *, grace: str, step_seconds: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PGFLEET_SYSTEM_DATABASE_URL": url,
               "PGFLEET_TEST_STEP_SECONDS": step_seconds}
        config = tmp_path / f"{name}.toml"
        config.write_text("heartbeat_interval_sec = 0.25\nmember_timeout_sec = 1.5\n")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RUN, "supervise", APP, "--name", name, "--grace", grace, "--config", str(config),
             "--workers", "1"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def nodes():
    started: list[Node] = []
    yield started
    for node in started:
        node.stop()


def enqueue_jobs(url: str, ids: list[str], steps: int) -> None:
    client = DBOSClient(system_database_url=url)
    try:
        for workflow_id in ids:
            client.enqueue({"workflow_name": "supervised_async_job", "queue_name": "async-jobs", "workflow_id": workflow_id},
                           steps)
    finally:
        client.destroy()


def rows(db, ids: list[str]) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in db.execute(
        "SELECT workflow_uuid, status, error, executor_id FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)", (ids,)
    )}


def test_sigterm_drains_async_workflows_within_the_grace_period(sys_url, ledger, tmp_path, nodes):
    db = ledger
    node = Node(sys_url, tmp_path, "adrain", grace="10", step_seconds="0.3")
    nodes.append(node)
    wait_until(lambda: worker_pids(db, "adrain"), "a worker", 30)
    ids = ["drain-0", "drain-1"]
    enqueue_jobs(sys_url, ids, 3)
    wait_until(lambda: db.execute("SELECT count(DISTINCT workflow_id) FROM public.side_effects").fetchone()[0] == 2,
               "both jobs running", 20)
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(40) == 0
    # The grace period was long enough: both async jobs finished before the worker left.
    assert {r[0] for r in rows(db, ids).values()} == {"SUCCESS"}, rows(db, ids)
    ran = db.execute("SELECT workflow_id, function_id, count(*) FROM public.side_effects GROUP BY 1, 2").fetchall()
    assert sorted(ran) == [(wf, i, 1) for wf in ids for i in (1, 2, 3)]


def test_async_workflows_cut_by_the_grace_period_write_no_outcome_and_finish_on_the_next_node(sys_url, ledger, tmp_path, nodes):
    db = ledger
    node = Node(sys_url, tmp_path, "acut", grace="0.5", step_seconds="1.5")
    nodes.append(node)
    wait_until(lambda: worker_pids(db, "acut"), "a worker", 30)
    ids = ["cut-0", "cut-1"]
    enqueue_jobs(sys_url, ids, 3)
    wait_until(lambda: db.execute("SELECT count(DISTINCT workflow_id) FROM public.side_effects").fetchone()[0] == 2,
               "both jobs running", 20)
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(40) == 0
    # Stopped mid-step by the end of the grace period: no outcome (a CancelledError is not the
    # workflow's error), handed back to the queue.
    after = rows(db, ids)
    assert {r[:2] for r in after.values()} == {("ENQUEUED", None)}, after

    successor = Node(sys_url, tmp_path, "anext", grace="10", step_seconds="0.05")
    nodes.append(successor)
    wait_until(lambda: {r[0] for r in rows(db, ids).values()} == {"SUCCESS"}, "the next node to finish them", 40)
    positions = db.execute(
        "SELECT workflow_uuid, count(*) FROM dbos.operation_outputs WHERE workflow_uuid = ANY(%s) GROUP BY 1 ORDER BY 1", (ids,)
    ).fetchall()
    assert positions == [(wf, 3) for wf in ids]
    # A step checkpointed before the stop never ran again.
    done_before = db.execute(
        "SELECT s.workflow_id, s.function_id FROM public.side_effects s WHERE s.executor_id LIKE 'acut-%' "
        "AND s.function_id < (SELECT max(function_id) FROM public.side_effects x WHERE x.workflow_id = s.workflow_id "
        "AND x.executor_id LIKE 'acut-%')"
    ).fetchall()
    for workflow_id, function_id in done_before:
        again = db.execute(
            "SELECT count(*) FROM public.side_effects WHERE workflow_id = %s AND function_id = %s", (workflow_id, function_id)
        ).fetchone()[0]
        assert again == 1, (workflow_id, function_id)


def test_a_database_restart_stops_async_workflows_as_an_outage_and_they_resume():
    """A server of this test's own (durable), stopped for longer than the member timeout."""
    from psycopg.conninfo import make_conninfo

    from sysdb.embedded import EmbeddedPostgres

    base = tempfile.mkdtemp(prefix="pgfleet-async-restart-")  # not under tmp_path: see test_cluster
    server = EmbeddedPostgres(base, durability=True)
    server.ensure_running()
    url = make_conninfo(server.url("postgres"), dbname="async_restart")
    workers: list[Worker] = []
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE async_restart")
        bootstrap = SystemDatabase(url, pool_size=1)
        bootstrap.open()
        bootstrap.close()
        with psycopg.connect(url, autocommit=True) as conn:
            create_ledger(conn)
        env = {"PGFLEET_TEST_STEP_SECONDS": "0.5"}
        workers.append(Worker(url, "node-a", "mixed", "2", env=env))
        workers.append(Worker(url, "node-b", "mixed", "2", env=env))
        ids = mixed_ids("node-a", 2) + mixed_ids("node-b", 2)

        def recorded() -> int:
            with psycopg.connect(url) as conn:
                return conn.execute("SELECT count(*) FROM dbos.operation_outputs").fetchone()[0]

        wait_until(lambda: recorded() >= len(ids), "some steps", 30)
        server.stop(mode="fast")
        time.sleep(1.5 + 1.5)  # the outage itself: longer than the member timeout
        server.ensure_running()

        def all_done() -> bool:
            with psycopg.connect(url) as conn:
                return set(statuses(conn, ids).values()) == {"SUCCESS"}

        wait_until(all_done, "every async workflow to finish after the restart", 90, interval=0.2)
        for worker in workers:
            assert worker.proc.poll() is None, "an executor died instead of reconnecting"
        with psycopg.connect(url, autocommit=True) as conn:
            for workflow_id in ids:
                positions = [r[0] for r in conn.execute(
                    "SELECT function_id FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY 1", (workflow_id,)
                )]
                assert positions == list(range(1, STEPS + 1)), (workflow_id, positions)
                assert conn.execute(
                    "SELECT error FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)
                ).fetchone() == (None,)
            # No step body ran more than twice (once before the outage cut its checkpoint).
            most = conn.execute(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM public.side_effects GROUP BY workflow_id, function_id) c"
            ).fetchone()[0]
            assert most <= 2
    finally:
        for worker in workers:
            worker.kill()
        server.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)
