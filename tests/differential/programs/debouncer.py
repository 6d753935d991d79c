"""Debouncing workflow starts (#10 item 5): Debouncer and DebouncerClient, as DBOS 2.30 does.

A burst of debounces of one key starts the workflow once, with the last arguments; after it
left DELAYED the key starts a new burst. Inside a workflow the bounce and the enqueue are
recorded operations. Conflicting options and bad names raise DBOS's errors.
"""

from dbos import DBOS, DBOSClient, Debouncer, DebouncerClient, Queue, SetEnqueueOptions, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-debouncer", "system_database_url": database_url()})
queue = Queue("debounce-queue")
PERIOD = 1.5


@DBOS.workflow()
def target(value):
    return value


@DBOS.workflow()
def debounces_inside(key):
    debouncer = Debouncer.create(target)
    first = debouncer.debounce(key, PERIOD, "inside-1")
    second = debouncer.debounce(key, PERIOD, "inside-2")
    return [first.workflow_id == second.workflow_id, second.get_result()]


@DBOS.workflow()
def slow():
    DBOS.sleep(0.5)
    return "slow"


class Holder:
    @DBOS.workflow()
    def method(self):
        return 1


if __name__ == "__main__":
    DBOS.launch()
    debouncer = Debouncer.create(target)
    handles = [debouncer.debounce("burst", PERIOD, n) for n in (1, 2, 3)]
    see("one workflow per burst", len({h.workflow_id for h in handles}))
    see("it runs with the last arguments", handles[0].get_result())
    again = debouncer.debounce("burst", PERIOD, 4)
    see("after it ran, the key starts a new workflow", again.workflow_id != handles[0].workflow_id)
    see("the new one's result", again.get_result())

    on_queue = Debouncer.create(target, queue=queue, debounce_timeout_sec=60)
    with SetWorkflowID("pinned-debounce"):
        pinned = on_queue.debounce("pin", PERIOD, "p1")
    see("SetWorkflowID names the debounced workflow", pinned.workflow_id)
    see("a later debounce of the key bounces it", on_queue.debounce("pin", PERIOD, "p2").workflow_id)
    see("pinned result", pinned.get_result())
    see("its status", [pinned.get_status().queue_name, pinned.get_status().status])

    see("inside a workflow", debounces_inside("inner"))

    with SetWorkflowID("slow-holder"), SetEnqueueOptions(deduplication_id="slow-held"):
        holder = queue.enqueue(slow)
    attempt("a key held by a workflow that is not debounced",
            lambda: Debouncer("slow", queue=queue).debounce("held", PERIOD))
    holder.get_result()
    with SetEnqueueOptions(deduplication_id="mine"):
        attempt("with a deduplication id", lambda: debouncer.debounce("x", PERIOD, 0))
    with SetEnqueueOptions(delay_seconds=5):
        attempt("with a delay", lambda: debouncer.debounce("x", PERIOD, 0))
    attempt("an unknown queue", lambda: Debouncer.create(target, queue="no-such-queue").debounce("x", PERIOD, 0))
    attempt("an unknown workflow", lambda: Debouncer("no_such_workflow").debounce("x", PERIOD, 0))
    attempt("a bound method", lambda: Debouncer.create(Holder().method))

    client = DBOSClient(system_database_url=database_url())
    remote = DebouncerClient(client, {"workflow_name": "target", "queue_name": "debounce-queue"})
    from_client = [remote.debounce("client", PERIOD, f"c{n}") for n in (1, 2)]
    see("from a client: one workflow", from_client[0].workflow_id == from_client[1].workflow_id)
    see("from a client: last arguments", from_client[1].get_result())
    attempt("client with a priority", lambda: DebouncerClient(
        client, {"workflow_name": "target", "queue_name": "debounce-queue", "priority": 3}).debounce("y", PERIOD))
    client.destroy()
    DBOS.destroy()
    report()
