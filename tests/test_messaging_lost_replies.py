"""Lost replies on the messaging family's new writes: a send_bulk, and a send or set_event from
inside a step, whose COMMIT succeeded but whose reply was lost are retried and land once."""

from __future__ import annotations

from runtime import DBOS, SendMessage, SetWorkflowID
from test_lost_replies import BOUND_SEC, count, fleet, proxy, status_of, steps_of, within  # noqa: F401 - fixtures


def _inbox(n: int):
    @DBOS.workflow()
    def lost_inbox():
        return [DBOS.recv("t", timeout_seconds=BOUND_SEC) for _ in range(n)]

    with SetWorkflowID("inbox"):
        return DBOS.start_workflow(lost_inbox)


def test_send_bulk_whose_reply_was_lost_sends_each_once(fleet, proxy, db):  # noqa: F811 - fixtures
    handle = _inbox(2)

    @DBOS.workflow()
    def bulk_sender():
        DBOS.send_bulk([SendMessage("inbox", "one", "t"), SendMessage("inbox", "two", "t", "key")])
        return "sent"

    def start() -> str:
        with SetWorkflowID("bulk-sender"):
            return bulk_sender()

    rule = proxy.drop_reply("-- Send a message to a workflow")
    assert within(start, "a sender whose send_bulk reply was lost") == "sent"
    assert rule.fired.is_set()
    assert within(lambda: handle.get_result(), "the receiver") == ["one", "two"]
    assert steps_of(db, "bulk-sender") == ["DBOS.send_bulk"]
    assert count(db, "SELECT count(*) FROM dbos.notifications WHERE destination_uuid = 'inbox'") == 2


def test_send_and_set_event_from_a_step_whose_replies_were_lost_land_once(fleet, proxy, db):  # noqa: F811 - fixtures
    handle = _inbox(2)

    @DBOS.step()
    def publishes():
        DBOS.send("inbox", "from a step", "t")
        DBOS.set_event("state", "ready")
        return "published"

    @DBOS.workflow()
    def step_publisher():
        return publishes()

    def start() -> str:
        with SetWorkflowID("step-publisher"):
            return step_publisher()

    send_rule = proxy.drop_reply("-- Send a message to a workflow")
    event_rule = proxy.drop_reply("-- Publish a workflow's event")
    assert within(start, "a step whose send and set_event replies were lost") == "published"
    assert send_rule.fired.is_set() and event_rule.fired.is_set()
    assert status_of(db, "step-publisher") == "SUCCESS"
    assert DBOS.get_event("step-publisher", "state", timeout_seconds=1) == "ready"
    DBOS.send("inbox", "after", "t")
    assert within(lambda: handle.get_result(), "the receiver") == ["from a step", "after"]
    assert count(db, "SELECT count(*) FROM dbos.notifications WHERE destination_uuid = 'inbox'") == 2
