"""The debouncer across the fleet: executors debouncing one key start the target once; a bounce
inside a workflow is fenced like every other write; the debounce deadline caps the delay.

Driven by barriers and events between step bodies and bounded waits on conditions, not sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

from conftest import wait_until
from runtime import DBOS, DBOSClient, DBOSWorkflowFencedError, Debouncer, DebouncerClient, SetWorkflowID
from runtime.config import resolve_config
from runtime.process import DBOSProcess
from runtime.registry import registry
from runtime.serialization import deserialize_args


@pytest.fixture
def build(sys_url: str) -> Iterator[Callable[[str], DBOSProcess]]:
    """``build(executor_id)``: a process object on the test's database (destroyed afterwards)."""
    DBOS.destroy(destroy_registry=True)
    built: list[DBOSProcess] = []

    def make(executor_id: str) -> DBOSProcess:
        config = resolve_config({"name": "debounce", "system_database_url": sys_url, "executor_id": executor_id, "sys_db_pool_size": 6})
        built.append(DBOSProcess(config, registry))
        return built[-1]

    yield make
    for process in built:
        process.destroy()
    DBOS.destroy(destroy_registry=True)


def target_rows(db, name: str) -> list[tuple]:
    return db.execute(
        "SELECT workflow_uuid, status, deduplication_id, is_debounced FROM dbos.workflow_status WHERE name = %s", (name,)
    ).fetchall()


def test_two_executors_debouncing_one_key_start_the_target_once(build, db):
    """Each executor runs a workflow that debounces the shared key 15 times, both released by one
    barrier: every debounce names the same workflow, which runs once, with one of the two
    executors' last arguments; its key is released once it left DELAYED."""
    barrier = threading.Barrier(2, timeout=30)

    @DBOS.workflow(name="debounce_target")
    def target(value: str) -> str:
        return value

    @DBOS.workflow(name="debounce_many")
    def debounce_many(tag: str) -> list[str]:
        barrier.wait()
        debouncer = Debouncer.create(target)
        return [debouncer.debounce("shared", 5, f"{tag}-{i}").workflow_id for i in range(15)]

    a, b = build("debounce-a"), build("debounce-b")
    a.launch()
    b.launch()
    on_a, on_b = a.start_workflow(debounce_many, "a"), b.start_workflow(debounce_many, "b")
    ids = set(on_a.get_result(timeout_seconds=60)) | set(on_b.get_result(timeout_seconds=60))
    assert len(ids) == 1
    (target_id,) = ids
    result = a.retrieve_workflow(target_id).get_result(timeout_seconds=60)
    assert result in ("a-14", "b-14")
    rows = target_rows(db, "debounce_target")
    assert rows == [(target_id, "SUCCESS", None, True)]  # the key was released
    # Each debounce records its bounce; exactly one enqueue created the target (a racer's lost
    # enqueue is recorded as its DBOSQueueDeduplicatedError, so that a replay loses the same way).
    steps = db.execute(
        "SELECT function_name, error IS NULL, child_workflow_id FROM dbos.operation_outputs WHERE workflow_uuid = ANY(%s)",
        ([on_a.workflow_id, on_b.workflow_id],),
    ).fetchall()
    assert sum(1 for name, _, _ in steps if name == "DBOS.debounce_delayed_workflow") >= 30
    assert [child for name, ok, child in steps if name == "debounce_target" and ok] == [target_id]


