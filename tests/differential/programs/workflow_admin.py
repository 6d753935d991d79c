"""Workflow management: bulk cancel/resume/delete, delays, attributes, steps paging (#10 item 5)."""

import time

from dbos import DBOS, DBOSClient, Queue, SetEnqueueOptions, SetWorkflowAttributes, SetWorkflowID, WorkflowStatus
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-admin", "system_database_url": database_url(), "application_version": "v-admin"})
later = Queue("later-queue")


@DBOS.step()
def note(x):
    return x


@DBOS.workflow()
def waiter(tag):
    note(tag)
    return DBOS.recv("go", timeout_seconds=60)


@DBOS.workflow()
def parent(tag):
    note(tag)
    with SetWorkflowID(f"{tag}-child"):
        child = DBOS.start_workflow(waiter, f"{tag}-c")
    DBOS.sleep(0.05)
    return DBOS.recv("go", timeout_seconds=60), child.workflow_id


@DBOS.workflow()
def attributed_parent(tag):
    with SetWorkflowID(f"{tag}-kid"):
        three_steps(1)
    with SetWorkflowAttributes({"set": "inside"}), SetWorkflowID(f"{tag}-kid2"):
        three_steps(2)
    return DBOS.get_workflow_status(f"{tag}-kid").attributes


@DBOS.workflow()
def three_steps(x):
    return note(x) + note(x + 1) + note(x + 2)


@DBOS.workflow()
def manager(target, delayed_id):
    DBOS.cancel_workflows([target])
    DBOS.resume_workflows([target])
    DBOS.update_workflow_attributes(target, {"by": "manager"})
    DBOS.set_workflow_delay(delayed_id, delay_seconds=0)
    steps = len(DBOS.list_workflow_steps(target, limit=1))
    DBOS.delete_workflow("doomed")
    with SetWorkflowID("manager-fork"):
        forked = DBOS.fork_workflow("fork-1", 3, queue_name="later-queue")
    return steps, forked.get_result()


def status(wfid):
    s = DBOS.get_workflow_status(wfid)
    return None if s is None else s.status


def wait_status(wfid, wanted):
    deadline = time.time() + 30
    while status(wfid) != wanted and time.time() < deadline:
        time.sleep(0.05)
    return status(wfid)


def start(fn, wfid, *args):
    with SetWorkflowID(wfid):
        return DBOS.start_workflow(fn, *args)


