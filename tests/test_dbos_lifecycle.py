"""DBOS's lifecycle, steps run as workflows, and replays that meet another operation (#10
items 3, 7 and 9), checked in one interpreter."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import wait_until
from runtime import DBOS, DBOSException, DBOSUnexpectedStepError, Queue, SetWorkflowID


def test_handles_and_calls_after_destroy_raise_dbos_error_and_a_new_launch_works(sys_url):
    DBOS.destroy(destroy_registry=True)
    config = {"name": "lifecycle", "system_database_url": sys_url}

    @DBOS.workflow()
    def greet(name: str) -> str:
        return f"hi {name}"

    try:
        DBOS(config=config)
        DBOS.launch()
        handle = DBOS.start_workflow(greet, "one")
        assert handle.get_result() == "hi one"
        DBOS.destroy()
        for call in (handle.get_result, handle.get_status, lambda: DBOS.start_workflow(greet, "x"), lambda: greet("x")):
            with pytest.raises(DBOSException, match="System database accessed before DBOS was launched") as raised:
                call()
            assert type(raised.value) is DBOSException
        DBOS(config=config)
        DBOS.launch()
        assert DBOS.launch() is None
        assert DBOS.retrieve_workflow(handle.workflow_id).get_result() == "hi one"

        @DBOS.workflow()
        def late(x: int) -> int:
            return x + 1

        assert late(1) == 2
        DBOS.destroy()
        DBOS.destroy()
    finally:
        DBOS.destroy(destroy_registry=True)


def test_steps_and_transactions_start_and_enqueue_as_one_step_workflows(dbos, db):
    @DBOS.step(name="custom_square")
    def square(x: int) -> int:
        return x * x

    @DBOS.transaction(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    queue = Queue("steps-as-workflows-q", polling_interval_sec=0.1)
    with SetWorkflowID("sq"):
        assert DBOS.start_workflow(square, 7).get_result() == 49
    with SetWorkflowID("tx"):
        assert queue.enqueue(add, 2, 3).get_result() == 5
    rows = db.execute("SELECT workflow_uuid, name, status, queue_name FROM dbos.workflow_status ORDER BY 1").fetchall()
    assert rows == [("sq", "<temp>.custom_square", "SUCCESS", None), ("tx", "<temp>.add", "SUCCESS", "steps-as-workflows-q")]
    assert [[s["function_id"], s["function_name"]] for s in DBOS.list_workflow_steps("sq")] == [[1, "custom_square"]]
    assert [[s["function_id"], s["function_name"]] for s in DBOS.list_workflow_steps("tx")] == [[1, "add"]]
    assert square(3) == 9  # still a plain call outside a workflow


def test_a_scheduled_step_runs_as_a_workflow(dbos, db):
    ticks: list[object] = []

    @DBOS.scheduled("* * * * * *")
    @DBOS.step(name="every_second")
    def every_second(scheduled_at, actual_at) -> None:
        ticks.append(scheduled_at)

    wait_until(lambda: ticks, "a tick of the scheduled step", timeout=20)
    wait_until(
        lambda: db.execute("SELECT 1 FROM dbos.workflow_status WHERE name = '<temp>.every_second' AND status = 'SUCCESS'").fetchone(),
        "the tick's workflow row",
    )


def test_a_replayed_direct_child_call_at_another_operations_position_raises_and_starts_nothing(dbos, db):
    mode = {"recv": True}

    @DBOS.workflow(name="kid")
    def kid() -> str:
        return "kid"

    @DBOS.workflow()
    def parent() -> None:
        if mode["recv"]:
            DBOS.recv("x", timeout_seconds=1)  # records DBOS.sleep at 2 at once, DBOS.recv at 1 later
        else:
            kid()  # the child at 1, its DBOS.getResult at 2: where DBOS.sleep was recorded
        DBOS.sleep(30)

    with SetWorkflowID("nd-child"):
        DBOS.start_workflow(parent)
    wait_until(lambda: DBOS.list_workflow_steps("nd-child"), "the recv's sleep step")
    DBOS.cancel_workflow("nd-child")
    mode["recv"] = False
    # A hang would end in get_result's TimeoutError, which is not the error expected here.
    with pytest.raises(DBOSUnexpectedStepError, match="DBOS.getResult"):
        DBOS.resume_workflow("nd-child").get_result(timeout_seconds=30)
    assert DBOS.get_workflow_status("nd-child").status == "ERROR"
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE name LIKE '%kid'").fetchone()[0] == 0


def test_two_functions_starting_one_id_at_once_settle_promptly(dbos):
    @DBOS.workflow()
    def slow(x: int) -> str:
        time.sleep(0.3)
        return "slow"

    @DBOS.workflow()
    def fast(x: int) -> str:
        return "fast"

    results: dict[str, str] = {}

    def start(fn, label: str) -> None:
        with SetWorkflowID("contested"):
            try:
                results[label] = DBOS.start_workflow(fn, 1).get_result(timeout_seconds=30)
            except Exception as exc:
                results[label] = type(exc).__name__

    threads = [threading.Thread(target=start, args=(fn, fn.__name__)) for fn in (slow, fast)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a start of the contested id hung"
    assert sorted(results.values()) in (["DBOSConflictingWorkflowError", "slow"], ["DBOSConflictingWorkflowError", "fast"])


def test_a_result_waiter_cut_by_destroy_stops_instead_of_reading_a_closed_database(sys_url):
    """A caller waiting on a workflow whose body outlives ``DBOS.destroy()`` (its step blocked
    past the destroy's join) stops with the shutdown when the body ends, instead of reading the
    closed pool (psycopg_pool.PoolClosed, before)."""
    from runtime.operations import ExecutorShutdown

    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "destroy-waiter", "system_database_url": sys_url})
    DBOS.launch()
    started, release = threading.Event(), threading.Event()

    @DBOS.step()
    def blocked() -> int:
        started.set()
        release.wait(60)
        return 1

    @DBOS.workflow()
    def wf() -> int:
        return blocked()

    handle = DBOS.start_workflow(wf)
    assert started.wait(30)
    outcome: list[BaseException] = []

    def wait_for_it() -> None:
        try:
            handle.get_result()
        except BaseException as exc:  # noqa: B036 - the shutdown is a BaseException on purpose
            outcome.append(exc)

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    try:
        DBOS.destroy(destroy_registry=True)  # its pool is closed once this returns
    finally:
        release.set()
    waiter.join(30)
    assert not waiter.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ExecutorShutdown), outcome
