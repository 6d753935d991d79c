"""No session holds the fleet hostage, and a busy pool or a restarted database is no workflow
failure (issue #8, items 3 and 6).

Each scenario puts a real lock, a real pool or a real server restart exactly in the way of a
statement (``tests/faults/locks.py`` holds the locks and sees when a statement blocks on one)
and checks what the workflows recorded.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from conftest import wait_until
from faults.locks import LockHolder, backend_pids, holders_of_advisory_lock, wait_for_lock_wait

from runtime import DBOS, Queue
from runtime.errors import DBOSWorkflowFencedError
from sysdb.errors import DatabaseUnavailableError

EXECUTOR = "lock-bounds"
APP_BACKENDS = f"pgfleet:{EXECUTOR}%"


@pytest.fixture
def launch(sys_url: str) -> Iterator[Any]:
    """``launch(**config)`` launches DBOS on the test's database with extra config keys."""

    def start(url: str = sys_url, **config: Any) -> type:
        DBOS.destroy(destroy_registry=True)
        DBOS(config={"name": "lock-bounds", "system_database_url": url, "executor_id": EXECUTOR, **config})
        DBOS.launch()
        return DBOS

    yield start
    DBOS.destroy(destroy_registry=True)


def status_of(db: psycopg.Connection, workflow_id: str) -> str | None:
    row = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()
    return row[0] if row else None


# -- item 3: the queue claim lock --------------------------------------------------------------


# -- item 3: a message row locked by a lost owner -----------------------------------------------


def test_recv_waits_for_a_message_row_another_session_holds_and_then_delivers_it(launch, sys_url, db):
    """A lost owner inside its own recv holds the message row until its fenced checkpoint
    rolls back. SKIP LOCKED made the new owner's recv return None and record that, so the
    message was never delivered."""
    launch()
    started = threading.Event()

    @DBOS.workflow(name="receiver")
    def receiver() -> Any:
        started.wait(10)
        return DBOS.recv("topic", timeout_seconds=30)

    handle = DBOS.start_workflow(receiver)
    DBOS.send(handle.workflow_id, "the message", "topic")
    with LockHolder(sys_url) as holder:
        assert holder.hold_rows("SELECT 1 FROM dbos.notifications WHERE destination_uuid = %s", (handle.workflow_id,)) == 1
        started.set()
        wait_for_lock_wait(sys_url, application_name_like=APP_BACKENDS, timeout=15)
        holder.rollback()  # the lost owner's checkpoint failed: its consumption rolls back
    assert handle.get_result(timeout_seconds=20) == "the message"


# -- item 3: every connection is bounded --------------------------------------------------------


# -- item 6: pool and restart -------------------------------------------------------------------


def _transactions_workflows(n: int, rounds: int) -> Any:
    @DBOS.transaction()
    def bump(workflow_id: str) -> int:
        return DBOS.sql_session.execute(
            "INSERT INTO public.bumps (workflow_id) VALUES (%s) RETURNING 1 AS one", (workflow_id,)
        ).fetchone()["one"]

    @DBOS.workflow(name="restart_txns")
    def workflow() -> int:
        for _ in range(rounds):
            bump(DBOS.workflow_id)
            # Not a step: after a kill, the next statement of every workflow is a transaction
            # (a checkpoint's own retries would otherwise use the dead connections up first).
            time.sleep(0.05)
        return rounds

    return [DBOS.start_workflow(workflow) for _ in range(n)]


def _assert_all_succeeded(url: str, handles: list[Any], rounds: int) -> None:
    ids = [h.workflow_id for h in handles]
    with psycopg.connect(url, autocommit=True) as conn:

        def done() -> bool:
            return conn.execute(
                "SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s) AND status <> 'PENDING'", (ids,)
            ).fetchone()[0] == len(ids)

        wait_until(done, "every workflow to finish", 90, interval=0.2)
        rows = conn.execute("SELECT status, error FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)", (ids,)).fetchall()
        assert [r for r in rows if r[0] != "SUCCESS"] == []
        # Each transaction committed exactly once per round, however often it was retried.
        counts = conn.execute("SELECT workflow_id, count(*) FROM public.bumps GROUP BY 1").fetchall()
        assert sorted(c for _, c in counts) == [rounds] * len(ids)


