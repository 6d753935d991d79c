"""One workflow id used by several callers at once (the seed page's idempotency promise): a
direct call while the first execution still runs, a start_workflow and an enqueue of the same
id meanwhile, and a call once it finished. Each gets the one execution's result; its body and
steps run once (a ledger counts them)."""

import threading
import time

from dbos import DBOS, Queue, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-concurrent-ids", "system_database_url": database_url()})
queue = Queue("concurrent-ids-queue")
RAN = []
release = threading.Event()


@DBOS.step()
def slow_step(x):
    RAN.append(("step", x))
    release.wait(30)
    return x * 10


@DBOS.workflow()
def once(x):
    RAN.append(("body", x))
    return slow_step(x)


def call(results, key, x):
    with SetWorkflowID("the-one-id"):
        results[key] = attempt(f"thread {key}", lambda: once(x))


if __name__ == "__main__":
    DBOS.launch()
    results = {}
    first = threading.Thread(target=call, args=(results, "first", 1))
    first.start()
    deadline = time.monotonic() + 20
    while ("step", 1) not in RAN and time.monotonic() < deadline:
        time.sleep(0.01)
    second = threading.Thread(target=call, args=(results, "second", 2))
    second.start()
    with SetWorkflowID("the-one-id"):
        started = DBOS.start_workflow(once, 3)
    with SetWorkflowID("the-one-id"):
        enqueued = queue.enqueue(once, 4)
    time.sleep(0.5)
    release.set()
    first.join(30)
    second.join(30)
    see("handles", [started.get_result(), enqueued.get_result(), started.workflow_id, enqueued.workflow_id])
    with SetWorkflowID("the-one-id"):
        see("after it finished", once(5))
    see("ran", RAN)
    see("status", [DBOS.get_workflow_status("the-one-id").status, DBOS.get_workflow_status("the-one-id").queue_name])
    report()
    DBOS.destroy()
