"""Cancellation and timeouts around parents, children and queues: cancelling a parent whose
child still runs, a parent whose timeout passes while it waits on a child, a queued workflow
cancelled before it starts and then resumed, a queued workflow's timeout counted from its
dequeue, and cancels of finished and unknown workflows.

The cancelled workflows wait in DBOS.sleep, whose checkpoint both record before waiting: a
workflow cancelled inside recv or get_result records that operation's outcome in DBOS and not
in pgfleet (a documented difference, README "Differences")."""

import threading
import time

from dbos import DBOS, Queue, SetWorkflowID, SetWorkflowTimeout
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-cancellation", "system_database_url": database_url()})
held = Queue("held-q", concurrency=1)
RAN = []
GATE = threading.Event()


@DBOS.step()
def note(what):
    RAN.append(what)
    return what


@DBOS.workflow()
def child(tag, seconds):
    note(f"{tag} started")
    DBOS.sleep(seconds)
    note(f"{tag} after its sleep")
    return tag


@DBOS.workflow()
def parent_of_running_child():
    handle = DBOS.start_workflow(child, "kid-of-cancelled", 1.5)
    DBOS.set_event("child", handle.workflow_id)
    DBOS.sleep(10)
    return "parent finished"


@DBOS.workflow()
def parent_times_out():
    handle = DBOS.start_workflow(child, "kid-of-timed-out", 10)
    DBOS.set_event("child", handle.workflow_id)
    DBOS.sleep(10)
    return "never reached"  # (DBOS's cancelled body goes on after its sleep: it must record nothing)


@DBOS.workflow()
def blocker():
    GATE.wait(10)
    return note("blocker done")


@DBOS.workflow()
def queued_job(x):
    return note(f"queued job {x}")


@DBOS.workflow()
def slow_queued():
    DBOS.sleep(3)
    return note("slow queued finished")


def status(workflow_id):
    return DBOS.get_workflow_status(workflow_id).status


def wait_status(workflow_id, wanted, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if status(workflow_id) in wanted:
            return status(workflow_id)
        time.sleep(0.05)
    return status(workflow_id)


def cancel_parent_with_running_child():
    with SetWorkflowID("p-1"):
        parent = DBOS.start_workflow(parent_of_running_child)
    kid = DBOS.get_event("p-1", "child", timeout_seconds=10)
    DBOS.cancel_workflow("p-1")
    attempt("cancelled parent result", parent.get_result)
    attempt("child result", DBOS.retrieve_workflow(kid).get_result)  # it runs on: a cancel does not reach it
    see("child of a cancelled parent", status(kid))


def parent_times_out_on_child():
    with SetWorkflowID("p-2"), SetWorkflowTimeout(1.0):
        parent = DBOS.start_workflow(parent_times_out)
    kid = DBOS.get_event("p-2", "child", timeout_seconds=10)
    attempt("timed-out parent result", parent.get_result)
    see("timed-out parent status", status("p-2"))
    see("child of a timed-out parent", wait_status(kid, ("CANCELLED",), 5))
    see("child's deadline is its parent's", DBOS.get_workflow_status(kid).workflow_deadline_epoch_ms
        == DBOS.get_workflow_status("p-2").workflow_deadline_epoch_ms)


def queued_cancel_and_resume():
    with SetWorkflowID("b-1"):
        block = held.enqueue(blocker)
    wait_status("b-1", ("PENDING",))
    with SetWorkflowID("q-1"):
        queued = held.enqueue(queued_job, 1)
    see("queued before cancel", status("q-1"))
    DBOS.cancel_workflow("q-1")
    see("queued after cancel", status("q-1"))
    GATE.set()
    see("blocker", block.get_result())
    attempt("cancelled queued result", queued.get_result)
    resumed = DBOS.resume_workflow("q-1")
    see("resumed queued result", resumed.get_result())
    see("resumed row", [status("q-1"), DBOS.get_workflow_status("q-1").queue_name])


def queued_timeout_from_dequeue():
    with SetWorkflowID("t-1"), SetWorkflowTimeout(1.0):
        h = held.enqueue(slow_queued)
    attempt("queued timeout result", h.get_result)
    row = DBOS.get_workflow_status("t-1")
    see("queued timeout row", [row.status, row.workflow_timeout_ms])


if __name__ == "__main__":
    DBOS.launch()
    cancel_parent_with_running_child()
    parent_times_out_on_child()
    queued_cancel_and_resume()
    queued_timeout_from_dequeue()
    with SetWorkflowID("done-1"):
        see("finished", queued_job(2))
    see("cancel a finished workflow", DBOS.cancel_workflow("done-1"))
    see("finished stays", status("done-1"))
    attempt("cancel an unknown workflow", lambda: DBOS.cancel_workflow("no-such-workflow"))
    see("steps that ran", sorted(RAN))
    DBOS.destroy()
    report()
