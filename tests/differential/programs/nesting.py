"""Calls nested where DBOS has rules for them: a step calling a step, a step starting or calling
a workflow (or a transaction doing so), DBOS.sleep inside a step, a transaction and outside any
workflow, messaging inside a step, and what the context says (DBOS.workflow_id, step_id,
step_status) at each level."""

from dbos import DBOS, Queue, SetWorkflowID
from observe import app_database_url, attempt, database_url, report, see

DBOS(config={"name": "diff-nesting", "system_database_url": database_url(), "application_database_url": app_database_url()})


@DBOS.step()
def inner_step(x):
    return [x, DBOS.workflow_id, DBOS.step_id]


@DBOS.step()
def outer_step(x):
    return [inner_step(x), DBOS.step_id, DBOS.step_status.step_id if DBOS.step_status else None]


@DBOS.workflow()
def child(x):
    return [x, DBOS.workflow_id]


@DBOS.step()
def step_calling_workflow(x):
    return child(x)


@DBOS.step()
def step_starting_workflow(x):
    return DBOS.start_workflow(child, x).get_result()


queue = Queue("nesting-queue")


@DBOS.step()
def step_enqueueing(x):
    return queue.enqueue(child, x).get_result()


@DBOS.step()
def step_sleeping():
    DBOS.sleep(0.01)
    return "slept"


@DBOS.step()
def step_sending(destination):
    DBOS.send(destination, "from a step")
    return "sent"


@DBOS.step()
def step_receiving():
    return DBOS.recv(timeout_seconds=0.1)


@DBOS.step()
def step_setting_event():
    DBOS.set_event("k", "v")
    return "set"


@DBOS.transaction()
def transaction_calling_workflow(x):
    return child(x)


@DBOS.transaction()
def transaction_starting_workflow(x):
    return DBOS.start_workflow(child, x).get_result()


@DBOS.transaction()
def transaction_sleeping():
    DBOS.sleep(0.01)
    return "slept"


@DBOS.workflow()
def parent(x):
    DBOS.sleep(0)  # takes no position (nor does a negative one)
    DBOS.sleep(-1)
    seen = {"outer": outer_step(x)}
    seen["step calls workflow"] = attempt_in(lambda: step_calling_workflow(x), error=False)
    seen["step starts workflow"] = attempt_in(lambda: step_starting_workflow(x), error=False)
    seen["step enqueues workflow"] = attempt_in(lambda: step_enqueueing(x), error=False)
    seen["sleep in step"] = attempt_in(step_sleeping)
    seen["recv in step"] = attempt_in(step_receiving)
    seen["set_event in step"] = attempt_in(step_setting_event)
    seen["send in step"] = attempt_in(lambda: step_sending(DBOS.workflow_id))
    seen["transaction calls workflow"] = attempt_in(lambda: transaction_calling_workflow(x), error=False)
    seen["transaction starts workflow"] = attempt_in(lambda: transaction_starting_workflow(x), error=False)
    seen["sleep in transaction"] = attempt_in(transaction_sleeping)
    seen["workflow_id"] = DBOS.workflow_id
    return seen


def attempt_in(fn, *, error=True):
    """``["value", v]`` or ``["raised", class, message]``; ``error=False``: only that it raised
    (a workflow started from a step or transaction: DBOS fails a bare assert, pgfleet raises
    DBOSException naming the workflow, a difference the README lists)."""
    try:
        return ["value", fn()]
    except Exception as exc:  # noqa: BLE001 - recorded for the transcript
        return ["raised", type(exc).__name__, str(exc)] if error else ["raised"]


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("nesting-parent"):
        result = attempt("parent", lambda: parent(1))
    steps = DBOS.list_workflow_steps("nesting-parent")
    see("steps", [[s["function_id"], s["function_name"].split(".")[-1], s["child_workflow_id"] is not None] for s in steps])
    children = DBOS.list_workflows(parent_workflow_id="nesting-parent")
    see("children", sorted([w.name.split(".")[-1], w.status] for w in children))
    see("context outside", [DBOS.workflow_id, DBOS.step_id, DBOS.step_status])
    see("step outside a workflow", outer_step(2))
    attempt("sleep outside a workflow", lambda: DBOS.sleep(0.01))
    attempt("sleep 0 outside a workflow", lambda: DBOS.sleep(0))
    report()
    DBOS.destroy()
