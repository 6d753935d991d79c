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
import sqlalchemy as sa

from conftest import wait_until
from faults.locks import LockHolder, backend_pids, holders_of_advisory_lock, wait_for_lock_wait
from runtime import DBOS, Queue
from runtime.errors import DBOSWorkflowFencedError
from sysdb.errors import DatabaseUnavailableError

EXECUTOR = "lock-bounds"
APP_BACKENDS = f"pgfleet % {EXECUTOR}"  # its pool's sessions: pgfleet <pid> <executor_id>


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


def test_a_held_queue_claim_lock_stops_neither_the_other_queues_nor_that_queue_for_long(launch, sys_url, db):
    """A session holding one queue's claim lock (a worker paused inside its claim) used to
    block the claimer, which walks every queue in turn, so every queue stopped with it."""
    launch()
    stuck, free = Queue("stuck_q", polling_interval_sec=0.1), Queue("free_q", polling_interval_sec=0.1)

    @DBOS.workflow(name="claimed_job")
    def job(tag: str) -> str:
        return tag

    with LockHolder(sys_url) as holder:
        holder.hold_advisory_xact_hashed("pgfleet.queue", "stuck_q/")
        waiting = stuck.enqueue(job, "stuck")
        # The claimer reaches the held lock (and, before the fix, stays there).
        wait_for_lock_wait(sys_url, application_name_like=APP_BACKENDS, timeout=15)
        other = free.enqueue(job, "free")
        assert other.get_result(timeout_seconds=20) == "free"
        assert status_of(db, waiting.workflow_id) == "ENQUEUED"  # its lock is still held
        holder.release()
    assert waiting.get_result(timeout_seconds=20) == "stuck"


def test_a_pgfleet_session_idle_inside_a_claim_is_ended_and_its_queue_goes_on(launch, sys_url, db):
    """The holder here is a pgfleet pooled session (what a paused worker leaves behind): the
    server ends it for idling in its transaction, and the queue is claimed again."""
    from sysdb import SystemDatabase

    launch()
    queue = Queue("paused_q", polling_interval_sec=0.1)

    @DBOS.workflow(name="paused_q_job")
    def job() -> str:
        return "ran"

    paused_worker = SystemDatabase(sys_url, pool_size=1, application_name="pgfleet:paused-worker")
    paused_worker.open(run_migrations=False)
    checked = False
    try:
        # The claim's own shape (sysdb Claims.claim): a pooled connection, a transaction.
        with paused_worker._pool.connection() as conn, conn.transaction():
            paused_worker.claims.lock_queue(conn, "paused_q", None, wait_ms=0)
            # The "worker" now sits idle inside its claim transaction, as if SIGSTOPped.
            assert holders_of_advisory_lock(sys_url, "pgfleet.queue", "paused_q/")[0]["state"] == "idle in transaction"
            handle = queue.enqueue(job)
            assert handle.get_result(timeout_seconds=30) == "ran"
            assert not holders_of_advisory_lock(sys_url, "pgfleet.queue", "paused_q/"), "the idle holder still holds the lock"
            with pytest.raises(psycopg.Error):
                conn.execute("SELECT 1")  # its session was ended by the server
            checked = True
    except psycopg.Error:
        pass  # leaving the ended transaction fails too: that is the point
    finally:
        paused_worker.close()
    assert checked


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


def test_pooled_and_listen_connections_have_dead_link_and_server_side_bounds(launch, sys_url):
    """Pooled and LISTEN connections get the keepalives / TCP user timeout dedicated sessions
    have, and a statement timeout; a @DBOS.transaction body is not held to that timeout."""
    launch(database_statement_timeout_sec=0.5, database_idle_in_transaction_timeout_sec=2, member_timeout_sec=4)
    executor = DBOS._executor_or_raise("the test")  # the launched executor, to inspect its connections
    with executor.db._pool.connection() as conn:
        params = conn.info.get_parameters()
        assert params.get("tcp_user_timeout") == "4000" and params.get("keepalives") == "1"
        assert conn.execute("SHOW statement_timeout").fetchone()["statement_timeout"] == "500ms"
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()["idle_in_transaction_session_timeout"] == "2s"
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(1)")
    wait_until(lambda: DBOS._process().services.listener._listener is not None, "the LISTEN connection", 10)
    listener = DBOS._process().services.listener._listener
    assert listener._conn.info.get_parameters().get("tcp_user_timeout") == "4000"

    @DBOS.transaction()
    def slow_user_sql() -> int:
        DBOS.sql_session.execute(sa.text("SELECT pg_sleep(1)"))
        return 1

    @DBOS.workflow(name="slow_sql_workflow")
    def workflow() -> int:
        return slow_user_sql()

    assert workflow() == 1


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
    released: set[str] = set()
    while left:
        # Both pooled connections are inside transaction bodies: fence those workflows (as a
        # takeover by another executor would) and let their checkpoints find out at the same
        # time. (Moved to another owner: a workflow still owned by this executor but not running
        # here would rightly be adopted and run again, which is not what this test is about.)
        # A body may run again (a serialization failure of its checkpoint against the UPDATE
        # below is retried, as DBOS retries it): count each workflow once.
        batch: list[str] = []
        while len(batch) < min(2, left):
            try:
                arrived = arrivals.get(timeout=30)
            except queue.Empty:
                raise AssertionError(f"fenced transactions deadlocked the pool ({left} never started)") from None
            if arrived not in released:
                released.add(arrived)
                batch.append(arrived)
        db.execute(
            "UPDATE dbos.workflow_status SET executor_id = 'another-executor', owner_epoch = owner_epoch + 1000000"
            " WHERE workflow_uuid = ANY(%s)",
            (batch,),
        )
        for workflow_id in batch:
            release_of(workflow_id).set()
        left -= len(batch)
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "fenced transactions deadlocked the pool"
    assert all(isinstance(outcomes[i], DBOSWorkflowFencedError) for i in range(6)), outcomes


