"""The messaging family's calls where DBOS limits them: inside a transaction, with bad options,
and the shape of ``DBOS.step_status``."""

from __future__ import annotations

import pytest

from conftest import wait_until
from runtime import DBOS, DBOSException, SendMessage, SetWorkflowID, SetWorkflowTimeout


def test_inside_a_transaction_as_dbos_allows_and_refuses(dbos, db):
    @DBOS.workflow(name="tx_target")
    def tx_target():
        return DBOS.recv("t", timeout_seconds=10)

    with SetWorkflowID("tx-target"):
        target = DBOS.start_workflow(tx_target)

    @DBOS.transaction()
    def inside():
        out = {"step_status": DBOS.step_status}
        DBOS.send("tx-target", "from a transaction", "t")  # a plain send, as in DBOS
        for label, call in (
            ("get_all_events", lambda: DBOS.get_all_events("tx-target")),
            ("wait_first", lambda: DBOS.wait_first([target])),
            ("set_event", lambda: DBOS.set_event("k", 1)),
        ):
            try:
                call()
            except Exception as exc:
                out[label] = f"{type(exc).__name__}: {exc}"
        return out

    @DBOS.workflow()
    def runs_transaction():
        return inside()

    with SetWorkflowID("tx-caller"):
        out = runs_transaction()
    assert out == {
        "step_status": None,
        "get_all_events": "Exception: Invalid call to `DBOS.get_events` inside a transaction",
        "wait_first": "Exception: Invalid call to `DBOS.waitFirst` inside a transaction",
        "set_event": "DBOSException: DBOS Error: set_event() must be called from within a workflow or step",
    }
    assert target.get_result(timeout_seconds=10) == "from a transaction"
    # The send inside the transaction recorded no step of its own.
    assert [s["function_name"] for s in DBOS.list_workflow_steps("tx-caller")] == [inside.__qualname__]


def test_bad_options_fail_before_anything_is_sent(dbos, db):
    with pytest.raises(DBOSException, match="unknown StepOptions key"):
        DBOS.run_step({"max_attempt": 3}, print)  # type: ignore[typeddict-unknown-key]
    with pytest.raises(DBOSException, match="serialization_type must be"):
        DBOS.send("anyone", 1, serialization_type="yaml")
    with pytest.raises(DBOSException, match="send_bulk takes SendMessage objects"):
        DBOS.send_bulk([("anyone", 1)])  # type: ignore[list-item]
    with pytest.raises(DBOSException, match="Preemption is only supported for async steps"):
        DBOS.run_step({"preemptible": True}, print)
    assert db.execute("SELECT count(*) FROM dbos.notifications").fetchone()[0] == 0


def test_send_bulk_in_portable_json(dbos, db):
    @DBOS.workflow(name="json_inbox")
    def json_inbox():
        return [DBOS.recv(timeout_seconds=10), DBOS.recv(timeout_seconds=10)]

    with SetWorkflowID("json-inbox"):
        handle = DBOS.start_workflow(json_inbox)
    DBOS.send_bulk([SendMessage("json-inbox", {"a": [1, 2]}), SendMessage("json-inbox", "b")], serialization_type="portable")
    assert handle.get_result(timeout_seconds=10) == [{"a": [1, 2]}, "b"]
    rows = db.execute("SELECT message, serialization FROM dbos.notifications ORDER BY ctid").fetchall()
    assert rows == [('{"a":[1,2]}', "portable_json"), ('"b"', "portable_json")]


def test_wait_first_in_a_workflow_stops_at_its_deadline(dbos, db):
    @DBOS.workflow(name="never_done")
    def never_done():
        return DBOS.recv("nothing", timeout_seconds=120)

    @DBOS.workflow(name="waits_forever")
    def waits_forever(handle_id):
        return DBOS.wait_first([DBOS.retrieve_workflow(handle_id)], polling_interval_sec=0.05).workflow_id

    with SetWorkflowID("never-done"):
        DBOS.start_workflow(never_done)
    with SetWorkflowID("waiter"), SetWorkflowTimeout(0.5):
        handle = DBOS.start_workflow(waits_forever, "never-done")
    with pytest.raises(Exception, match="cancelled"):
        handle.get_result(timeout_seconds=10)
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'waiter'").fetchone()[0] == "CANCELLED"
    # The waiting thread itself stopped (it checks its deadline at every poll), not only its row.
    executor = DBOS._process().executor
    wait_until(lambda: executor.local_generation("waiter") is None, "the waiting execution to stop", timeout=15)
    assert "DBOS.waitFirst" not in [s["function_name"] for s in DBOS.list_workflow_steps("waiter")]
