"""Steps and transactions started, enqueued or scheduled as workflows of one step (#10 item 3)."""

from dbos import DBOS, Queue, SetWorkflowID
from observe import app_database_url, attempt, database_url, report, see

DBOS(config={
    "name": "diff-steps-as-workflows",
    "system_database_url": database_url(),
    "application_database_url": app_database_url(),
})
queue = Queue("steps-queue")


@DBOS.step(name="named_square")
def square(x):
    return x * x


@DBOS.step()
def shout(text):
    return text.upper()


@DBOS.transaction()
def add_in_transaction(a, b):
    return a + b


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("started-step"):
        handle = attempt("start_workflow(step)", lambda: DBOS.start_workflow(square, 7))
    if handle is not None:
        see("started step result", handle.get_result())
    with SetWorkflowID("enqueued-step"):
        queued = attempt("enqueue(step)", lambda: queue.enqueue(shout, "hi"))
    if queued is not None:
        see("enqueued step result", queued.get_result())
    with SetWorkflowID("started-transaction"):
        tx = attempt("start_workflow(transaction)", lambda: DBOS.start_workflow(add_in_transaction, 2, 3))
    if tx is not None:
        see("started transaction result", tx.get_result())
    with SetWorkflowID("enqueued-transaction"):
        queued_tx = attempt("enqueue(transaction)", lambda: queue.enqueue(add_in_transaction, 4, 5))
    if queued_tx is not None:
        see("enqueued transaction result", queued_tx.get_result())
    for workflow_id in ("started-step", "enqueued-step", "started-transaction", "enqueued-transaction"):
        status = attempt(f"status {workflow_id}", lambda wid=workflow_id: DBOS.get_workflow_status(wid))
        if status is not None:
            see(f"status of {workflow_id}", [status.status, status.name, status.queue_name])
        attempt(f"steps of {workflow_id}", lambda wid=workflow_id: [[s["function_id"], s["function_name"], s["output"]] for s in DBOS.list_workflow_steps(wid)])
    see("direct call outside a workflow", square(3))
    DBOS.destroy()
    report()
