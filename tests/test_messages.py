"""DBOS.send / recv and set_event / get_event: delivered once, checkpointed, fenced."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import wait_until
from runtime import DBOS, DBOSException, DBOSNonExistentWorkflowError, SetWorkflowID


def test_send_and_recv_between_workflows(dbos, db, monkeypatch):
    import runtime.messages

    # No re-check of the database while waiting: only the NOTIFY can wake the receiver before
    # its 10 s timeout, which would make it return None instead of the messages.
    monkeypatch.setattr(runtime.messages, "RECHECK_INTERVAL_SEC", 3600.0)

    @DBOS.workflow()
    def receiver():
        first = DBOS.recv("greetings", timeout_seconds=10)
        second = DBOS.recv("greetings", timeout_seconds=10)
        nothing = DBOS.recv("other", timeout_seconds=0.2)
        return [first, second, nothing]

    @DBOS.workflow()
    def sender(target):
        DBOS.send(target, {"hello": 1}, "greetings")
        DBOS.send(target, "again", "greetings")

    with SetWorkflowID("receiver"):
        handle = DBOS.start_workflow(receiver)
    wait_until(lambda: db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='receiver'").fetchone()[0] >= 1,
               "the receiver to wait")  # its first recv recorded its timeout position: it waits now
    with SetWorkflowID("sender"):
        sender("receiver")
    assert handle.get_result() == [{"hello": 1}, "again", None]
    names = [r[0] for r in db.execute("SELECT function_name FROM dbos.operation_outputs WHERE workflow_uuid='receiver' ORDER BY function_id")]
    assert names.count("DBOS.recv") == 3 and "DBOS.sleep" in names
    assert db.execute("SELECT count(*) FROM dbos.notifications WHERE consumed").fetchone()[0] == 2
    # A replay of the sender sends nothing again (the message ids are its step positions).
    assert [r[0] for r in db.execute("SELECT message_uuid FROM dbos.notifications ORDER BY 1")] == ["sender-1", "sender-2"]


def test_recv_records_its_timeout_even_when_a_message_is_waiting(dbos):
    """As DBOS: a resumed workflow's recv records the same steps whether or not the message
    arrived before it got there (DBOS.recv then DBOS.sleep, the durable timeout)."""
    release = threading.Event()

    @DBOS.workflow()
    def late_receiver():
        release.wait(10)
        return DBOS.recv("t", timeout_seconds=10)

    with SetWorkflowID("late-receiver"):
        handle = DBOS.start_workflow(late_receiver)
    DBOS.send("late-receiver", "early", "t")
    release.set()
    assert handle.get_result() == "early"
    assert [s["function_name"] for s in DBOS.list_workflow_steps("late-receiver")] == ["DBOS.recv", "DBOS.sleep"]


def test_send_from_outside_a_workflow_and_to_nowhere(dbos):
    @DBOS.workflow()
    def inbox():
        return DBOS.recv(timeout_seconds=10)

    with SetWorkflowID("inbox"):
        handle = DBOS.start_workflow(inbox)
    DBOS.send("inbox", 42)
    assert handle.get_result() == 42
    with pytest.raises(DBOSNonExistentWorkflowError) as missing:
        DBOS.send("no-such-workflow", 1)
    assert str(missing.value) == "DBOS Error 5: Non-existent `send` destination workflow ID: no-such-workflow"
    assert missing.value.dbos_error_code == 5
    with pytest.raises(DBOSException, match=r"^DBOS Error: recv\(\) must be called from within a workflow$"):
        DBOS.recv()
    with pytest.raises(DBOSException, match=r"^DBOS Error: set_event\(\) must be called from within a workflow or step$"):
        DBOS.set_event("key", "value")


def test_events_are_published_and_awaited(dbos):
    gate = threading.Event()

    @DBOS.workflow()
    def publisher():
        DBOS.set_event("progress", 10)
        gate.wait(10)
        DBOS.set_event("progress", 100)
        return "done"

    with SetWorkflowID("publisher"):
        handle = DBOS.start_workflow(publisher)
    assert DBOS.get_event("publisher", "progress", timeout_seconds=5) == 10
    gate.set()
    handle.get_result()
    assert DBOS.get_event("publisher", "progress") == 100
    assert DBOS.get_event("publisher", "missing", timeout_seconds=0.2) is None

    @DBOS.workflow()
    def reader():
        return DBOS.get_event("publisher", "progress", timeout_seconds=1)

    with SetWorkflowID("reader"):
        assert reader() == 100
    # As dbos 2.30: the timeout is recorded (a DBOS.sleep) even when the event was set already.
    assert [s["function_name"] for s in DBOS.list_workflow_steps("reader")] == ["DBOS.getEvent", "DBOS.sleep"]


def test_recv_after_takeover_consumes_nothing(dbos, db):
    """A receive whose checkpoint is fenced leaves the message for the new owner."""
    @DBOS.workflow()
    def waiting():
        return DBOS.recv(timeout_seconds=10)

    with SetWorkflowID("fenced-recv"):
        DBOS.start_workflow(waiting)
    time.sleep(0.3)
    db.execute("UPDATE dbos.workflow_status SET executor_id='other', owner_epoch=nextval('dbos.pgfleet_epoch_seq') WHERE workflow_uuid='fenced-recv'")
    DBOS.send("fenced-recv", "for the new owner")
    time.sleep(0.5)
    assert db.execute("SELECT consumed FROM dbos.notifications").fetchone()[0] is False
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='fenced-recv' AND function_name='DBOS.recv'").fetchone()[0] == 0


def test_streams_are_written_once_and_read_in_order(dbos, db):
    gate = threading.Event()

    @DBOS.step()
    def produce_in_step(i):
        DBOS.write_stream("numbers", i * 100)

    @DBOS.workflow()
    def producer():
        for i in range(3):
            DBOS.write_stream("numbers", i)
        produce_in_step(5)
        gate.wait(10)
        DBOS.close_stream("numbers")
        return "produced"

    with SetWorkflowID("producer"):
        handle = DBOS.start_workflow(producer)
    reader = DBOS.read_stream("producer", "numbers")
    assert [next(reader) for _ in range(4)] == [0, 1, 2, 500]
    gate.set()
    assert list(reader) == []  # closed: the reader ends
    assert handle.get_result() == "produced"
    names = [s["function_name"] for s in DBOS.list_workflow_steps("producer")]
    assert names.count("DBOS.writeStream") == 3 and names[-1] == "DBOS.closeStream"
    assert db.execute("SELECT count(*) FROM dbos.streams WHERE workflow_uuid='producer'").fetchone()[0] == 5
    with pytest.raises(DBOSException, match=r"write_stream\(\) must be called from within a workflow or step"):
        DBOS.write_stream("numbers", 1)
