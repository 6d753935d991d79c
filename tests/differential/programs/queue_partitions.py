"""A partitioned queue's limits hold per partition: with concurrency 1, one workflow of each
partition runs while the rest of its partition waits, and a partition's next one starts when
its running one finishes; priorities order each partition; listing and status name the key."""

import threading
import time

from dbos import DBOS, Queue, SetEnqueueOptions, SetWorkflowID
from observe import database_url, report, see

DBOS(config={"name": "diff-queue-partitions", "system_database_url": database_url()})
queue = Queue("parts-q", concurrency=1, partition_queue=True, priority_enabled=True, polling_interval_sec=0.1)
RELEASE = {key: threading.Event() for key in ("a", "b")}
STARTED = []


@DBOS.step()
def mark(tag):
    STARTED.append(tag)
    return tag


@DBOS.workflow()
def job(key, tag):
    mark(tag)
    RELEASE[key].wait(20)
    return tag


def enqueue(key, tag, priority=None):
    with SetWorkflowID(tag), SetEnqueueOptions(queue_partition_key=key, priority=priority):
        return queue.enqueue(job, key, tag)


def wait_for(condition, seconds=20):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    return condition()


def statuses(*ids):
    return [DBOS.get_workflow_status(i).status for i in ids]


if __name__ == "__main__":
    DBOS.launch()
    handles = [enqueue("a", "a-1"), enqueue("a", "a-2", priority=5), enqueue("a", "a-3", priority=1), enqueue("b", "b-1")]
    see("one per partition started", wait_for(lambda: sorted(STARTED) == ["a-1", "b-1"]))
    time.sleep(0.5)  # more than a few polls: nothing else of partition a may start meanwhile
    see("started", sorted(STARTED))
    see("statuses", statuses("a-1", "a-2", "a-3", "b-1"))
    queued = DBOS.list_queued_workflows(queue_name="parts-q", sort_desc=False)
    see("queued", sorted([w.workflow_id, w.status, w.queue_partition_key] for w in queued))
    RELEASE["b"].set()
    see("b done", handles[3].get_result())
    see("a still alone", [sorted(STARTED), statuses("a-2", "a-3")])
    RELEASE["a"].set()
    see("results", [h.get_result() for h in handles])
    see("order within a", [tag for tag in STARTED if tag.startswith("a")])
    DBOS.destroy()
    report()
