"""Workflow management across the fleet (#10 item 5): bulk cancels and deletes reach a workflow
running on another executor (it stops before its next step, and a deleted one is never written
back), a new delay of a DELAYED workflow is what the fleet's claimer honours, and resetting the
system database is refused under a live fleet.

The other executor is tests/apps/admin_worker.py; its step bodies write a ledger row as they
start and then wait for a gate the test opens, so each test knows exactly where the workflow is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import wait_until
from runtime import DBOS, DBOSClient, DBOSException

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER = "admin-worker"


class Worker:
    """admin_worker.py in a process of its own; its stdout lines are collected as they come."""

    def __init__(self, url: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "apps" / "admin_worker.py"), url, WORKER],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: "ready" in self.lines or self.proc.poll() is not None, "the worker to launch")
        assert "ready" in self.lines, self.proc.stderr.read() if self.proc.stderr else ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def stopped(self, workflow_id: str) -> str | None:
        """The error type the worker's execution of ``workflow_id`` stopped with, if it did."""
        for line in self.lines:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "stopped" and parts[1] == workflow_id:
                return parts[2]
        return None

    def describe(self) -> str:
        """What the worker printed (and, once it is killed, its stderr's tail), for a failure."""
        self.kill()
        err = self.proc.stderr.read() if self.proc.stderr else ""
        return f"stdout: {self.lines}\nstderr: {err[-3000:]}"

    def wait_stopped(self, workflow_id: str) -> str:
        try:
            return str(wait_until(lambda: self.stopped(workflow_id), f"{workflow_id}'s owner to stop"))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def quit(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def fleet(db: psycopg.Connection, sys_url: str) -> Iterator[tuple[Worker, DBOSClient]]:
    from faults.ledger import create_ledger

    create_ledger(db)
    db.execute("CREATE TABLE public.admin_gates (step int PRIMARY KEY)")
    worker = Worker(sys_url)
    client = DBOSClient(system_database_url=sys_url)
    try:
        yield worker, client
    finally:
        client.destroy()
        worker.kill()


def enqueue(client: DBOSClient, workflow_id: str, name: str = "gated", *args: object, **options: object) -> None:
    client.enqueue({"workflow_name": name, "queue_name": "admin-q", "workflow_id": workflow_id,
                    "app_version": "admin-tests", **options}, *(args or (3,)))  # type: ignore[typeddict-item]


def started_steps(db: psycopg.Connection, workflow_id: str) -> list[int]:
    rows = db.execute("SELECT function_id FROM public.side_effects WHERE workflow_id = %s ORDER BY id", (workflow_id,))
    return [r[0] for r in rows.fetchall()]


def open_gates(db: psycopg.Connection, *steps: int) -> None:
    for step in steps:
        db.execute("INSERT INTO public.admin_gates VALUES (%s) ON CONFLICT DO NOTHING", (step,))


def recorded(db: psycopg.Connection, table: str, workflow_id: str) -> int:
    return db.execute(f"SELECT count(*) FROM dbos.{table} WHERE workflow_uuid = %s", (workflow_id,)).fetchone()[0]


def status(db: psycopg.Connection, workflow_id: str) -> str | None:
    row = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()
    return row[0] if row else None


def test_bulk_cancel_stops_workflows_running_on_another_executor(fleet, db) -> None:
    worker, client = fleet
    for wfid in ("bc-a", "bc-b"):
        enqueue(client, wfid)
    wait_until(lambda: started_steps(db, "bc-a") == [1] and started_steps(db, "bc-b") == [1], "both first steps to start")

    client.cancel_workflows(["bc-a", "bc-b", "no-such-workflow"])
    open_gates(db, 0, 1, 2)

    for wfid in ("bc-a", "bc-b"):
        assert worker.wait_stopped(wfid) == "DBOSWorkflowCancelledError"
        assert started_steps(db, wfid) == [1], "no step after the cancel may start"
        assert status(db, wfid) == "CANCELLED"
        assert recorded(db, "operation_outputs", wfid) == 0, "the in-flight step's checkpoint is fenced"
        assert recorded(db, "workflow_events", wfid) == 0


def test_cancel_children_reaches_a_child_running_on_another_executor(fleet, db) -> None:
    worker, client = fleet
    enqueue(client, "cc-parent", "gated_parent")
    wait_until(lambda: started_steps(db, "cc-parent-kid") and started_steps(db, "cc-parent"), "parent and child to run")

    client.cancel_workflow("cc-parent", cancel_children=True)
    open_gates(db, 0, 1, 2)

    for wfid in ("cc-parent", "cc-parent-kid"):
        assert worker.wait_stopped(wfid) == "DBOSWorkflowCancelledError"
        assert len(started_steps(db, wfid)) == 1, "no step after the cancel may start"
        assert status(db, wfid) == "CANCELLED"


def test_deleted_workflow_is_not_written_back_by_its_running_owner(fleet, db) -> None:
    worker, client = fleet
    enqueue(client, "del-parent", "gated_parent")
    enqueue(client, "del-other")
    wait_until(lambda: started_steps(db, "del-parent-kid") and started_steps(db, "del-parent") and started_steps(db, "del-other"),
               "the three workflows to run")

    client.delete_workflows(["del-parent", "del-other"], delete_children=True)
    open_gates(db, 0, 1, 2)

    for wfid in ("del-parent", "del-parent-kid", "del-other"):
        assert worker.wait_stopped(wfid) == "DBOSWorkflowFencedError"
        assert len(started_steps(db, wfid)) == 1, "no step after the delete may start"
        assert status(db, wfid) is None, "the owner must not bring the row back"
        for table in ("operation_outputs", "workflow_events", "workflow_events_history", "streams"):
            assert recorded(db, table, wfid) == 0, f"{wfid} left rows in {table}"
    assert client.list_workflows(workflow_id_prefix="del-") == []


def test_bulk_resume_brings_cancelled_workflows_back_on_the_fleet(fleet, db) -> None:
    worker, client = fleet
    for wfid in ("rs-a", "rs-b"):
        enqueue(client, wfid, "gated", 2)
    wait_until(lambda: started_steps(db, "rs-a") and started_steps(db, "rs-b"), "both to start")
    client.cancel_workflows(["rs-a", "rs-b"])
    with pytest.raises(Exception, match="Non-existent target workflow ID: nope"):
        client.resume_workflows(["rs-a", "nope"])
    assert status(db, "rs-a") == "CANCELLED", "a failed bulk resume resumes none"
    handles = client.resume_workflows(["rs-a", "rs-b"], queue_name="admin-q")
    open_gates(db, 0, 1)
    assert [h.get_result(timeout_seconds=30) for h in handles] == [2, 2]
    executors = db.execute("SELECT DISTINCT executor_id FROM dbos.workflow_status WHERE workflow_uuid IN ('rs-a', 'rs-b')")
    assert [r[0] for r in executors.fetchall()] == [WORKER]


def test_resuming_a_running_workflow_leaves_it_to_its_owner(fleet, db) -> None:
    # DBOS would re-enqueue it; pgfleet leaves a running workflow to its owner (or to the
    # takeover of a dead one), so its execution is never fenced by a resume.
    worker, client = fleet
    enqueue(client, "rr-1", "gated", 2)
    wait_until(lambda: started_steps(db, "rr-1") == [1], "its first step to start")
    handle = client.resume_workflow("rr-1", queue_name="admin-q")
    assert status(db, "rr-1") == "PENDING"
    open_gates(db, 0, 1)
    assert handle.get_result(timeout_seconds=30) == 2
    assert started_steps(db, "rr-1") == [1, 3], "each step ran once (step 2 is the set_event)"
    assert worker.stopped("rr-1") is None


def test_new_delay_of_a_delayed_workflow_is_what_the_fleet_honours(fleet, db) -> None:
    _, client = fleet
    enqueue(client, "dl-sooner", "quick", 21, delay_seconds=600)
    enqueue(client, "dl-later", "quick", 1, delay_seconds=600)
    enqueue(client, "dl-queued", "gated", 1)
    assert status(db, "dl-sooner") == status(db, "dl-later") == "DELAYED"

    client.set_workflow_delay("dl-later", delay_seconds=3600)
    client.set_workflow_delay("dl-queued", delay_until_epoch_ms=1)  # not DELAYED: left alone
    client.set_workflow_delay("dl-sooner", delay_seconds=0)

    assert client.retrieve_workflow("dl-sooner").get_result(timeout_seconds=30) == 42
    row = db.execute(
        "SELECT executor_id, status FROM dbos.workflow_status WHERE workflow_uuid = 'dl-sooner'"
    ).fetchone()
    assert row == (WORKER, "SUCCESS")
    # Promotion releases every due row in one statement: the one pushed later was not due.
    later = db.execute(
        "SELECT status, delay_until_epoch_ms - (extract(epoch FROM now()) * 1000)::bigint FROM dbos.workflow_status"
        " WHERE workflow_uuid = 'dl-later'"
    ).fetchone()
    assert later[0] == "DELAYED" and later[1] > 3_000_000
    assert db.execute("SELECT delay_until_epoch_ms FROM dbos.workflow_status WHERE workflow_uuid = 'dl-queued'").fetchone()[0] is None


def test_reset_is_refused_under_a_live_fleet_and_empties_the_database_after(fleet, db, sys_url) -> None:
    worker, client = fleet
    enqueue(client, "rst-1", "quick", 2)
    assert client.retrieve_workflow("rst-1").get_result(timeout_seconds=30) == 4
    DBOS.destroy(destroy_registry=True)
    with pytest.raises(DBOSException, match="live executor"):
        DBOS.reset_system_database(system_database_url=sys_url, truncate=True)
    assert status(db, "rst-1") == "SUCCESS"

    worker.quit()
    client.destroy()
    DBOS.reset_system_database(system_database_url=sys_url, truncate=True)
    with psycopg.connect(sys_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM dbos.pgfleet_executors").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM dbos.dbos_migrations").fetchone()[0] > 0
    # Still migrated: a new launch on it just works.
    DBOS(config={"name": "after-reset", "system_database_url": sys_url, "executor_id": "after-reset"})
    try:
        DBOS.launch()
        assert DBOS.list_workflows() == []
    finally:
        DBOS.destroy(destroy_registry=True)


def test_reset_before_launch_drops_the_database_and_launch_recreates_it(sys_url) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "drop-reset", "system_database_url": sys_url, "executor_id": "drop-reset"})
    try:
        DBOS.launch()
        with pytest.raises(AssertionError, match="cannot be reset after DBOS is launched"):
            DBOS.reset_system_database()
        DBOS.destroy()
        DBOS(config={"name": "drop-reset", "system_database_url": sys_url, "executor_id": "drop-reset"})
        DBOS.reset_system_database()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(sys_url, connect_timeout=5).close()
        DBOS.launch()
        assert DBOS.list_workflows() == []
    finally:
        DBOS.destroy(destroy_registry=True)