if __name__ == "__main__":
    DBOS.launch()
    see("application_version", DBOS.application_version)
    blank = WorkflowStatus()
    see("WorkflowStatus() builds", type(blank).__name__)

    # -- cancel --------------------------------------------------------------------------------
    attempt("cancel missing", lambda: DBOS.cancel_workflow("no-such-wf"))
    attempt("cancel_workflows missing", lambda: DBOS.cancel_workflows(["no-such-a", "no-such-b"]))
    start(parent, "p1", "p1")
    see("p1 child pending", wait_status("p1-child", "PENDING"))
    attempt("cancel without children", lambda: DBOS.cancel_workflow("p1"))
    see("p1 after cancel", [status("p1"), status("p1-child")])
    start(parent, "p2", "p2")
    see("p2 child pending", wait_status("p2-child", "PENDING"))
    attempt("cancel with children", lambda: DBOS.cancel_workflow("p2", cancel_children=True))
    see("p2 after cancel", [status("p2"), status("p2-child")])
    start(waiter, "w1", "w1")
    start(waiter, "w2", "w2")
    wait_status("w2", "PENDING")
    with SetWorkflowID("done-1"):
        three_steps(1)
    attempt("cancel_workflows", lambda: DBOS.cancel_workflows(["w1", "w2", "done-1"]))
    see("after bulk cancel", [status("w1"), status("w2"), status("done-1")])
    cancelled = DBOS.get_workflow_status("w1")
    see("cancelled row", [cancelled.queue_name, cancelled.completed_at is not None])

    # -- resume ----------------------------------------------------------------------------------
    attempt("resume_workflows missing", lambda: DBOS.resume_workflows(["w1", "no-such-x", "no-such-y"]))
    see("w1 untouched by failed resume", status("w1"))
    handles = DBOS.resume_workflows(["w1", "w2", "done-1"])
    see("resume_workflows ids", [h.get_workflow_id() for h in handles])
    see("resumed w1", wait_status("w1", "PENDING"))
    wait_status("w2", "PENDING")
    DBOS.send("w1", "one", "go")
    DBOS.send("w2", "two", "go")
    see("resumed results", [handles[0].get_result(), handles[1].get_result(), handles[2].get_result()])
    see("resumed statuses", [status("w1"), status("w2"), status("done-1")])
    attempt("resume_workflows empty", lambda: DBOS.resume_workflows([]))

    # -- steps paging ----------------------------------------------------------------------------
    with SetWorkflowID("steps-1"):
        three_steps(10)
    see("steps", [(s["function_id"], s["function_name"], s["output"]) for s in DBOS.list_workflow_steps("steps-1")])
    see("steps limit", [s["function_id"] for s in DBOS.list_workflow_steps("steps-1", limit=2)])
    see("steps offset", [s["function_id"] for s in DBOS.list_workflow_steps("steps-1", limit=1, offset=1)])
    see("steps no output", [s["output"] for s in DBOS.list_workflow_steps("steps-1", load_output=False)])
    see("steps missing wf", DBOS.list_workflow_steps("no-such-wf"))

    # -- attributes --------------------------------------------------------------------------------
    attempt("attributes set", lambda: DBOS.update_workflow_attributes("steps-1", {"team": "red", "n": 2}))
    see("attributes read", DBOS.get_workflow_status("steps-1").attributes)
    see("list by attributes", [s.workflow_id for s in DBOS.list_workflows(attributes={"team": "red"})])
    see("list by other attributes", [s.workflow_id for s in DBOS.list_workflows(attributes={"team": "blue"})])
    attempt("attributes not a dict", lambda: DBOS.update_workflow_attributes("steps-1", ["x"]))
    attempt("attributes not JSON", lambda: DBOS.update_workflow_attributes("steps-1", {"x": object}), message=False)
    attempt("attributes missing wf", lambda: DBOS.update_workflow_attributes("no-such-wf", {"a": 1}))
    attempt("attributes cleared", lambda: DBOS.update_workflow_attributes("steps-1", None))
    see("attributes after clear", DBOS.get_workflow_status("steps-1").attributes)

    attempt("SetWorkflowAttributes bad", lambda: SetWorkflowAttributes("nope"))
    with SetWorkflowAttributes({"origin": "block"}):
        with SetWorkflowID("attr-1"):
            see("attributed parent", attributed_parent("attr-1"))
        with SetWorkflowID("attr-2"):
            DBOS.start_workflow(three_steps, 3).get_result()
        with SetWorkflowID("attr-3"), SetEnqueueOptions(delay_seconds=0):
            later.enqueue(three_steps, 4).get_result()
        with SetWorkflowAttributes(None), SetWorkflowID("attr-4"):
            three_steps(5)
    with SetWorkflowID("attr-5"):
        three_steps(6)
    see("attributes recorded", [(i, DBOS.get_workflow_status(i).attributes) for i in
                                ["attr-1", "attr-1-kid", "attr-1-kid2", "attr-2", "attr-3", "attr-4", "attr-5"]])
    see("list by block attributes", sorted(s.workflow_id for s in DBOS.list_workflows(attributes={"origin": "block"})))

    # -- delays ------------------------------------------------------------------------------------
    with SetWorkflowID("delayed-1"), SetEnqueueOptions(delay_seconds=3600):
        delayed = later.enqueue(three_steps, 20)
    see("delayed status", status("delayed-1"))
    attempt("delay both", lambda: DBOS.set_workflow_delay("delayed-1", delay_seconds=1, delay_until_epoch_ms=1))
    attempt("delay neither", lambda: DBOS.set_workflow_delay("delayed-1"))
    attempt("delay negative seconds", lambda: DBOS.set_workflow_delay("delayed-1", delay_seconds=-1))
    attempt("delay negative epoch", lambda: DBOS.set_workflow_delay("delayed-1", delay_until_epoch_ms=-5))
    attempt("delay missing wf", lambda: DBOS.set_workflow_delay("no-such-wf", delay_seconds=1))
    attempt("delay finished wf", lambda: DBOS.set_workflow_delay("steps-1", delay_until_epoch_ms=5))
    see("finished wf delay untouched", DBOS.get_workflow_status("steps-1").delay_until_epoch_ms)
    attempt("delay to now", lambda: DBOS.set_workflow_delay("delayed-1", delay_seconds=0))
    see("delayed result", delayed.get_result())

    # -- fork parameters ---------------------------------------------------------------------------
    attempt("fork bad timeout", lambda: DBOS.fork_workflow("steps-1", 2, timeout_seconds=-1))
    with SetWorkflowID("fork-1"):
        forked = DBOS.fork_workflow("steps-1", 2, queue_name="later-queue", timeout_seconds=30)
    see("fork result", forked.get_result())
    fs = DBOS.get_workflow_status("fork-1")
    see("fork row", [fs.queue_name, fs.workflow_timeout_ms, fs.forked_from])

    # -- delete ------------------------------------------------------------------------------------
    attempt("delete missing", lambda: DBOS.delete_workflow("no-such-wf"))
    attempt("delete one", lambda: DBOS.delete_workflow("steps-1"))
    see("deleted status", DBOS.get_workflow_status("steps-1"))
    see("deleted steps", DBOS.list_workflow_steps("steps-1"))
    see("fork survives", status("fork-1"))
    attempt("delete parent only", lambda: DBOS.delete_workflow("p1"))
    see("p1 child survives", status("p1-child"))
    DBOS.send("p1-child", "late", "go")
    see("orphan finishes", DBOS.retrieve_workflow("p1-child").get_result())
    attempt("delete with children", lambda: DBOS.delete_workflows(["p2", "done-1"], delete_children=True))
    see("p2 family", [status("p2"), status("p2-child"), status("done-1")])
    attempt("retrieve deleted", lambda: DBOS.retrieve_workflow("p2"))

    # -- from inside a workflow: each call is one recorded operation -----------------------------
    with SetWorkflowID("doomed"):
        three_steps(40)
    start(waiter, "managed", "managed")
    wait_status("managed", "PENDING")
    with SetWorkflowID("delayed-3"), SetEnqueueOptions(delay_seconds=3600):
        delayed3 = later.enqueue(three_steps, 50)
    time.sleep(0.01)  # distinct created_at (ms) values: the records are ordered by it
    with SetWorkflowID("manager-1"):
        see("manager", manager("managed", "delayed-3"))
    see("managed after", [wait_status("managed", "PENDING"), DBOS.get_workflow_status("managed").attributes, status("doomed")])
    DBOS.send("managed", "m", "go")
    see("managed result", DBOS.retrieve_workflow("managed").get_result())
    see("delayed-3 result", delayed3.get_result())
    see("manager steps", [s["function_name"] for s in DBOS.list_workflow_steps("manager-1")])
    # Its row's created_at comes from a different clock under each package (their order in the
    # records is not behaviour): the transcript above has seen it.
    DBOS.delete_workflow("manager-fork")

    # -- the same through a client -------------------------------------------------------------
    client = DBOSClient(system_database_url=database_url())
    attempt("client check_connection", client.check_connection)
    start(waiter, "cw1", "cw1")
    start(waiter, "cw2", "cw2")
    wait_status("cw2", "PENDING")
    attempt("client cancel missing", lambda: client.cancel_workflow("no-such-wf"))
    attempt("client cancel_workflows", lambda: client.cancel_workflows(["cw1", "cw2"]))
    see("client cancelled", [status("cw1"), status("cw2")])
    attempt("client resume missing", lambda: client.resume_workflows(["cw1", "no-such-z"]))
    resumed = client.resume_workflows(["cw1", "cw2"])
    see("client resumed ids", [h.get_workflow_id() for h in resumed])
    wait_status("cw1", "PENDING")
    wait_status("cw2", "PENDING")
    client.send("cw1", "c-one", "go")
    client.send("cw2", "c-two", "go")
    see("client resumed results", [h.get_result() for h in resumed])
    see("client steps page", [s["function_name"] for s in client.list_workflow_steps("cw1", limit=2, offset=1)])
    attempt("client attributes", lambda: client.update_workflow_attributes("cw1", {"via": "client"}))
    see("client list by attributes", [s.workflow_id for s in client.list_workflows(attributes={"via": "client"})])
    attempt("client attributes bad", lambda: client.update_workflow_attributes("cw1", 5))
    with SetWorkflowID("delayed-2"), SetEnqueueOptions(delay_seconds=3600):
        delayed2 = later.enqueue(three_steps, 30)
    attempt("client delay neither", lambda: client.set_workflow_delay("delayed-2"))
    attempt("client delay now", lambda: client.set_workflow_delay("delayed-2", delay_until_epoch_ms=0))
    see("client delayed result", delayed2.get_result())
    attempt("client fork bad timeout", lambda: client.fork_workflow("fork-1", 1, timeout_seconds=0))
    cfork = client.fork_workflow("fork-1", 3, queue_name="later-queue")
    see("client fork result", cfork.get_result())
    see("client fork row", [DBOS.get_workflow_status(cfork.get_workflow_id()).queue_name])
    attempt("client retrieve missing", lambda: client.retrieve_workflow("no-such-wf"))
    attempt("client delete", lambda: client.delete_workflows(["cw2", cfork.get_workflow_id()]))
    see("client deleted", [status("cw2"), status(cfork.get_workflow_id())])
    client.destroy()

    attempt("reset while launched", lambda: DBOS.reset_system_database())
    see("left", sorted(s.workflow_id for s in DBOS.list_workflows()))
    DBOS.destroy()
    report()
