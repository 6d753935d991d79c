"""Two process objects in one interpreter: two executors with their own ids and pools, on the
test's database, with no ``DBOS()`` facade around them.

They coexist: each runs the workflows started through it (a step reads its own executor from the
workflow's context), a workflow started by one is awaited by the other, and one that leaves hands
its pending and queued work over to the other, which finishes it. The scenarios are driven by
events that step bodies set and wait on, and bounded waits on conditions, not sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from conftest import wait_until
from runtime import DBOS, Queue
from runtime.config import resolve_config
from runtime.errors import DBOSException
from runtime.process import DBOSProcess
from runtime.registry import registry
from runtime.serialization import deserialize

A, B = "inproc-a", "inproc-b"


@pytest.fixture
def build(sys_url: str) -> Iterator[Callable[[str], DBOSProcess]]:
    """``build(executor_id)``: a process object on the test's database (destroyed afterwards).
    The registry starts empty and no DBOS facade process exists."""
    DBOS.destroy(destroy_registry=True)
    built: list[DBOSProcess] = []

    def make(executor_id: str) -> DBOSProcess:
        config = resolve_config({"name": "inproc", "system_database_url": sys_url, "executor_id": executor_id, "sys_db_pool_size": 6})
        built.append(DBOSProcess(config, registry))
        return built[-1]

    yield make
    for process in built:
        process.destroy()
    DBOS.destroy(destroy_registry=True)


def owners(db, workflow_ids: list[str]) -> dict[str, tuple[str, str]]:
    rows = db.execute(
        "SELECT workflow_uuid, status, executor_id FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)", (workflow_ids,)
    ).fetchall()
    return {workflow_id: (status, executor_id) for workflow_id, status, executor_id in rows}


def test_each_executor_runs_its_own_workflows_and_awaits_the_others(build, db):
    @DBOS.step()
    def where() -> str:
        return DBOS.executor_id  # the executor that runs the calling workflow, from its context

    @DBOS.workflow(name="inproc_child")
    def child() -> str:
        return where()

    @DBOS.workflow(name="inproc_job")
    def job() -> list[str]:
        return [where(), child()]

    @DBOS.workflow(name="inproc_awaiter")
    def awaiter(workflow_id: str) -> list[str]:
        return DBOS.retrieve_workflow(workflow_id).get_result()  # a checkpointed wait, in its own executor

    a, b = build(A), build(B)
    a.launch()
    b.launch()
    on_a, on_b = a.start_workflow(job), b.start_workflow(job)
    # Awaited by the other: B has no local run of A's workflow, so it reads the outcome's row.
    assert b.retrieve_workflow(on_a.workflow_id).get_result(timeout_seconds=30) == [A, A]
    assert a.retrieve_workflow(on_b.workflow_id).get_result(timeout_seconds=30) == [B, B]
    assert b.start_workflow(awaiter, on_a.workflow_id).get_result(timeout_seconds=30) == [A, A]

    children = [f"{on_a.workflow_id}-2", f"{on_b.workflow_id}-2"]
    assert owners(db, [on_a.workflow_id, on_b.workflow_id, *children]) == {
        on_a.workflow_id: ("SUCCESS", A),
        children[0]: ("SUCCESS", A),
        on_b.workflow_id: ("SUCCESS", B),
        children[1]: ("SUCCESS", B),
    }
    # Neither is the facade's: outside a workflow, DBOS has nothing to act on.
    with pytest.raises(DBOSException, match="before DBOS was launched"):
        DBOS.start_workflow(job)


def test_a_leaving_executor_hands_its_pending_and_queued_work_to_the_other(build, db):
    # A's step bodies wait for A's event (set once the hand-over happened); B's run through.
    release = {A: threading.Event(), B: threading.Event()}
    release[B].set()
    entered: list[tuple[str, str]] = []

    @DBOS.step()
    def hold(tag: str) -> str:
        executor_id = DBOS.executor_id
        entered.append((tag, executor_id))
        assert release[executor_id].wait(30)
        return executor_id

    @DBOS.workflow(name="inproc_handover")
    def handover(tag: str) -> str:
        return hold(tag)

    queue = Queue("inproc-q", polling_interval_sec=0.1)
    a = build(A)
    a.launch()
    direct = a.start_workflow(handover, "direct")
    queued = a.enqueue(queue, handover, "queued")
    wait_until(lambda: {("direct", A), ("queued", A)} <= set(entered), "both bodies to start in A")
    b = build(B)
    b.launch()  # registered: a live member that can run handover
    assert b.services is not None and b.services.listener is not None
    # Hear A's hand-over NOTIFY (else B finds its assignment only at the 15 s backstop poll).
    assert b.services.listener.connected.wait(10), "B's LISTEN connection"

    leaving = threading.Thread(target=a.destroy, name="inproc-a-destroy", daemon=True)
    leaving.start()  # stops taking work, abandons both runs, hands them over, waits for its threads
    try:
        moved = wait_until(
            lambda: db.execute(
                "SELECT workflow_uuid, to_executor_id, requeued_to FROM dbos.pgfleet_takeovers WHERE from_executor_id = %s ORDER BY 1",
                (A,),
            ).fetchall(),
            "A's hand-over",
        )
        assert sorted(moved) == sorted([(direct.workflow_id, B, None), (queued.workflow_id, None, "inproc-q")])
    finally:
        release[A].set()  # A's bodies return; their checkpoints are refused (A abandoned them)

    assert b.retrieve_workflow(direct.workflow_id).get_result(timeout_seconds=30) == B
    assert b.retrieve_workflow(queued.workflow_id).get_result(timeout_seconds=30) == B
    leaving.join(30)
    assert not leaving.is_alive() and not a.launched
    assert owners(db, [direct.workflow_id, queued.workflow_id]) == {
        direct.workflow_id: ("SUCCESS", B),
        queued.workflow_id: ("SUCCESS", B),
    }
    # Only B's executions recorded the step: A's were fenced when they returned.
    steps = db.execute(
        "SELECT workflow_uuid, output, serialization FROM dbos.operation_outputs WHERE workflow_uuid = ANY(%s)",
        ([direct.workflow_id, queued.workflow_id],),
    ).fetchall()
    assert sorted((w, deserialize(out, fmt)) for w, out, fmt in steps) == sorted([(direct.workflow_id, B), (queued.workflow_id, B)])
    assert db.execute("SELECT status FROM dbos.pgfleet_executors WHERE executor_id = %s", (A,)).fetchone()[0] == "dead"


def test_a_step_enqueued_as_a_workflow_keeps_its_queue_limit_and_moves_when_its_executor_leaves(build, db):
    """A step put on a queue runs as the one-step workflow ``<temp>.<step>`` (as in DBOS): any
    executor that imports the step can claim it, the queue's concurrency holds across both, and
    the hand-over of a leaving executor moves it like any workflow."""
    release = {A: threading.Event(), B: threading.Event()}
    release[B].set()
    entered: list[tuple[str, str]] = []

    @DBOS.step(name="inproc_hold_step")
    def hold(tag: str) -> str:
        executor_id = DBOS.executor_id
        entered.append((tag, executor_id))
        assert release[executor_id].wait(30)
        return executor_id

    queue = Queue("inproc-step-q", concurrency=1, polling_interval_sec=0.1)
    a = build(A)
    a.launch()
    first, second = a.enqueue(queue, hold, "first"), a.enqueue(queue, hold, "second")
    wait_until(lambda: entered, "a queued step to start in A")
    b = build(B)
    b.launch()  # a live member that serves the queue and has <temp>.inproc_hold_step
    assert b.services is not None and b.services.listener is not None
    assert b.services.listener.connected.wait(10), "B's LISTEN connection"
    threading.Event().wait(1.0)  # B polls the queue meanwhile: concurrency 1 keeps the second waiting
    assert len(entered) == 1 and entered[0][1] == A

    leaving = threading.Thread(target=a.destroy, name="inproc-a-destroy", daemon=True)
    leaving.start()
    try:
        assert first.get_workflow_id() != second.get_workflow_id()
        for handle in (first, second):
            assert b.retrieve_workflow(handle.workflow_id).get_result(timeout_seconds=30) == B
    finally:
        release[A].set()
    leaving.join(30)
    ids = [first.workflow_id, second.workflow_id]
    assert owners(db, ids) == {first.workflow_id: ("SUCCESS", B), second.workflow_id: ("SUCCESS", B)}
    names = db.execute("SELECT DISTINCT name, queue_name FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)", (ids,)).fetchall()
    assert names == [("<temp>.inproc_hold_step", "inproc-step-q")]
    steps = db.execute(
        "SELECT function_id, function_name FROM dbos.operation_outputs WHERE workflow_uuid = ANY(%s)", (ids,)
    ).fetchall()
    assert steps == [(1, "inproc_hold_step"), (1, "inproc_hold_step")]  # only B's runs recorded
