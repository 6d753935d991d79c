"""Enqueues a program gets wrong or repeats: an id already used (by the same or another
function, finished or still queued), a priority on a queue without priorities or out of range,
a partition key on an unpartitioned queue and none on a partitioned one, a deduplication id
while its holder is queued, a delay, and Queue settings DBOS refuses."""

from dbos import DBOS, Queue, SetEnqueueOptions, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-queue-misuse", "system_database_url": database_url()})
plain_queue = Queue("misuse-plain")
priority_queue = Queue("misuse-priority", priority_enabled=True)
partitioned = Queue("misuse-partitioned", partition_queue=True)
held = Queue("misuse-held", concurrency=1)


@DBOS.workflow()
def echo(x):
    return x


@DBOS.workflow()
def other(x):
    return -x


@DBOS.workflow()
def waits(x):
    DBOS.recv("go", timeout_seconds=30)
    return x


def status(handle):
    s = handle.get_status()
    return [s.status, s.queue_name, s.priority, s.deduplication_id, s.queue_partition_key]


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("qm-done"):
        see("first enqueue", plain_queue.enqueue(echo, 1).get_result())
    with SetWorkflowID("qm-done"):
        see("same id, same function, finished", plain_queue.enqueue(echo, 2).get_result())
    with SetWorkflowID("qm-done"):
        attempt("same id, other function", lambda: plain_queue.enqueue(other, 3))
    with SetWorkflowID("qm-done"):
        attempt("same id onto another queue", lambda: priority_queue.enqueue(echo, 4).get_result())
    with SetEnqueueOptions(priority=3):
        attempt("priority on a queue without priorities", lambda: status(plain_queue.enqueue(echo, 5)))
    attempt("priority zero", lambda: SetEnqueueOptions(priority=0))
    attempt("priority too large", lambda: SetEnqueueOptions(priority=2**31))
    with SetEnqueueOptions(priority=7):
        handle = priority_queue.enqueue(echo, 6)
    handle.get_result()
    see("priority recorded", status(handle))
    with SetEnqueueOptions(queue_partition_key="p1"):
        attempt("partition key on an unpartitioned queue", lambda: plain_queue.enqueue(echo, 7).get_result())
    attempt("no partition key on a partitioned queue", lambda: partitioned.enqueue(echo, 8).get_result())
    with SetEnqueueOptions(queue_partition_key="p1"):
        see("partition key recorded", partitioned.enqueue(echo, 9).get_result())
    with SetWorkflowID("qm-holder"), SetEnqueueOptions(deduplication_id="dedup-1"):
        holder = held.enqueue(waits, 10)
    with SetWorkflowID("qm-duplicate"), SetEnqueueOptions(deduplication_id="dedup-1"):
        attempt("a deduplication id while its holder is queued", lambda: held.enqueue(waits, 11))
    DBOS.send("qm-holder", "go", "go")
    see("holder result", holder.get_result())
    with SetEnqueueOptions(deduplication_id="dedup-1"):
        again = held.enqueue(echo, 12)
    see("the id again once the holder finished", again.get_result())
    attempt("worker concurrency above concurrency", lambda: Queue("misuse-bad", concurrency=1, worker_concurrency=2))
    # (A negative concurrency: DBOS accepts it, pgfleet refuses it naming the setting.)
    attempt("the same queue name twice", lambda: Queue("misuse-plain"))
    report()
    DBOS.destroy()
