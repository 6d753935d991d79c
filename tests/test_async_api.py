"""The one-shot ``_async`` twins and DBOS's ``check_async`` refusal, where the differential
program (``differential/programs/async_api.py``) cannot look: the order of positions when the
first of two gathered twins finishes last, ``patch_async`` gathered with other twins (DBOS
raises there; pgfleet is deterministic), a fenced async workflow's twins, queue limits for
async workflows enqueued from asyncio code, and a client's queue settings from asyncio code."""

from __future__ import annotations

import asyncio
import logging
import threading

import psycopg
import pytest

from conftest import wait_until
from runtime import DBOS, DBOSClient, DBOSException, DBOSWorkflowFencedError, Queue, SetWorkflowID
from runtime.config import resolve_config
from runtime.current import NOT_LAUNCHED
from runtime.process import DBOSProcess
from runtime.registry import registry
from test_fencing import DirectCall, take_over


@pytest.fixture
def patching(sys_url):
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor", "enable_patching": True})
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


@pytest.fixture
def two_threads(sys_url):
    """A launched DBOS whose system-database pool (and so its async worker threads) is two."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor", "sys_db_pool_size": 2})
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


def _steps(db, workflow_id: str) -> list[tuple[int, str]]:
    rows = db.execute(
        "SELECT function_id, function_name FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY function_id",
        (workflow_id,),
    ).fetchall()
    return [(fid, name.rsplit(".", 1)[-1] if not name.startswith("DBOS.") else name) for fid, name in rows]


def _inbox(workflow_id: str, count: int = 1):
    @DBOS.workflow()
    def twins_inbox(n: int) -> list:
        return [DBOS.recv("t", timeout_seconds=10) for _ in range(n)]

    with SetWorkflowID(workflow_id):
        return DBOS.start_workflow(twins_inbox, count)


def test_gathered_twins_take_positions_in_call_order_though_they_wait_for_a_thread(two_threads, db, sys_url):
    """Both worker threads wait for a row lock: the third twin waits for a thread, and an async
    step gathered after it starts at once. Positions still follow the call order."""
    inbox = _inbox("gather-inbox")

    @DBOS.workflow()
    def locked_target() -> str:
        return "done"

    for target in ("locked-a", "locked-b"):
        with SetWorkflowID(target):
            locked_target()

    @DBOS.step()
    async def on_the_loop() -> str:  # an async step takes its position when its task starts
        return "step"

    @DBOS.workflow()
    async def gathering() -> list:
        return await asyncio.gather(
            DBOS.update_workflow_attributes_async("locked-a", {"tier": "gold"}),  # both wait for a row lock
            DBOS.update_workflow_attributes_async("locked-b", {"tier": "silver"}),
            DBOS.send_async("gather-inbox", "hello", "t"),  # waits for a free thread
            on_the_loop(),
        )

    def waiting_for_the_lock() -> bool:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return db.execute(query).fetchone()[0] == 2

    with psycopg.connect(sys_url) as holder:  # holds the targets' rows until released
        holder.execute("SELECT 1 FROM dbos.workflow_status WHERE workflow_uuid IN ('locked-a', 'locked-b') FOR UPDATE")
        with SetWorkflowID("gathering-1"):
            handle = DBOS.start_workflow(gathering)
        wait_until(waiting_for_the_lock, "both worker threads waiting for a row lock")
        holder.rollback()
    assert handle.get_result() == [None, None, None, "step"]
    assert _steps(db, "gathering-1") == [
        (1, "DBOS.updateWorkflowAttributes"), (2, "DBOS.updateWorkflowAttributes"), (3, "DBOS.send"), (4, "on_the_loop"),
    ]
    assert inbox.get_result() == ["hello"]
    assert [DBOS.get_workflow_status(t).attributes for t in ("locked-a", "locked-b")] == [{"tier": "gold"}, {"tier": "silver"}]


def test_patch_async_gathered_with_other_twins_takes_the_same_position_at_every_execution(patching, db):
    code = {"version": "old"}

    @DBOS.step()
    async def old_step() -> str:
        return "old"

    @DBOS.step()
    async def new_step() -> str:
        return "new"

    @DBOS.workflow()
    async def versioned() -> list:
        if code["version"] == "old":
            events = await DBOS.get_all_events_async("nothing")
            took = await old_step()
        else:  # DBOS raises DBOSPatchNondeterminismError for this gather; pgfleet decides on the loop
            patched, events = await asyncio.gather(DBOS.patch_async("use-new"), DBOS.get_all_events_async("nothing"))
            took = await (new_step() if patched else old_step())
        return [took, events]

    with SetWorkflowID("old-run"):
        assert asyncio.run(versioned()) == ["old", {}]
    code["version"] = "patched"
    with SetWorkflowID("new-run"):
        assert asyncio.run(versioned()) == ["new", {}]
    assert _steps(db, "new-run") == [(1, "DBOS.patch-use-new"), (2, "DBOS.get_events"), (3, "new_step")]
    # A replay of the patched execution finds its marker; the old one finds its old step there.
    replayed = DBOS.fork_workflow("new-run", 3)
    assert replayed.get_result() == ["new", {}]
    assert _steps(db, replayed.workflow_id) == _steps(db, "new-run")
    old = DBOS.fork_workflow("old-run", 2)
    assert old.get_result() == ["old", {}]
    assert _steps(db, old.workflow_id) == [(1, "DBOS.get_events"), (2, "old_step")]


def test_a_fenced_async_workflows_twins_send_and_record_nothing(dbos, db):
    _inbox("fenced-inbox")
    reached, release = threading.Event(), threading.Event()

    @DBOS.workflow()
    async def fenced_sender() -> str:
        reached.set()
        await asyncio.to_thread(release.wait, 10)
        await DBOS.send_async("fenced-inbox", 1, "t")
        return "sent"

    call = DirectCall("fenced-sender", lambda: asyncio.run(fenced_sender()))
    assert reached.wait(10)
    take_over(db, "fenced-sender")
    release.set()
    assert isinstance(call.outcome(), DBOSWorkflowFencedError)
    assert db.execute("SELECT count(*) FROM dbos.notifications").fetchone()[0] == 0
    assert _steps(db, "fenced-sender") == []


def test_a_fenced_async_workflows_patch_async_records_no_marker(patching, db):
    reached, release = threading.Event(), threading.Event()

    @DBOS.workflow()
    async def fenced_patcher() -> bool:
        reached.set()
        await asyncio.to_thread(release.wait, 10)
        return await DBOS.patch_async("after-takeover")

    call = DirectCall("fenced-patcher", lambda: asyncio.run(fenced_patcher()))
    assert reached.wait(10)
    take_over(db, "fenced-patcher")
    release.set()
    assert isinstance(call.outcome(), DBOSWorkflowFencedError)
    assert _steps(db, "fenced-patcher") == []


def test_async_workflows_enqueued_from_asyncio_code_run_on_the_background_loop_under_the_queue_limit(dbos):
    one_at_a_time = Queue("one-at-a-time", concurrency=1)
    lock, seen = threading.Lock(), {"running": 0, "peak": 0, "threads": set()}

    @DBOS.workflow()
    async def limited(i: int) -> int:
        with lock:
            seen["running"] += 1
            seen["peak"] = max(seen["peak"], seen["running"])
            seen["threads"].add(threading.current_thread().name)
        await asyncio.sleep(0.05)  # an overlap window for a second claim, were the limit not kept
        with lock:
            seen["running"] -= 1
        return i

    async def enqueue_all() -> list:
        handles = [await one_at_a_time.enqueue_async(limited, i) for i in range(4)]
        return [await h.get_result() for h in handles]

    assert asyncio.run(enqueue_all()) == [0, 1, 2, 3]
    assert seen["peak"] == 1
    assert {name.split("-")[1] for name in seen["threads"]} == {"loop"}  # pgfleet-loop-<executor>


def test_an_async_workflow_enqueued_from_asyncio_code_runs_on_the_claiming_executors_loop(sys_url):
    DBOS.destroy(destroy_registry=True)
    queue = Queue("claimed-elsewhere")

    @DBOS.workflow()
    async def where() -> str:
        await asyncio.sleep(0)
        return f"{DBOS.workflow_id} {DBOS.get_context().executor_id} {threading.current_thread().name}"

    base = {"name": "pgfleet-test", "system_database_url": sys_url}
    DBOS(config={**base, "executor_id": "enqueuer", "queues": []})  # serves no queue of its own
    DBOS.launch()
    claimer = DBOSProcess(resolve_config({**base, "executor_id": "claimer"}), registry)
    try:
        claimer.launch()

        async def enqueue_and_wait() -> str:
            with SetWorkflowID("claimed-1"):
                handle = await queue.enqueue_async(where)
            return await handle.get_result()

        assert asyncio.run(enqueue_and_wait()) == "claimed-1 claimer pgfleet-loop-claimer"
    finally:
        claimer.destroy()
        DBOS.destroy(destroy_registry=True)


def test_sync_methods_are_refused_on_a_loop_and_work_in_its_worker_threads(dbos, caplog):
    DBOS.register_queue("dbq-refusals")
    queue = Queue("dbq-refusals", database_backed_queue=True)

    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"^list_workflows\(\) was called while an event loop is running\. "
                                               r"Use await list_workflows_async\(\.\.\.\) instead\.$"):
            DBOS.list_workflows()
        stream = DBOS.read_stream("no-such-workflow", "k")  # refused at the first read, as DBOS's generator
        with pytest.raises(RuntimeError, match="read_stream_async"):
            next(stream)
        assert await asyncio.to_thread(DBOS.list_workflows) == []
        with caplog.at_level(logging.WARNING, logger="dbos"):
            assert queue.concurrency is None  # a queue's settings only warn, as in DBOS
        assert "Use 'Queue.get_concurrency_async' instead" in caplog.text

    asyncio.run(main())
    assert DBOS.list_workflows() == []  # no loop here


def test_a_clients_queue_settings_from_asyncio_code(dbos, sys_url):
    client = DBOSClient(system_database_url=sys_url)
    try:
        queue = client.register_queue("client-dbq", concurrency=2)

        async def main() -> list:
            await queue.set_concurrency_async(5)
            await queue.set_limiter_async({"limit": 3, "period": 1.5})
            return [await queue.get_concurrency_async(), await queue.get_limiter_async()]

        assert asyncio.run(main()) == [5, {"limit": 3, "period": 1.5}]
        assert DBOS.retrieve_queue("client-dbq").concurrency == 5  # written to the row, fleet-wide
    finally:
        client.destroy()


def test_twins_before_a_launch_raise_dbos_not_launched(sys_url):
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url})
    try:
        with pytest.raises(DBOSException, match=NOT_LAUNCHED):
            asyncio.run(DBOS.list_workflows_async())
        with pytest.raises(DBOSException, match=NOT_LAUNCHED):
            asyncio.run(DBOS.send_async("x", 1))
    finally:
        DBOS.destroy(destroy_registry=True)
