"""Ownership fencing: a workflow whose row no longer names this owner and epoch writes nothing."""

from __future__ import annotations

import threading

import pytest

from runtime import DBOS, DBOSWorkflowCancelledError, DBOSWorkflowFencedError, SetWorkflowID


def take_over(db, workflow_id: str, new_owner: str = "someone-else") -> int:
    """What a takeover does: a compare-and-set to another owner with a fresh epoch."""
    return db.execute(
        "UPDATE dbos.workflow_status SET executor_id = %s, owner_epoch = nextval('dbos.pgfleet_epoch_seq') "
        "WHERE workflow_uuid = %s AND status = 'PENDING' RETURNING owner_epoch",
        (new_owner, workflow_id),
    ).fetchone()[0]


class DirectCall(threading.Thread):
    """Call a workflow directly in a thread and keep what it returned or raised: a direct
    caller sees the fenced error (a handle would wait for the new owner's result instead)."""

    def __init__(self, workflow_id: str, func) -> None:
        super().__init__()
        self.workflow_id, self.func = workflow_id, func
        self.result = self.error = None
        self.start()

    def run(self) -> None:
        try:
            with SetWorkflowID(self.workflow_id):
                self.result = self.func()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            self.error = exc

    def outcome(self):
        self.join(10)
        assert not self.is_alive()
        return self.error


def make_blocking_workflow(reached: threading.Event, release: threading.Event, ran: list):
    @DBOS.step()
    def first():
        reached.set()
        release.wait(10)
        ran.append("first")
        return 1

    @DBOS.step()
    def second():
        ran.append("second")
        return 2

    @DBOS.workflow()
    def fenced_wf():
        return first() + second()

    return fenced_wf


def test_step_checkpoint_after_takeover_writes_nothing_and_stops(dbos, db):
    reached, release, ran = threading.Event(), threading.Event(), []
    fenced_wf = make_blocking_workflow(reached, release, ran)
    call = DirectCall("fenced", fenced_wf)
    assert reached.wait(10)
    new_epoch = take_over(db, "fenced")
    release.set()

    assert isinstance(call.outcome(), DBOSWorkflowFencedError)
    assert "no longer owned" in str(call.error)
    # A handle does not take the fenced run's word for it: it waits for the new owner.
    with pytest.raises(TimeoutError):
        DBOS.retrieve_workflow("fenced").get_result(timeout_seconds=0.3)
    # The step ran (at least once is the contract) but its output was not recorded, and the
    # workflow stopped at once: the second step never ran, the status is untouched.
    assert ran == ["first"]
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='fenced'").fetchone()[0] == 0
    assert db.execute(
        "SELECT status, executor_id, owner_epoch FROM dbos.workflow_status WHERE workflow_uuid='fenced'"
    ).fetchone() == ("PENDING", "someone-else", new_epoch)


def test_final_status_after_takeover_is_not_written(dbos, db):
    reached, release = threading.Event(), threading.Event()

    @DBOS.workflow()
    def no_steps():
        reached.set()
        release.wait(10)
        return "mine"

    call = DirectCall("final-fenced", no_steps)
    assert reached.wait(10)
    take_over(db, "final-fenced")
    release.set()
    assert isinstance(call.outcome(), DBOSWorkflowFencedError)
    assert db.execute("SELECT status, output FROM dbos.workflow_status WHERE workflow_uuid='final-fenced'").fetchone() == (
        "PENDING",
        None,
    )


def test_cancelled_workflow_stops_at_next_step(dbos, db):
    reached, release, ran = threading.Event(), threading.Event(), []
    fenced_wf = make_blocking_workflow(reached, release, ran)
    with SetWorkflowID("cancelled"):
        handle = DBOS.start_workflow(fenced_wf)
    assert reached.wait(10)
    DBOS.cancel_workflow("cancelled")
    release.set()
    with pytest.raises(Exception) as info:
        handle.get_result(timeout_seconds=5)
    assert "cancelled" in str(info.value)
    assert ran == ["first"]
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid='cancelled'").fetchone()[0] == "CANCELLED"

    # Resuming replays it here from the first unfinished step.
    ran.clear()
    assert DBOS.resume_workflow("cancelled").get_result() == 3
    assert ran == ["first", "second"]


def test_fenced_write_waits_for_a_concurrent_takeover_then_fails(dbos, db, sys_url):
    """The checkpoint locks the status row FOR SHARE: while a takeover transaction holds the
    row, the step write waits, then re-checks the new owner and writes nothing."""
    import psycopg

    reached, release, ran = threading.Event(), threading.Event(), []
    fenced_wf = make_blocking_workflow(reached, release, ran)
    call = DirectCall("racing", fenced_wf)
    assert reached.wait(10)
    with psycopg.connect(sys_url) as takeover:  # an open transaction holding the row
        takeover.execute(
            "UPDATE dbos.workflow_status SET executor_id = 'rescuer', owner_epoch = nextval('dbos.pgfleet_epoch_seq') "
            "WHERE workflow_uuid = 'racing'"
        )
        release.set()
        # The step body finishes and its checkpoint blocks on our row lock.
        deadline = threading.Event()
        deadline.wait(0.5)
        assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='racing'").fetchone()[0] == 0
        takeover.commit()
    assert isinstance(call.outcome(), DBOSWorkflowFencedError)
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='racing'").fetchone()[0] == 0
    assert ran == ["first"]


def test_cancel_error_type(dbos, db):
    reached, release, ran = threading.Event(), threading.Event(), []
    fenced_wf = make_blocking_workflow(reached, release, ran)
    with SetWorkflowID("cancel-type"):
        DBOS.start_workflow(fenced_wf)
    assert reached.wait(10)
    DBOS.cancel_workflow("cancel-type")
    release.set()
    from runtime import DBOSAwaitedWorkflowCancelledError

    with pytest.raises((DBOSAwaitedWorkflowCancelledError, DBOSWorkflowCancelledError)):
        DBOS.retrieve_workflow("cancel-type").get_result()
