"""The messaging family's new operations under the cluster's guarantees: a fenced owner sends,
publishes and records nothing (send_bulk, run_step, set_event and send from inside a step), and
a replay returns what was recorded without doing it again."""

from __future__ import annotations

import threading

from runtime import DBOS, DBOSWorkflowFencedError, SendMessage, SetWorkflowID
from test_fencing import DirectCall, take_over


def _inbox():
    @DBOS.workflow()
    def fencing_inbox():
        return DBOS.recv("t", timeout_seconds=10)

    with SetWorkflowID("fencing-inbox"):
        return DBOS.start_workflow(fencing_inbox)


def _count(db, sql: str, *params) -> int:
    return db.execute(sql, params).fetchone()[0]


def test_send_bulk_after_takeover_sends_and_records_nothing(dbos, db):
    _inbox()
    reached, release = threading.Event(), threading.Event()

    @DBOS.workflow()
    def bulk_sender():
        reached.set()
        release.wait(10)
        DBOS.send_bulk([SendMessage("fencing-inbox", 1, "t"), SendMessage("fencing-inbox", 2, "t", "key")])
        return "sent"

    call = DirectCall("bulk-sender", bulk_sender)
    assert reached.wait(10)
    take_over(db, "bulk-sender")
    release.set()
    assert isinstance(call.outcome(), DBOSWorkflowFencedError)
    assert _count(db, "SELECT count(*) FROM dbos.notifications") == 0
    assert _count(db, "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'bulk-sender'") == 0


def test_run_step_after_takeover_records_nothing_and_stops(dbos, db):
    reached, release, ran = threading.Event(), threading.Event(), []

    def slow_body():
        reached.set()
        release.wait(10)
        ran.append("slow")
        return 1

    def next_body():
        ran.append("next")
        return 2

    @DBOS.workflow()
    def runs_steps():
        return DBOS.run_step({"name": "slow_body"}, slow_body) + DBOS.run_step(None, next_body)

    call = DirectCall("run-step-fenced", runs_steps)
    assert reached.wait(10)
    take_over(db, "run-step-fenced")
    release.set()
    assert isinstance(call.outcome(), DBOSWorkflowFencedError)
    assert ran == ["slow"]  # the body ran (at least once), nothing after it did
    assert _count(db, "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'run-step-fenced'") == 0


def test_set_event_and_send_from_a_step_after_takeover_write_nothing(dbos, db):
    _inbox()
    reached, release, outcomes = threading.Event(), threading.Event(), []

    @DBOS.step()
    def publishes():
        reached.set()
        release.wait(10)
        for action in (lambda: DBOS.set_event("k", "v"), lambda: DBOS.send("fencing-inbox", "m", "t")):
            try:
                action()
                outcomes.append("written")
            except DBOSWorkflowFencedError:
                outcomes.append("fenced")

    @DBOS.workflow()
    def step_publisher():
        publishes()

    call = DirectCall("step-publisher", step_publisher)
    assert reached.wait(10)
    take_over(db, "step-publisher")
    release.set()
    assert isinstance(call.outcome(), DBOSWorkflowFencedError)
    assert outcomes == ["fenced", "fenced"]  # the second one is refused locally, before any write
    assert _count(db, "SELECT count(*) FROM dbos.workflow_events") == 0
    assert _count(db, "SELECT count(*) FROM dbos.workflow_events_history") == 0
    assert _count(db, "SELECT count(*) FROM dbos.notifications") == 0


def test_set_event_from_a_step_is_published_without_a_row_of_its_own(dbos, db):
    @DBOS.step(name="publishes")
    def publishes():
        DBOS.set_event("progress", 50)
        return DBOS.step_id

    @DBOS.workflow()
    def publisher():
        step_id = publishes()
        return step_id, DBOS.get_all_events(DBOS.workflow_id)

    with SetWorkflowID("step-events"):
        step_id, events = publisher()
    assert events == {"progress": 50}
    assert DBOS.get_event("step-events", "progress") == 50
    assert [s["function_name"] for s in DBOS.list_workflow_steps("step-events")] == ["publishes", "DBOS.get_events"]
    # The history row is at the step's own position, as DBOS writes it.
    assert db.execute("SELECT function_id FROM dbos.workflow_events_history WHERE key = 'progress'").fetchone()[0] == step_id


def test_replays_return_what_was_recorded(dbos, db):
    inbox = _inbox()
    bodies = []

    def body(x):
        bodies.append(x)
        return {"x": x}

    @DBOS.workflow()
    def records():
        DBOS.send_bulk([SendMessage("fencing-inbox", "once", "t")])
        first = DBOS.wait_first([inbox])
        return DBOS.run_step({"name": "body"}, body, 7), first.workflow_id

    with SetWorkflowID("replayed"):
        first = records()
    with SetWorkflowID("replayed"):
        assert records() == first == ({"x": 7}, "fencing-inbox")
    assert bodies == [7]
    assert _count(db, "SELECT count(*) FROM dbos.notifications") == 1
    names = [s["function_name"] for s in DBOS.list_workflow_steps("replayed")]
    assert names == ["DBOS.send_bulk", "DBOS.waitFirst", "body"]


def test_send_to_forks_reaches_the_destination_and_its_forks(dbos, db):
    release = threading.Event()

    @DBOS.step()
    def gate():
        release.wait(10)

    @DBOS.workflow()
    def forked_inbox():
        gate()
        return DBOS.recv("t", timeout_seconds=10)

    with SetWorkflowID("fork-root"):
        root = DBOS.start_workflow(forked_inbox)
    with SetWorkflowID("fork-child"):
        child = DBOS.fork_workflow("fork-root", 1)
    with SetWorkflowID("fork-grandchild"):
        grandchild = DBOS.fork_workflow("fork-child", 1)
    DBOS.send("fork-root", "to all", "t", idempotency_key="fan", send_to_forks=True)
    release.set()
    assert [h.get_result() for h in (root, child, grandchild)] == ["to all"] * 3
    uuids = sorted(r[0] for r in db.execute("SELECT message_uuid FROM dbos.notifications"))
    assert uuids == ["fan::fork-child", "fan::fork-grandchild", "fan::fork-root"]
