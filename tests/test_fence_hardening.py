"""Issue #8: a member that may have been declared dead starts nothing, and every action of a
lost execution is fenced (and stays fenced).

- The membership lease: counted from when the last acknowledged heartbeat was *sent*, checked
  locally before every step body and write (deterministic, with an injected clock).
- A worker process stopped between two steps (SIGSTOP at a known point), taken over, then
  continued, starts no step body (a ledger written by every body proves it).
- A fenced error is a BaseException and sticks: ``except Exception`` (or even ``except
  BaseException``) around a step does not let the workflow run its next body.
- The deadline cancel, ``fork_workflow`` inside a workflow, and a transaction on a separate
  application database are all fenced on the execution's token.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from psycopg.conninfo import make_conninfo

from cluster.coordination.membership import Heartbeat, MemberInfo, Membership
from conftest import run_app, wait_until
from faults.locks import wait_for_lock_wait
from faults.pause import PAUSE_ENV, wait_stopped
from runtime import (
    DBOS,
    DBOSAwaitedWorkflowCancelledError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowFencedError,
    SetWorkflowID,
    SetWorkflowTimeout,
)
from sysdb import SystemDatabase
from sysdb.clock import FakeClock
from test_fencing import take_over

HEARTBEAT = 0.25
MEMBER_TIMEOUT = 1.5


# -- the lease, with an injected clock ----------------------------------------------------------


@pytest.fixture
def member(sys_url):
    """A registered member and its heartbeat on a fake clock (no background threads: the test
    calls ``beat_once`` itself). Yields (heartbeat, clock, reasons it was lost)."""
    sdb = SystemDatabase(sys_url, pool_size=2)
    clock, lost = FakeClock(), []
    sdb.coordination_clock = clock  # the heartbeat's lease clock, and its statement's "now"
    sdb.open()
    membership = Membership(sdb, MemberInfo("lease-member", "t", "v", None), lambda: [], MEMBER_TIMEOUT)
    membership.register()
    heartbeat = Heartbeat(sdb, membership, HEARTBEAT, lost.append, lambda epoch: None)
    yield heartbeat, clock, lost
    heartbeat._session.close()
    sdb.close()


def test_the_lease_ends_member_timeout_less_a_margin_after_the_last_acknowledged_beat(member):
    heartbeat, clock, lost = member
    assert heartbeat.beat_once()
    clock.advance(heartbeat.fence_after_sec - 0.01)
    assert heartbeat.lease_valid() and not lost
    clock.advance(0.02)
    assert not heartbeat.lease_valid()
    # An expired lease loses membership at once (the work is abandoned, recovered on rejoin).
    assert len(lost) == 1 and heartbeat.lost


def test_a_slow_heartbeat_reply_extends_the_lease_only_from_when_it_was_sent(member, db):
    heartbeat, clock, lost = member
    assert heartbeat.beat_once()
    lock = psycopg.connect(db.info.dsn)
    try:
        # Hold the member's row, so the next heartbeat is sent but its reply is held up.
        lock.execute("SELECT 1 FROM dbos.pgfleet_executors WHERE executor_id = 'lease-member' FOR UPDATE")
        result: list[bool] = []
        beat = threading.Thread(target=lambda: result.append(heartbeat.beat_once()))
        beat.start()
        wait_for_lock_wait(db.info.dsn)
        clock.advance(heartbeat.fence_after_sec + 0.5)  # the reply comes back this much later
        lock.commit()
        beat.join(10)
    finally:
        lock.close()
    assert result == [True]  # the database did accept it...
    # ...but it was sent long ago: the lease counts from the send, so it has already ended.
    assert heartbeat.seconds_since_success() >= heartbeat.fence_after_sec + 0.5
    assert not heartbeat.lease_valid()


# -- a worker process paused between two steps ---------------------------------------------------


class Worker:
    """A tests/apps/fence_worker.py process whose stdout lines are collected by a thread."""

    def __init__(self, url: str, executor_id: str, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {"PGFLEET_HEARTBEAT": str(HEARTBEAT), "PGFLEET_MEMBER_TIMEOUT": str(MEMBER_TIMEOUT), **(env or {})}
        self.proc = run_app("fence_worker.py", url, executor_id, *args, env=full_env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.next_line(30) == "ready", self.proc.stderr.read() if self.proc.poll() is not None else ""

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def next_line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def workers():
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def test_a_member_paused_between_steps_starts_no_step_body_once_taken_over(sys_url, ledger, workers):
    db = ledger
    # node-b leads, so the paused node-a holds no leader lock or duty transaction that the
    # takeover would have to wait out (only its workflow thread is at a chosen point).
    workers.append(Worker(sys_url, "node-b"))
    wait_until(
        lambda: db.execute("SELECT 1 FROM dbos.pgfleet_leader WHERE executor_id = 'node-b' AND expires_at > now()").fetchone(),
        "node-b to lead",
    )
    victim = Worker(sys_url, "node-a", "start", "paused-wf", env={PAUSE_ENV: "between-steps"})
    workers.append(victim)
    wait_stopped(victim.proc.pid)  # stopped right after step 1's checkpoint, before step 2
    wait_until(
        lambda: db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid='paused-wf'").fetchone()[0] == "SUCCESS",
        "node-b to take the workflow over and finish it", 30,
    )
    os.kill(victim.proc.pid, signal.SIGCONT)
    # The old execution resumes exactly between the two steps, and must stop there.
    assert victim.next_line(30) == "stopped DBOSWorkflowFencedError"
    ran = db.execute("SELECT executor_id, function_id FROM public.side_effects ORDER BY id").fetchall()
    assert ran == [("node-a", 1), ("node-b", 2), ("node-b", 3)], ran
    owners = db.execute("SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid='paused-wf'").fetchone()
    assert owners == ("node-b",)


# -- a fenced error sticks ------------------------------------------------------------------------


def run_in_thread(fn: Callable[[], Any], workflow_id: str, timeout_sec: float | None = None) -> Callable[[], BaseException | None]:
    """Call ``fn`` (a workflow) in a thread under ``workflow_id``; returns a function that joins
    it and gives what it raised (start options are per thread, so they are set in it)."""
    box: list[BaseException | None] = [None]

    def target() -> None:
        try:
            with SetWorkflowID(workflow_id):
                if timeout_sec is None:
                    fn()
                else:
                    with SetWorkflowTimeout(timeout_sec):
                        fn()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            box[0] = exc

    thread = threading.Thread(target=target)
    thread.start()

    def outcome() -> BaseException | None:
        thread.join(20)
        assert not thread.is_alive()
        return box[0]

    return outcome


@pytest.mark.parametrize("caught", [Exception, BaseException])
def test_a_fence_swallowed_by_user_code_still_stops_the_workflow(dbos, db, caught):
    reached, release, ran = threading.Event(), threading.Event(), []

    @DBOS.step()
    def first():
        reached.set()
        release.wait(10)
        ran.append("first")

    @DBOS.step()
    def second():
        ran.append("second")

    @DBOS.workflow()
    def swallowing():
        try:
            first()
        except caught:
            ran.append("swallowed")
        second()

    outcome = run_in_thread(swallowing, "swallow")
    assert reached.wait(10)
    take_over(db, "swallow")
    release.set()
    error = outcome()
    assert isinstance(error, DBOSWorkflowFencedError) and not isinstance(error, Exception)
    # ``except Exception`` does not catch it; a workflow that catches even BaseException finds
    # every later operation refused before its body runs.
    assert ran == (["first"] if caught is Exception else ["first", "swallowed"])
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='swallow'").fetchone()[0] == 0


def test_cancelled_and_fenced_errors_are_base_exceptions_that_pickle():
    import pickle

    from runtime import DBOSBaseException

    for error in (DBOSWorkflowCancelledError("gone"), DBOSWorkflowFencedError("wf", "taken over")):
        assert isinstance(error, DBOSBaseException) and not isinstance(error, Exception)
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)


# -- every action of a lost execution is fenced ----------------------------------------------------


def test_an_old_execution_past_its_deadline_does_not_cancel_the_run_that_replaced_it(dbos, db):
    @DBOS.workflow()
    def sleeper():
        DBOS.sleep(30)  # wakes at the deadline and checks it
        return "done"

    outcome = run_in_thread(sleeper, "deadline-wf", timeout_sec=4.0)  # time to take it over first
    wait_until(
        lambda: db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='deadline-wf'").fetchone()[0],
        "the sleep to be recorded",
    )
    # What a resume elsewhere does: a new owner and epoch, and no deadline any more.
    db.execute(
        "UPDATE dbos.workflow_status SET executor_id = 'resumer', owner_epoch = nextval('dbos.pgfleet_epoch_seq'), "
        "workflow_deadline_epoch_ms = NULL WHERE workflow_uuid = 'deadline-wf'"
    )
    error = outcome()
    assert isinstance(error, DBOSWorkflowFencedError), error
    row = db.execute("SELECT status, executor_id FROM dbos.workflow_status WHERE workflow_uuid='deadline-wf'").fetchone()
    assert row == ("PENDING", "resumer")


def test_a_fork_inside_a_workflow_taken_over_meanwhile_commits_only_with_its_checkpoint(dbos, db):
    @DBOS.workflow()
    def target():
        return 1

    @DBOS.workflow()
    def forker():
        return DBOS.fork_workflow("fork-target", 1).workflow_id

    with SetWorkflowID("fork-target"):
        target()
    lock = psycopg.connect(db.info.dsn)
    try:
        # Hold the original's row, so the fork statement waits right in its window...
        lock.execute("SELECT 1 FROM dbos.workflow_status WHERE workflow_uuid = 'fork-target' FOR UPDATE")
        outcome = run_in_thread(forker, "forker")
        wait_for_lock_wait(db.info.dsn)
        # ...and take the workflow over meanwhile. The takeover either commits at once (then
        # the fork must not) or waits for the fork's transaction (then the fork is recorded).
        taker = threading.Thread(target=lambda: take_over(psycopg.connect(db.info.dsn, autocommit=True), "forker"))
        taker.start()
        wait_until(
            lambda: not taker.is_alive() or db.execute(
                "SELECT count(*) >= 2 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()[0],
            "the takeover to commit or to wait for the fork",
        )
        lock.commit()
        taker.join(10)
        error = outcome()
    finally:
        lock.close()
    assert isinstance(error, DBOSWorkflowFencedError), error
    # A fork commits only with its checkpoint, so the next owner, replaying, never forks again.
    forks = db.execute("SELECT count(*) FROM dbos.workflow_status WHERE forked_from = 'fork-target'").fetchone()[0]
    recorded = db.execute(
        "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'forker' AND function_name = 'DBOS.forkWorkflow'"
    ).fetchone()[0]
    assert forks == recorded


def test_cancel_resume_and_fork_inside_a_workflow_each_commit_once_with_their_checkpoint(dbos, db):
    release = threading.Event()

    @DBOS.step()
    def hold():
        release.wait(10)
        return "held"

    @DBOS.workflow()
    def target():
        return hold()

    @DBOS.workflow()
    def finished():
        return 7

    @DBOS.workflow()
    def admin():
        DBOS.cancel_workflow("adm-target")
        DBOS.resume_workflow("adm-target")
        return DBOS.fork_workflow("adm-done", 1).workflow_id

    with SetWorkflowID("adm-done"):
        finished()
    with SetWorkflowID("adm-target"):
        DBOS.start_workflow(target)
    with SetWorkflowID("adm"):
        forked = admin()
    release.set()
    assert DBOS.retrieve_workflow(forked).get_result(timeout_seconds=20) == 7
    assert DBOS.retrieve_workflow("adm-target").get_result(timeout_seconds=20) == "held"
    names = [r[0] for r in db.execute("SELECT function_name FROM dbos.operation_outputs WHERE workflow_uuid='adm' ORDER BY function_id")]
    # As DBOS records them: the fork's handle comes with a recorded existence check.
    assert names == ["DBOS.cancelWorkflow", "DBOS.resumeWorkflow", "DBOS.forkWorkflow", "DBOS.getStatus"]
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE forked_from = 'adm-done'").fetchone()[0] == 1


def test_a_workflow_that_cancels_itself_is_cancelled_and_runs_no_further_step(dbos, db):
    ran = []

    @DBOS.step()
    def after_cancel():
        ran.append("after")

    @DBOS.workflow()
    def self_cancelling():
        DBOS.cancel_workflow(DBOS.workflow_id)
        after_cancel()

    outcome = run_in_thread(self_cancelling, "self-cancel")
    # Its direct caller gets the awaited workflow's cancellation, as in DBOS (async_mixing.py).
    assert isinstance(outcome(), DBOSAwaitedWorkflowCancelledError)
    assert ran == []
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid='self-cancel'").fetchone()[0] == "CANCELLED"
    names = [r[0] for r in db.execute("SELECT function_name FROM dbos.operation_outputs WHERE workflow_uuid='self-cancel'")]
    assert names == ["DBOS.cancelWorkflow"]


def test_two_workflows_forking_each_other_at_once_both_finish(dbos, db):
    """The effect and the checkpoint share one transaction, so two workflows acting on each
    other's rows at once can deadlock in Postgres: the victim retries instead of failing."""
    go = threading.Event()

    @DBOS.step()
    def wait_go():
        go.wait(10)

    @DBOS.workflow()
    def mutual(other):
        wait_go()
        if DBOS.workflow_id in ("xa", "xb"):  # the forked copies fork nothing
            DBOS.fork_workflow(other, 2)
        return "ok"

    with SetWorkflowID("xa"):
        first = DBOS.start_workflow(mutual, "xb")
    with SetWorkflowID("xb"):
        second = DBOS.start_workflow(mutual, "xa")
    lock = psycopg.connect(db.info.dsn)
    try:
        # FOR SHARE lets both checkpoints through but holds both forks' UPDATE of the other's
        # row; released together, each then waits for the other's row: a deadlock.
        lock.execute("SELECT 1 FROM dbos.workflow_status WHERE workflow_uuid IN ('xa', 'xb') FOR SHARE")
        go.set()
        wait_until(
            lambda: db.execute(
                "SELECT count(*) >= 2 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()[0],
            "both forks to wait",
        )
        lock.commit()
    finally:
        lock.close()
    assert first.get_result(timeout_seconds=30) == "ok"
    assert second.get_result(timeout_seconds=30) == "ok"
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE forked_from IN ('xa', 'xb')").fetchone()[0] == 2


@pytest.fixture
def app_db(sys_url, pg_server_url):
    """DBOS launched with a separate application database holding a table of items."""
    name = f"pgfleet_app_fence_{os.getpid()}_{int(time.time() * 1000)}"
    app_url = make_conninfo(pg_server_url, dbname=name)
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "t", "system_database_url": sys_url, "application_database_url": app_url, "executor_id": "tx"})
    DBOS.launch()
    with psycopg.connect(app_url, autocommit=True) as app:
        app.execute("CREATE TABLE public.items (name text)")
        yield app
    DBOS.destroy(destroy_registry=True)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize("loss", ["takeover", "cancel"])
def test_an_application_database_transaction_commits_nothing_after_a_takeover_or_cancel(app_db, db, loss):
    reached, release = threading.Event(), threading.Event()

    @DBOS.transaction()
    def add_item():
        DBOS.sql_session.execute(sa.text("INSERT INTO public.items VALUES ('apple')"))
        reached.set()
        release.wait(10)  # the workflow is lost while the body is still uncommitted
        return 1

    @DBOS.workflow()
    def adding():
        return add_item()

    outcome = run_in_thread(adding, "app-fence")
    assert reached.wait(10)
    if loss == "takeover":
        take_over(db, "app-fence")
    else:
        DBOS.cancel_workflow("app-fence")
    release.set()
    error = outcome()
    expected = DBOSWorkflowFencedError if loss == "takeover" else DBOSAwaitedWorkflowCancelledError  # the caller's, as in DBOS
    assert isinstance(error, expected), error
    assert app_db.execute("SELECT count(*) FROM public.items").fetchone()[0] == 0
    assert app_db.execute("SELECT count(*) FROM dbos.transaction_outputs").fetchone()[0] == 0
