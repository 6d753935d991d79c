"""Calls a program gets wrong: a workflow called with arguments that do not fit its signature,
start_workflow and enqueue of a plain function, a workflow whose result pickle cannot take (a
generator, a lock), a step given unpicklable arguments, a workflow id reused for another
function, and what each records."""

import threading

from dbos import DBOS, Queue, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-misuse", "system_database_url": database_url()})
queue = Queue("misuse-queue")


@DBOS.workflow()
def two_args(a, b):
    return a + b


@DBOS.workflow()
def other(a):
    return a


@DBOS.step()
def step_of(value):
    return "ran"


@DBOS.workflow()
def passes_a_lock():
    return step_of(threading.Lock())


@DBOS.workflow()
def returns_a_lock():
    return threading.Lock()


def plain(x):
    return x


@DBOS.workflow()
def generator_workflow():
    yield 1


def raised(fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - only whether it raised
        return True
    return False


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("misuse-too-few"):
        attempt("too few arguments", lambda: two_args(1), message=False)
    with SetWorkflowID("misuse-unknown-keyword"):
        attempt("unknown keyword", lambda: two_args(1, c=2), message=False)
    with SetWorkflowID("misuse-start-too-many"):
        attempt("start with too many", lambda: DBOS.start_workflow(two_args, 1, 2, 3).get_result(), message=False)
    attempt("start a plain function", lambda: DBOS.start_workflow(plain, 1).get_result())
    attempt("enqueue a plain function", lambda: queue.enqueue(plain, 1).get_result())
    with SetWorkflowID("misuse-lock"):
        attempt("unpicklable step argument", lambda: passes_a_lock(), message=False)
    # A result pickle cannot take: DBOS lets pickle's TypeError through, pgfleet raises
    # DBOSSerializationError naming the result (the README lists it); both fail the workflow.
    with SetWorkflowID("misuse-generator"):
        see("generator workflow raised", raised(lambda: list(generator_workflow())))
    with SetWorkflowID("misuse-returns-lock"):
        see("workflow returning a lock raised", raised(returns_a_lock))
    with SetWorkflowID("misuse-reused"):
        see("first use of an id", other(5))
    with SetWorkflowID("misuse-reused"):
        attempt("the id again for another function", lambda: two_args(1, 2))
    with SetWorkflowID("misuse-reused"):
        attempt("the id again for the same function", lambda: other(6))
    for wid in ["misuse-too-few", "misuse-unknown-keyword", "misuse-start-too-many", "misuse-lock", "misuse-reused"]:
        status = DBOS.get_workflow_status(wid)
        see(f"status of {wid}", None if status is None else [status.status, status.name.split(".")[-1], type(status.error).__name__ if status.error else None])
    for wid in ["misuse-generator", "misuse-returns-lock"]:
        status = DBOS.get_workflow_status(wid)
        see(f"status of {wid}", [status.status, status.name.split(".")[-1], status.error is not None])
    report()
    DBOS.destroy()
