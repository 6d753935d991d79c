"""No session holds the fleet hostage, and a busy pool or a restarted database is no workflow
failure (issue #8, items 3 and 6).

Each scenario puts a real lock, a real pool or a real server restart exactly in the way of a
statement (``tests/faults/locks.py`` holds the locks and sees when a statement blocks on one)
and checks what the workflows recorded.
"""

from __future__ import annotations

import queue
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


def test_a_burst_of_fenced_transactions_does_not_deadlock_a_tiny_pool(launch, db):
    """A fenced transactional write held its pooled connection while it asked the pool for a
    second one (to read who owns the workflow now): two at once exhausted a pool of two."""
    launch(sys_db_pool_size=2)
    arrivals: queue.Queue[str] = queue.Queue()
    releases: dict[str, threading.Event] = {}
    lock = threading.Lock()

    def release_of(workflow_id: str) -> threading.Event:
        with lock:
            return releases.setdefault(workflow_id, threading.Event())

    @DBOS.transaction()
    def fenced_write(i: int) -> int:
        arrivals.put(DBOS.workflow_id)
        release_of(DBOS.workflow_id).wait(60)
        return i

    @DBOS.workflow(name="fenced_burst")
    def workflow(i: int) -> int:
        return fenced_write(i)

    outcomes: dict[int, BaseException | int] = {}

    def call(i: int) -> None:
        try:
            outcomes[i] = workflow(i)
        except BaseException as exc:  # recorded for the assertions below
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(6)]
    for t in threads:
        t.start()
    left = len(threads)
    while left:
        # Both pooled connections are inside transaction bodies: fence those workflows (as a
        # takeover would) and let their checkpoints find out at the same time.
        try:
            batch = [arrivals.get(timeout=30) for _ in range(min(2, left))]
        except queue.Empty:
            raise AssertionError(f"fenced transactions deadlocked the pool ({left} never started)") from None
        db.execute("UPDATE dbos.workflow_status SET owner_epoch = owner_epoch + 1000000 WHERE workflow_uuid = ANY(%s)", (batch,))
        for workflow_id in batch:
            release_of(workflow_id).set()
        left -= len(batch)
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "fenced transactions deadlocked the pool"
    assert all(isinstance(outcomes[i], DBOSWorkflowFencedError) for i in range(6)), outcomes


