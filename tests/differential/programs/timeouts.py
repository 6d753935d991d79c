"""Workflow timeouts from sync code: SetWorkflowTimeout on a direct call, a start and an
enqueue; a child inheriting its parent's deadline; what a timed-out workflow raises, records and
leaves its children in; a negative timeout refused and a zero one meaning none; a nested
SetWorkflowTimeout; and which options of a directly called workflow's block its children do
not inherit (timeout, deduplication id, priority)."""

import time

from dbos import DBOS, Queue, SetEnqueueOptions, SetWorkflowID, SetWorkflowTimeout
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-timeouts", "system_database_url": database_url()})
queue = Queue("timeouts-queue")
priority_queue = Queue("timeouts-priority-queue", priority_enabled=True)


@DBOS.step()
def tick(i):
    return i


@DBOS.workflow()
def sleepy_child():
    DBOS.sleep(30)
    return "child woke"


@DBOS.workflow()
def slow_parent():
    tick(1)
    DBOS.start_workflow(sleepy_child)
    # Cancelled here by its deadline. (DBOS wakes and records its next operation's failure;
    # pgfleet's cancelled execution records nothing more: a difference the README lists.)
    DBOS.sleep(30)
    return "parent woke"


@DBOS.workflow()
def quick():
    return [tick(1), DBOS.workflow_id]


@DBOS.workflow()
def reports_child_deadline():
    handle = DBOS.start_workflow(quick)
    handle.get_result()
    child = DBOS.get_workflow_status(handle.workflow_id)
    own = DBOS.get_workflow_status(DBOS.workflow_id)
    return [child.workflow_timeout_ms, child.workflow_deadline_epoch_ms == own.workflow_deadline_epoch_ms]


@DBOS.workflow()
def enqueues_a_child():
    handle = priority_queue.enqueue(quick)
    handle.get_result()
    child = DBOS.get_workflow_status(handle.workflow_id)
    return [child.deduplication_id, child.priority]


def status_of(workflow_id):
    s = DBOS.get_workflow_status(workflow_id)
    return None if s is None else [s.status, s.workflow_timeout_ms, s.workflow_deadline_epoch_ms is not None]


def wait_status(workflow_id, wanted, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s = DBOS.get_workflow_status(workflow_id)
        if s is not None and s.status in wanted:
            return s.status
        time.sleep(0.05)
    return "timed out waiting"


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("to-direct"), SetWorkflowTimeout(0.5):
        attempt("direct call past its timeout", slow_parent)
    see("direct: status", status_of("to-direct"))
    children = DBOS.list_workflows(parent_workflow_id="to-direct")
    see("direct: child", [wait_status(c.workflow_id, ("CANCELLED",)) for c in children])
    with SetWorkflowID("to-start"), SetWorkflowTimeout(0.5):
        handle = DBOS.start_workflow(slow_parent)
    attempt("started: get_result", handle.get_result)
    see("started: status", status_of("to-start"))
    with SetWorkflowID("to-enqueued"), SetWorkflowTimeout(5.0):
        queued = queue.enqueue(quick)
    see("enqueued: result", queued.get_result())
    see("enqueued: status", status_of("to-enqueued"))
    with SetWorkflowID("to-inherit"), SetWorkflowTimeout(10.0):
        see("child inherits the deadline", reports_child_deadline())
    with SetWorkflowID("to-none"), SetWorkflowTimeout(None):
        see("no timeout", quick())
    see("no timeout: status", status_of("to-none"))
    attempt("timeout negative", lambda: SetWorkflowTimeout(-1))
    with SetWorkflowTimeout(10.0):
        with SetWorkflowID("to-zero"), SetWorkflowTimeout(0):
            quick()
    see("zero: no timeout, nothing inherited", status_of("to-zero"))
    with SetWorkflowTimeout(10.0):
        with SetWorkflowID("to-nested"), SetWorkflowTimeout(20.0):
            quick()
    see("nested: inner wins", status_of("to-nested"))
    with SetEnqueueOptions(deduplication_id="outer-dedup", priority=5), SetWorkflowID("to-enqueue-options"):
        see("a directly called body's children get no enqueue options", enqueues_a_child())
    report()
    DBOS.destroy()