def test_a_client_and_an_executor_racing_on_a_key_start_one_workflow(dbos, sys_url, db):
    @DBOS.workflow(name="debounce_client_target")
    def target(value: str) -> str:
        return value

    client = DBOSClient(system_database_url=sys_url)
    try:
        remote = DebouncerClient(client, {"workflow_name": "debounce_client_target", "queue_name": "_dbos_internal_queue"})
        local = Debouncer.create(target)
        barrier = threading.Barrier(2, timeout=30)
        found: dict[str, set[str]] = {}

        def burst(label: str, debounce: Callable[[int], str]) -> None:
            barrier.wait()
            found[label] = {debounce(i) for i in range(15)}

        threads = [
            threading.Thread(target=burst, args=("client", lambda i: remote.debounce("k", 5, f"c{i}").workflow_id)),
            threading.Thread(target=burst, args=("local", lambda i: local.debounce("k", 5, f"l{i}").workflow_id)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert found["client"] == found["local"] and len(found["client"]) == 1
        (target_id,) = found["client"]
        assert DBOS.retrieve_workflow(target_id).get_result(timeout_seconds=60) in ("c14", "l14")
        assert [row[1] for row in target_rows(db, "debounce_client_target")] == ["SUCCESS"]
    finally:
        client.destroy()


def test_a_bounce_from_a_workflow_that_lost_ownership_writes_nothing(dbos, db):
    """The workflow debounces once, loses its row to a takeover, then debounces again: the
    second bounce is refused (fenced) and neither the target's inputs nor the step are written."""
    go = threading.Event()
    seen: dict[str, str] = {}

    @DBOS.workflow(name="fenced_target")
    def target(value: str) -> str:
        return value

    @DBOS.workflow(name="fenced_debouncer")
    def debouncer_workflow() -> None:
        debouncer = Debouncer.create(target)
        seen["first"] = debouncer.debounce("key", 600, "first").workflow_id
        go.wait(30)
        try:
            debouncer.debounce("key", 600, "second")
        except BaseException as exc:
            seen["second"] = type(exc).__name__
            raise

    with SetWorkflowID("fenced-debouncer"):
        DBOS.start_workflow(debouncer_workflow)
    wait_until(lambda: "first" in seen, "the first debounce")
    db.execute(
        "UPDATE dbos.workflow_status SET executor_id = 'someone-else', owner_epoch = nextval('dbos.pgfleet_epoch_seq') "
        "WHERE workflow_uuid = 'fenced-debouncer'"
    )
    go.set()
    wait_until(lambda: "second" in seen, "the second debounce")
    assert seen["second"] == DBOSWorkflowFencedError.__name__
    inputs = db.execute("SELECT inputs FROM dbos.workflow_status WHERE workflow_uuid = %s", (seen["first"],)).fetchone()[0]
    assert deserialize_args(inputs)[0] == ("first",)
    steps = db.execute(
        "SELECT function_id, function_name FROM dbos.operation_outputs WHERE workflow_uuid = 'fenced-debouncer' ORDER BY 1"
    ).fetchall()
    assert steps == [(1, "DBOS.debounce_delayed_workflow"), (2, "fenced_target")]


def test_the_debounce_timeout_caps_the_delay(dbos, db):
    """Debounced with a 600 s period but a 2 s timeout, the workflow starts anyway: no bounce
    pushes its wake-up time past the deadline, which counts from the first debounce."""

    @DBOS.workflow(name="capped_target")
    def target(value: int) -> int:
        return value

    debouncer = Debouncer.create(target, debounce_timeout_sec=2)
    first = debouncer.debounce("capped", 600, 0)
    for value in range(1, 6):
        assert debouncer.debounce("capped", 600, value).workflow_id == first.workflow_id
    wake, deadline = db.execute(
        "SELECT delay_until_epoch_ms, debounce_deadline_epoch_ms FROM dbos.workflow_status WHERE workflow_uuid = %s",
        (first.workflow_id,),
    ).fetchone()
    assert wake == deadline
    assert first.get_result(timeout_seconds=30) == 5


def test_a_replayed_workflow_does_not_debounce_again(dbos, db):
    """A fork that starts after a workflow's debounces replays them from its steps: it names the
    same debounced workflow and neither pushes it back nor changes its inputs."""

    @DBOS.workflow(name="replayed_target")
    def target(value: str) -> str:
        return value

    @DBOS.workflow(name="replayed_debouncer")
    def debounce_twice() -> list[str]:
        debouncer = Debouncer.create(target)
        return [debouncer.debounce("replayed", 600, "one").workflow_id, debouncer.debounce("replayed", 600, "two").workflow_id]

    with SetWorkflowID("replay-original"):
        first, second = debounce_twice()
    assert first == second
    before = db.execute(
        "SELECT delay_until_epoch_ms, inputs, updated_at FROM dbos.workflow_status WHERE workflow_uuid = %s", (first,)
    ).fetchone()
    steps = db.execute(
        "SELECT function_id, function_name FROM dbos.operation_outputs WHERE workflow_uuid = 'replay-original' ORDER BY 1"
    ).fetchall()
    assert steps == [(1, "DBOS.debounce_delayed_workflow"), (2, "replayed_target"), (3, "DBOS.debounce_delayed_workflow")]
    forked = DBOS.fork_workflow("replay-original", 4)
    assert forked.get_result(timeout_seconds=30) == [first, first]
    after = db.execute(
        "SELECT delay_until_epoch_ms, inputs, updated_at FROM dbos.workflow_status WHERE workflow_uuid = %s", (first,)
    ).fetchone()
    assert after == before
    assert deserialize_args(after[1])[0] == ("two",)


def test_debounce_async_from_asyncio_code_starts_the_target_once(dbos, sys_url, db):
    """``debounce_async`` on a Debouncer and a DebouncerClient, from one loop: one target
    workflow per key, with the last arguments, its handle awaited on the loop."""

    @DBOS.workflow(name="debounce_async_target")
    async def target(value: str) -> str:
        return value

    client = DBOSClient(system_database_url=sys_url)
    try:
        local = Debouncer.create(target)
        remote = DebouncerClient(client, {"workflow_name": "debounce_async_target", "queue_name": "_dbos_internal_queue"})

        async def burst() -> tuple[set[str], str]:
            handles = [await local.debounce_async("ka", 0.2, f"l{i}") for i in range(3)]
            handles.append(await remote.debounce_async("ka", 0.2, "c3"))
            return {h.get_workflow_id() for h in handles}, await handles[-1].get_result()

        ids, result = asyncio.run(burst())
        assert len(ids) == 1
        assert result == "c3"
        assert [row[1] for row in target_rows(db, "debounce_async_target")] == ["SUCCESS"]
    finally:
        client.destroy()