def test_a_checkpoint_that_waits_out_a_busy_pool_leaves_the_workflow_pending_not_error(launch, db):
    """A pool busy past the retry budget (on a healthy database) made the checkpoint fail, and
    the workflow recorded that as its ERROR once the pool freed up. It stops unrecorded now,
    and this executor takes it up again when the database answers."""
    launch(sys_db_pool_size=1, database_retry_timeout_sec=1)
    go, failed, resume = threading.Event(), threading.Event(), threading.Event()

    @DBOS.step()
    def a_step() -> int:
        return 1

    @DBOS.workflow(name="busy_pool_workflow")
    def workflow() -> int:
        go.wait(20)
        try:
            return a_step()
        except BaseException:
            failed.set()
            resume.wait(20)  # let the pool free up before the error reaches the executor
            raise

    outcome: list[BaseException] = []

    def call() -> None:
        try:
            workflow()
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=call, daemon=True)
    runner.start()
    wait_until(lambda: db.execute("SELECT count(*) FROM dbos.workflow_status WHERE name = 'busy_pool_workflow'").fetchone()[0], "the start", 10)
    with DBOS._executor_or_raise("the test").db._pool.connection():  # the pool's only connection is busy
        go.set()
        assert failed.wait(30), "the checkpoint never gave up on the busy pool"
    resume.set()
    runner.join(30)
    assert outcome and isinstance(outcome[0], DatabaseUnavailableError), outcome
    row = db.execute("SELECT workflow_uuid, status FROM dbos.workflow_status WHERE name = 'busy_pool_workflow'").fetchone()
    assert row[1] in ("PENDING", "SUCCESS"), row  # never ERROR
    # The executor takes it up again once the pool answers, and it finishes.
    assert DBOS.retrieve_workflow(row[0]).get_result(timeout_seconds=30) == 1


def _transactions_workflows(n: int, rounds: int) -> Any:
    @DBOS.transaction()
    def bump(workflow_id: str) -> int:
        return DBOS.sql_session.execute(
            sa.text("INSERT INTO public.bumps (workflow_id) VALUES (:workflow_id) RETURNING 1"), {"workflow_id": workflow_id}
        ).scalar_one()

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


def test_pooled_connections_killed_mid_run_fail_no_transaction(launch, sys_url, db):
    """Every pgfleet backend terminated (pg_terminate_backend) while workflows run transactions:
    a dead pooled connection is retried on a fresh one, never recorded as the outcome."""
    db.execute("CREATE TABLE public.bumps (workflow_id text)")
    launch()
    handles = _transactions_workflows(n=8, rounds=20)
    wait_until(lambda: db.execute("SELECT count(*) FROM public.bumps").fetchone()[0] >= 20, "some transactions", 30)
    for _ in range(3):
        for pid in backend_pids(sys_url, APP_BACKENDS):
            db.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)
    _assert_all_succeeded(sys_url, handles, rounds=20)


def test_a_postgres_restart_during_transactions_records_no_error(launch):
    """pg_ctl restart while ten workflows run transactions: every one ends SUCCESS (it used to
    record AdminShutdown as the outcome of a transaction that took a dead pooled connection)."""
    from psycopg.conninfo import make_conninfo

    from sysdb.embedded import EmbeddedPostgres

    base = tempfile.mkdtemp(prefix="pgfleet-lockbounds-restart-")  # not under pytest's tmp_path (0700)
    server = EmbeddedPostgres(base, durability=True)
    server.ensure_running()
    url = make_conninfo(server.url("postgres"), dbname="restart_txns")
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE restart_txns")
        launch(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE public.bumps (workflow_id text)")
        handles = _transactions_workflows(n=10, rounds=30)
        with psycopg.connect(url, autocommit=True) as conn:
            wait_until(lambda: conn.execute("SELECT count(*) FROM public.bumps").fetchone()[0] >= 30, "some transactions", 30)
        server.stop(mode="fast")
        server.ensure_running()
        _assert_all_succeeded(url, handles, rounds=30)
    finally:
        DBOS.destroy(destroy_registry=True)
        server.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


def test_the_bounds_are_config_keys_and_a_user_transaction_can_have_a_statement_limit(launch):
    from runtime.config import resolve_config
    from runtime.errors import DBOSConfigError

    with pytest.raises(DBOSConfigError, match="database_idle_in_transaction_timeout_sec"):
        resolve_config({"name": "x", "database_idle_in_transaction_timeout_sec": -1})
    launch(transaction_statement_timeout_sec=0.2)

    @DBOS.transaction()
    def too_slow() -> None:
        DBOS.sql_session.execute(sa.text("SELECT pg_sleep(2)"))

    @DBOS.workflow(name="limited_user_sql")
    def workflow() -> None:
        too_slow()

    # The user's own limit is the transaction's outcome (recorded), unlike a dead connection.
    with pytest.raises(sa.exc.OperationalError) as raised:  # as SQLAlchemy raises the driver's error
        workflow()
    assert isinstance(raised.value.orig, psycopg.errors.QueryCanceled)
