"""What may run inside what, as DBOS 2.30 rules it (tests/differential/programs/nesting.py
compares the rest with DBOS itself):

- a step or a transaction starts, calls or enqueues no workflow. A child started there took a
  position inside an operation whose replay skips its body, so on recovery every later
  position shifted (the next step found the child's row: DBOSUnexpectedStepError), and a start
  from a transaction did not roll back with it. pgfleet raises DBOSException naming the
  workflow and where; DBOS fails a bare assert;
- DBOS.sleep of a positive time runs only in a workflow's own body: DBOSException outside a
  workflow, AssertionError (DBOS's class and words) in a step or transaction; a sleep of zero
  or less returns at once and takes no position.
"""

from __future__ import annotations

import asyncio

import pytest

from runtime import DBOS, DBOSException, Queue, SetWorkflowID


def _rows(db, workflow_id: str) -> dict[str, list[tuple]]:
    return {
        "children": db.execute(
            "SELECT name FROM dbos.workflow_status WHERE parent_workflow_id = %s", (workflow_id,)
        ).fetchall(),
        "steps": db.execute(
            "SELECT function_id, function_name, error IS NOT NULL FROM dbos.operation_outputs"
            " WHERE workflow_uuid = %s ORDER BY function_id", (workflow_id,)
        ).fetchall(),
    }


def test_steps_and_transactions_start_no_workflow(dbos, db):
    queue = Queue("nesting-rules")

    @DBOS.workflow()
    def nested_child() -> str:
        return "child ran"

    @DBOS.step()
    def calls_from_step() -> str:
        return nested_child()

    @DBOS.step()
    def enqueues_from_step() -> str:
        return queue.enqueue(nested_child).get_result()

    @DBOS.transaction()
    def calls_from_transaction() -> str:
        return nested_child()

    @DBOS.transaction()
    def starts_from_transaction() -> str:
        return DBOS.start_workflow(nested_child).get_result()

    @DBOS.workflow()
    def nesting_parent() -> list[str]:
        seen = []
        for body in (calls_from_step, enqueues_from_step, calls_from_transaction, starts_from_transaction):
            try:
                body()
            except DBOSException as exc:
                seen.append(str(exc))
        return seen

    with SetWorkflowID("nesting-rules-parent"):
        assert nesting_parent() == [
            "DBOS Error: cannot call workflow 'test_steps_and_transactions_start_no_workflow.<locals>.nested_child' from inside a step",
            "DBOS Error: cannot enqueue workflow 'test_steps_and_transactions_start_no_workflow.<locals>.nested_child' from inside a step",
            "DBOS Error: cannot call workflow 'test_steps_and_transactions_start_no_workflow.<locals>.nested_child' from inside a transaction",
            "DBOS Error: cannot start workflow 'test_steps_and_transactions_start_no_workflow.<locals>.nested_child' from inside a transaction",
        ]
    rows = _rows(db, "nesting-rules-parent")
    assert rows["children"] == []  # nothing was started: no position was taken inside the operations
    # Each operation is recorded as failed, at consecutive positions, so a replay lines up.
    assert [(fid, name.split(".")[-1], failed) for fid, name, failed in rows["steps"]] == [
        (1, "calls_from_step", True), (2, "enqueues_from_step", True),
        (3, "calls_from_transaction", True), (4, "starts_from_transaction", True),
    ]


def test_an_async_step_awaits_no_workflow(dbos, db):
    @DBOS.workflow()
    async def async_child() -> str:
        return "child ran"

    @DBOS.step()
    async def awaits_from_step() -> str:
        return await async_child()

    @DBOS.workflow()
    async def async_parent() -> str:
        try:
            return await awaits_from_step()
        except DBOSException as exc:
            return str(exc)

    with SetWorkflowID("nesting-rules-async"):
        message = asyncio.run(async_parent())
    assert message.endswith("async_child' from inside a step")
    assert _rows(db, "nesting-rules-async")["children"] == []


def test_sleep_runs_only_in_a_workflow_body(dbos, db):
    @DBOS.step()
    def sleeps_in_step() -> None:
        DBOS.sleep(0.01)

    @DBOS.step()
    def plain_step() -> str:
        return "step"

    @DBOS.workflow()
    def sleeper() -> str:
        DBOS.sleep(0)  # no position taken: the step below is at 1
        DBOS.sleep(-1)
        try:
            sleeps_in_step()
        except AssertionError as exc:
            return f"{exc}; then {plain_step()}"
        return "slept in a step"

    with pytest.raises(DBOSException, match=r"sleep\(\) must be called from within a workflow"):
        DBOS.sleep(0.01)
    with pytest.raises(DBOSException, match=r"sleep\(\) must be called from within a workflow"):
        asyncio.run(DBOS.sleep_async(0.01))
    DBOS.sleep(0)  # nothing to wait for: fine anywhere, as in DBOS
    with SetWorkflowID("nesting-rules-sleep"):
        assert sleeper() == "sleep() must be called from within a workflow; then step"
    steps = [(fid, name.split(".")[-1], failed) for fid, name, failed in _rows(db, "nesting-rules-sleep")["steps"]]
    assert steps == [(1, "sleeps_in_step", True), (2, "plain_step", False)]
