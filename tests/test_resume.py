"""DBOS.resume_workflow as DBOS does it (#10 item 4): the workflow goes to a queue (the internal
one unless named) and whichever executor claims it replays it, its recovery counted once."""

from __future__ import annotations

import threading

from runtime import DBOS, Queue, SetWorkflowID


def _row(db, workflow_id):
    return db.execute(
        "SELECT status, queue_name, recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)
    ).fetchone()


def test_a_resumed_workflow_runs_through_the_internal_queue(dbos, db):
    ran = []

    @DBOS.step()
    def counted(x):
        ran.append(x)
        return x

    @DBOS.workflow()
    def waits():
        counted("before")
        return DBOS.recv("go", timeout_seconds=30)

    with SetWorkflowID("resumed-here"):
        handle = DBOS.start_workflow(waits)
    while not DBOS.list_workflow_steps("resumed-here"):
        threading.Event().wait(0.02)
    DBOS.cancel_workflow("resumed-here")
    assert handle.get_status().status == "CANCELLED"
    DBOS.resume_workflow("resumed-here")
    DBOS.send("resumed-here", "went", "go")
    assert handle.get_result() == "went"
    assert ran == ["before"]
    assert tuple(_row(db, "resumed-here")) == ("SUCCESS", "_dbos_internal_queue", 1)


def test_resuming_a_workflow_stuck_in_its_queue_moves_it_to_the_named_queue(dbos, db):
    release = threading.Event()
    blocked = Queue("resume-blocked", concurrency=1, polling_interval_sec=0.1)
    Queue("resume-elsewhere", polling_interval_sec=0.1)

    @DBOS.workflow()
    def hold():
        release.wait(20)
        return "held"

    @DBOS.workflow()
    def stuck():
        return "ran"

    with SetWorkflowID("holder"):
        blocked.enqueue(hold)
    with SetWorkflowID("stuck"):
        handle = blocked.enqueue(stuck)
    try:
        DBOS.resume_workflow("stuck", queue_name="resume-elsewhere")
        assert handle.get_result(timeout_seconds=10) == "ran"
        assert tuple(_row(db, "stuck")) == ("SUCCESS", "resume-elsewhere", 1)
    finally:
        release.set()
