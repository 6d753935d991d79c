"""Messages, events, streams and waits beyond the basics: send with an idempotency key,
send_bulk, get_all_events, read_stream from an offset, wait_first, and what each does from
inside a step."""

from dbos import DBOS, DBOSClient, SendMessage, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "differential-messaging", "system_database_url": database_url()})


@DBOS.workflow()
def inbox(count):
    return [DBOS.recv("t", timeout_seconds=5) for _ in range(count)]


@DBOS.workflow()
def sender(destination):
    DBOS.send(destination, "keyed", "t", idempotency_key="key-1")
    DBOS.send(destination, "keyed again", "t", idempotency_key="key-1")  # same key: delivered once
    DBOS.send_bulk([SendMessage(destination, "bulk-1", "t"), SendMessage(destination, "bulk-2", "t", "key-2")])
    DBOS.send_bulk([])
    return "sent"


@DBOS.step()
def publish_from_step(destination):
    DBOS.set_event("from_step", {"step": DBOS.step_id})
    DBOS.send(destination, "from a step", "t")
    DBOS.write_stream("numbers", 100)
    out = {}
    out["recv"] = attempt("recv in step", lambda: DBOS.recv("t", timeout_seconds=0))
    out["get_event"] = DBOS.get_event(DBOS.workflow_id, "from_step", timeout_seconds=0)
    out["all events"] = DBOS.get_all_events(DBOS.workflow_id)
    attempt("close_stream in step", lambda: DBOS.close_stream("numbers"))
    return out


@DBOS.workflow()
def publisher(destination):
    DBOS.set_event("a", 1)
    DBOS.set_event("b", [2])
    DBOS.set_event("a", 3)
    for i in range(4):
        DBOS.write_stream("numbers", i)
    seen_in_step = publish_from_step(destination)
    DBOS.close_stream("numbers")
    return [DBOS.get_all_events(DBOS.workflow_id), seen_in_step]


@DBOS.workflow()
def quick(x):
    return x


@DBOS.workflow()
def slow(x):
    DBOS.recv("never", timeout_seconds=2)
    return x


@DBOS.workflow()
def waits_for_first():
    DBOS.sleep(0.05)  # the children start after their parent, whatever the clock's resolution
    slow_handle = DBOS.start_workflow(slow, "slow")
    DBOS.sleep(0.05)
    quick_handle = DBOS.start_workflow(quick, "quick")
    first = DBOS.wait_first([slow_handle, quick_handle], polling_interval_sec=0.1)
    return [first.workflow_id, first.get_result()]


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("inbox-1"):
        inbox_handle = DBOS.start_workflow(inbox, 6)
    with SetWorkflowID("sender-1"):
        see("sender", sender("inbox-1"))
    with SetWorkflowID("sender-1"):
        see("sender replayed", sender("inbox-1"))
    DBOS.send("inbox-1", "outside", "t", idempotency_key="key-3")
    DBOS.send("inbox-1", "outside again", "t", idempotency_key="key-3")
    with SetWorkflowID("publisher-1"):
        see("publisher", publisher("inbox-1"))
    see("inbox got", inbox_handle.get_result())
    see("all events outside", DBOS.get_all_events("publisher-1"))
    see("all events of nothing", DBOS.get_all_events("no-such-workflow"))
    see("stream", list(DBOS.read_stream("publisher-1", "numbers")))
    see("stream from 2", list(DBOS.read_stream("publisher-1", "numbers", offset=2)))
    see("stream past the end", list(DBOS.read_stream("publisher-1", "numbers", offset=9)))
    attempt("stream of nothing", lambda: list(DBOS.read_stream("no-such-workflow", "numbers")))
    with SetWorkflowID("waiter-1"):
        see("wait_first in a workflow", waits_for_first())
    with SetWorkflowID("waiter-1"):
        see("wait_first replayed", waits_for_first())
    done = DBOS.retrieve_workflow("sender-1")
    see("wait_first outside", DBOS.wait_first([DBOS.retrieve_workflow("publisher-1"), done]).workflow_id in ("sender-1", "publisher-1"))
    attempt("wait_first of none", lambda: DBOS.wait_first([]))
    attempt("wait_first duplicates", lambda: DBOS.wait_first([done, done]))
    attempt("send_bulk to nowhere", lambda: DBOS.send_bulk([SendMessage("nowhere-b", 1), SendMessage("nowhere-a", 2)]))
    attempt("send_bulk duplicate keys", lambda: DBOS.send_bulk([SendMessage("inbox-1", 1, None, "k"), SendMessage("inbox-1", 2, None, "k")]))

    client = DBOSClient(system_database_url=database_url())
    with SetWorkflowID("inbox-2"):
        second_inbox = DBOS.start_workflow(inbox, 4)
    client.send("inbox-2", "client keyed", "t", "client-key")
    client.send("inbox-2", "client keyed again", "t", "client-key")
    client.send_bulk([SendMessage("inbox-2", "client bulk 1", "t"), SendMessage("inbox-2", "client bulk 2", "t")])
    see("client inbox got", second_inbox.get_result())
    attempt("client send to nowhere", lambda: client.send("nowhere", 1))
    see("client stream from 1", list(client.read_stream("publisher-1", "numbers", offset=1)))
    see("client stream of nothing", list(client.read_stream("no-such-workflow", "numbers")))
    see("client wait_first", client.wait_first([client.retrieve_workflow("sender-1")]).workflow_id)
    attempt("client wait_first of none", lambda: client.wait_first([]))
    client.destroy()
    DBOS.destroy()
    report()
