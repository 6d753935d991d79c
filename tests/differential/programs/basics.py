"""Workflows, steps, events and messages: the core of the programming model."""

from dbos import DBOS, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "differential-basics", "system_database_url": database_url()})

calls = []


@DBOS.step()
def add(a, b):
    calls.append(("add", a, b))
    return a + b


@DBOS.step(name="custom_multiply")
def multiply(a, b):
    return a * b


@DBOS.workflow()
def arithmetic(x):
    total = add(x, 1)
    DBOS.set_event("total", total)
    return multiply(total, 2)


@DBOS.workflow()
def failing(message):
    add(0, 0)
    raise ValueError(message)


@DBOS.workflow()
def receiver():
    return DBOS.recv("topic", timeout_seconds=10)


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("wf-arith"):
        see("result", arithmetic(20))
    with SetWorkflowID("wf-arith"):
        see("same id replays", arithmetic(20))
    see("step bodies ran", len(calls))
    see("event", DBOS.get_event("wf-arith", "total"))
    status = DBOS.get_workflow_status("wf-arith")
    see("status", [status.status, status.name, status.workflow_id])
    attempt("steps", lambda: [[s["function_id"], s["function_name"], s["output"]] for s in DBOS.list_workflow_steps("wf-arith")])
    with SetWorkflowID("wf-fail"):
        attempt("failing", lambda: failing("boom"))
    see("failed status", DBOS.get_workflow_status("wf-fail").status)
    handle = DBOS.start_workflow(receiver)
    DBOS.send(handle.workflow_id, {"hello": "world"}, "topic")
    see("received", handle.get_result())
    attempt("retrieve missing", lambda: DBOS.retrieve_workflow("no-such-workflow").get_status())
    DBOS.destroy()
    report()
