"""Events, messages and streams at their edges: calls outside a workflow, None values and
topics, a workflow messaging itself, a stream written after it was closed or left open when
its workflow ends, and what a replay reads back."""

from dbos import DBOS, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-events-edges", "system_database_url": database_url()})


@DBOS.workflow()
def to_myself():
    DBOS.send(DBOS.workflow_id, "note to self", "self")
    DBOS.send(DBOS.workflow_id, "no topic")
    out = [DBOS.recv("self", timeout_seconds=5), DBOS.recv(timeout_seconds=5), DBOS.recv("self", timeout_seconds=0)]
    DBOS.set_event("empty", None)
    DBOS.set_event("", "blank key")
    out.append(DBOS.get_event(DBOS.workflow_id, "empty", timeout_seconds=0))
    out.append(DBOS.get_event(DBOS.workflow_id, "", timeout_seconds=0))
    out.append(DBOS.get_event(DBOS.workflow_id, "never", timeout_seconds=0))
    return out


@DBOS.workflow()
def closes_then_writes():
    DBOS.write_stream("s", 1)
    DBOS.close_stream("s")
    attempt("write after close", lambda: DBOS.write_stream("s", 2))
    attempt("close twice", lambda: DBOS.close_stream("s"))
    DBOS.write_stream("other", None)
    return "done"


@DBOS.workflow()
def leaves_stream_open(n):
    for i in range(n):
        DBOS.write_stream("open", i)
    return n


@DBOS.workflow()
def fails_with_open_stream():
    DBOS.write_stream("open", "before the failure")
    raise RuntimeError("stream left open")


@DBOS.workflow()
def reads_event_of(other):
    return [DBOS.get_event(other, "", timeout_seconds=1), DBOS.get_all_events(other)]


if __name__ == "__main__":
    DBOS.launch()
    attempt("set_event outside", lambda: DBOS.set_event("k", 1))
    attempt("recv outside", lambda: DBOS.recv("t", timeout_seconds=0))
    attempt("write_stream outside", lambda: DBOS.write_stream("s", 1))
    attempt("close_stream outside", lambda: DBOS.close_stream("s"))
    see("get_event of nothing", DBOS.get_event("no-such-workflow", "k", timeout_seconds=0.1))
    with SetWorkflowID("self-1"):
        see("to myself", to_myself())
    with SetWorkflowID("self-1"):
        see("to myself replayed", to_myself())
    see("events", DBOS.get_all_events("self-1"))
    with SetWorkflowID("close-1"):
        see("closes then writes", closes_then_writes())
    see("closed stream", list(DBOS.read_stream("close-1", "s")))
    see("stream of None", list(DBOS.read_stream("close-1", "other")))
    with SetWorkflowID("open-1"):
        see("left open", leaves_stream_open(3))
    see("open stream of a finished workflow", list(DBOS.read_stream("open-1", "open")))
    with SetWorkflowID("open-2"):
        attempt("fails with open stream", fails_with_open_stream)
    see("open stream of a failed workflow", list(DBOS.read_stream("open-2", "open")))
    with SetWorkflowID("reader-1"):
        see("reads another's events", reads_event_of("self-1"))
    with SetWorkflowID("reader-1"):
        see("reads another's events replayed", reads_event_of("self-1"))
    attempt("send to nobody outside", lambda: DBOS.send("no-such-workflow", 1))
    DBOS.destroy()
    report()
