"""The waiting ``_async`` APIs: they wait on the loop, not in a thread; a NOTIFY wakes them;
their positions stay deterministic under ``asyncio.gather``; a preemptible async step is cut
short when its workflow is cancelled, taken over, or abandoned by its executor."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest

from runtime import DBOS, SendMessage, SetWorkflowID, SetWorkflowTimeout
from runtime.current import executor_for
from runtime.errors import DBOSWorkflowCancelledError, DBOSWorkflowFencedError
from runtime.notifications import NotificationHub
from test_fencing import take_over

# Every async wait in these tests is bounded: a hang fails the test instead.
BOUND_SEC = 60.0


def _run(coro):  # noqa: ANN001, ANN202 - any coroutine
    return asyncio.run(asyncio.wait_for(coro, BOUND_SEC))


async def _until(predicate, what: str) -> None:  # noqa: ANN001 - any callable
    """Wait on the loop until ``predicate()`` holds (bounded by the test's wait_for)."""
    while not predicate():
        await asyncio.sleep(0.02)
    assert predicate(), what


def _steps(db: psycopg.Connection, workflow_id: str) -> list[tuple[int, str]]:
    rows = db.execute(
        "SELECT function_id, function_name FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY function_id",
        (workflow_id,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


# -- the hub's async wait ------------------------------------------------------------------


def test_a_notify_from_another_thread_wakes_an_async_waiter() -> None:
    hub = NotificationHub()

    async def scenario() -> tuple[bool, int, int]:
        with hub.watch("wf::t") as watch:
            waiter = asyncio.ensure_future(watch.wait_async(BOUND_SEC))  # far longer than the test waits
            await _until(lambda: hub.waiting_tasks() == 1, "the waiter parked on its future")
            threading.Thread(target=hub.notify, args=("wf::t",)).start()
            woke = await waiter
            return woke, hub.waiting_tasks(), hub.watching()

    woke, parked_after, watching = _run(scenario())
    assert woke is True  # woken by the notify, not by its (minute-long) timeout
    assert parked_after == 0
    assert watching == 1 and hub.watching() == 0


def test_an_async_wait_times_out_false_and_a_cancelled_one_leaves_nothing_behind() -> None:
    hub = NotificationHub()

    async def scenario() -> tuple[bool, int]:
        with hub.watch("wf::k") as watch:
            timed_out = await watch.wait_async(0.01)
            waiter = asyncio.ensure_future(watch.wait_async(BOUND_SEC))
            await _until(lambda: hub.waiting_tasks() == 1, "the waiter parked")
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            return timed_out, hub.waiting_tasks()

    timed_out, parked = _run(scenario())
    assert timed_out is False
    assert parked == 0
    hub.notify("wf::k")  # nobody watches it any more: nothing to wake, nothing raised


def test_a_notify_before_the_wait_is_not_lost() -> None:
    hub = NotificationHub()

    async def scenario() -> bool:
        with hub.watch("wf::t") as watch:
            hub.notify("wf::t")  # between the watch and the wait (the message landed meanwhile)
            return await watch.wait_async(BOUND_SEC)

    assert _run(scenario()) is True


# -- recv_async and get_event_async --------------------------------------------------------


def test_a_thousand_recv_async_waiters_hold_no_thread(dbos: type[DBOS], db: psycopg.Connection) -> None:
    count = 1000

    @DBOS.workflow()
    async def inbox() -> object:
        return await DBOS.recv_async("t", timeout_seconds=BOUND_SEC)

    executor = executor_for("test")

    async def scenario() -> tuple[int, int, list[object]]:
        before = threading.active_count()
        handles = [await DBOS.start_workflow_async(inbox) for _ in range(count)]
        await _until(lambda: executor.hub.watching() == count, "every workflow waiting in recv_async")
        threads_while_waiting = threading.active_count() - before
        await asyncio.to_thread(DBOS.send_bulk, [SendMessage(h.workflow_id, h.workflow_id, "t") for h in handles])
        results = await asyncio.gather(*(h.get_result() for h in handles))
        return threads_while_waiting, len(handles), [r == h.workflow_id for r, h in zip(results, handles)]

    added_threads, started, delivered = _run(scenario())
    assert started == count
    assert all(delivered)
    # At most the executor's database worker threads (one per pool connection) and a couple of
    # service threads: nowhere near one per waiter.
    assert added_threads <= executor.config.sys_db_pool_size + 5, added_threads
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS'").fetchone()[0] == count


def test_cancelling_a_task_awaiting_recv_async_releases_its_watch(dbos: type[DBOS], db: psycopg.Connection) -> None:
    @DBOS.workflow()
    async def patient() -> object:
        return await DBOS.recv_async("t", timeout_seconds=BOUND_SEC)

    executor = executor_for("test")

    async def scenario() -> tuple[int, int]:
        with SetWorkflowID("patient"):
            caller = asyncio.ensure_future(patient())  # awaited directly: the body runs in this task
        await _until(lambda: executor.hub.watching() == 1, "the workflow waiting in recv_async")
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        return executor.hub.watching(), executor.hub.waiting_tasks()

    assert _run(scenario()) == (0, 0)
    # Its receive was never recorded (only the timeout): a re-run receives afresh.
    assert _steps(db, "patient") == [(2, "DBOS.sleep")]


def test_recv_async_after_takeover_consumes_nothing(dbos: type[DBOS], db: psycopg.Connection) -> None:
    """A fenced async receive leaves the message for the new owner, and its workflow stops."""
    saw: list[BaseException] = []

    @DBOS.workflow()
    async def waiting() -> object:
        try:
            return await DBOS.recv_async("t", timeout_seconds=BOUND_SEC)
        except BaseException as exc:
            saw.append(exc)
            raise

    executor = executor_for("test")

    async def scenario() -> None:
        with SetWorkflowID("fenced-recv-async"):
            handle = await DBOS.start_workflow_async(waiting)
        await _until(lambda: executor.hub.watching() == 1, "the workflow waiting in recv_async")
        await asyncio.to_thread(take_over, db, "fenced-recv-async")
        await asyncio.to_thread(DBOS.send, "fenced-recv-async", "for the new owner", "t")
        await _until(lambda: bool(saw), "the fenced receive stopped its workflow")
        assert handle.workflow_id == "fenced-recv-async"

    _run(scenario())
    assert isinstance(saw[0], DBOSWorkflowFencedError)
    assert db.execute("SELECT consumed FROM dbos.notifications").fetchone()[0] is False
    assert _steps(db, "fenced-recv-async") == [(2, "DBOS.sleep")]  # no DBOS.recv row: nothing consumed


def test_gathered_waits_take_the_same_positions_at_every_execution(dbos: type[DBOS], db: psycopg.Connection) -> None:
    @DBOS.workflow()
    async def publisher() -> str:
        await DBOS.sleep_async(0.01)
        return "done"

    @DBOS.workflow()
    async def gatherer(target: str) -> list[object]:
        got = await asyncio.gather(
            DBOS.recv_async("a", timeout_seconds=0.1),
            DBOS.get_event_async(target, "missing", timeout_seconds=0.1),
            DBOS.recv_async("b", timeout_seconds=0.1),
        )
        return list(got)

    async def scenario() -> list[object]:
        with SetWorkflowID("gather-target"):
            await (await DBOS.start_workflow_async(publisher)).get_result()
        with SetWorkflowID("gatherer"):
            return list(await (await DBOS.start_workflow_async(gatherer, "gather-target")).get_result())

    assert _run(scenario()) == [None, None, None]
    # In call order, two positions each: the receive (or read) and its durable timeout.
    assert _steps(db, "gatherer") == [
        (1, "DBOS.recv"), (2, "DBOS.sleep"), (3, "DBOS.getEvent"), (4, "DBOS.sleep"), (5, "DBOS.recv"), (6, "DBOS.sleep"),
    ]


def test_recv_async_replays_its_recorded_message(dbos: type[DBOS], db: psycopg.Connection) -> None:
    @DBOS.workflow()
    async def once() -> list[object]:
        first = await DBOS.recv_async("t", timeout_seconds=BOUND_SEC)
        DBOS.logger.info("received", message=first)
        return [first, await DBOS.recv_async("t", timeout_seconds=0)]

    async def scenario() -> tuple[object, object]:
        with SetWorkflowID("once"):
            handle = await DBOS.start_workflow_async(once)
        await asyncio.to_thread(DBOS.send, "once", "only message", "t")
        first = await handle.get_result()
        forked = await asyncio.to_thread(DBOS.fork_workflow, "once", 5)  # every step copied: a replay
        return first, await (await DBOS.retrieve_workflow_async(forked.workflow_id)).get_result()

    first, replayed = _run(scenario())
    assert first == replayed == ["only message", None]


# -- wait_first_async, run_step_async and asyncio_wait --------------------------------------


def test_wait_first_async_returns_the_given_handle_and_records_it(dbos: type[DBOS], db: psycopg.Connection) -> None:
    @DBOS.workflow()
    async def child(x: str) -> str:
        if x == "slow":
            await DBOS.recv_async("never", timeout_seconds=1)
        return x

    @DBOS.workflow()
    async def parent() -> str:
        slow = await DBOS.start_workflow_async(child, "slow")
        quick = await DBOS.start_workflow_async(child, "quick")
        first = await DBOS.wait_first_async([slow, quick], polling_interval_sec=0.05)
        assert first is quick
        await slow.get_result()
        return str(await first.get_result())

    async def scenario() -> str:
        with SetWorkflowID("waits-first"):
            return str(await (await DBOS.start_workflow_async(parent)).get_result())

    assert _run(scenario()) == "quick"
    assert (3, "DBOS.waitFirst") in _steps(db, "waits-first")
    output = db.execute(
        "SELECT output FROM dbos.operation_outputs WHERE workflow_uuid = 'waits-first' AND function_id = 3"
    ).fetchone()[0]
    assert output is not None


def test_run_step_async_runs_a_sync_function_off_the_loop_and_off_the_database_threads(dbos: type[DBOS], db: psycopg.Connection) -> None:
    seen: list[str] = []

    def where() -> str:
        seen.append(threading.current_thread().name)
        return "ran"

    async def triple(x: int) -> int:
        return 3 * x

    @DBOS.workflow()
    async def runner() -> list[object]:
        loop_thread = threading.current_thread().name
        return [loop_thread, await DBOS.run_step_async(None, where), await DBOS.run_step_async({"name": "tripled"}, triple, 2)]

    async def scenario() -> list[object]:
        with SetWorkflowID("runner"):
            return list(await (await DBOS.start_workflow_async(runner)).get_result())

    loop_thread, ran, tripled = _run(scenario())
    assert (ran, tripled) == ("ran", 6)
    assert seen and seen[0] != loop_thread and not seen[0].startswith("pgfleet-async")
    assert [(i, name.rsplit(".", 1)[-1]) for i, name in _steps(db, "runner")] == [(1, "where"), (2, "tripled")]


def test_asyncio_wait_replays_the_recorded_split(dbos: type[DBOS], db: psycopg.Connection) -> None:
    release = asyncio.Event()

    @DBOS.step()
    async def quick_step() -> str:
        return "quick"

    @DBOS.step()
    async def held_step() -> str:
        await release.wait()  # a replay returns the recorded "held" without running this
        return "held"

    @DBOS.workflow()
    async def splitter() -> list[object]:
        done, pending = await DBOS.asyncio_wait([quick_step(), held_step()], return_when=asyncio.FIRST_COMPLETED)
        split = [sorted(t.result() for t in done), len(pending)]
        release.set()
        for task in pending:
            await task
        return split

    async def scenario() -> tuple[object, object]:
        with SetWorkflowID("split-1"):
            first = await (await DBOS.start_workflow_async(splitter)).get_result()
        forked = await asyncio.to_thread(DBOS.fork_workflow, "split-1", 4)
        return first, await (await DBOS.retrieve_workflow_async(forked.workflow_id)).get_result()

    first, replayed = _run(scenario())
    assert first == [["quick"], 1]
    assert replayed == first  # both steps replay at once, but the split is the recorded one
    assert _steps(db, "split-1")[0] == (1, "DBOS.asyncio_wait")


# -- preemptible async steps ------------------------------------------------------------------


class _Preemptible:
    """A workflow whose preemptible step waits forever; what its body and workflow saw."""

    def __init__(self, dbos: type[DBOS]) -> None:
        self.started = threading.Event()
        self.body_cancelled = threading.Event()
        self.workflow_saw: list[BaseException] = []

        @dbos.step(preemptible=True)
        async def forever() -> str:
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.body_cancelled.set()
                raise
            return "never"

        @dbos.workflow()
        async def holder() -> str:
            try:
                return await forever()
            except BaseException as exc:
                self.workflow_saw.append(exc)
                raise

        self.holder = holder

    async def start(self, workflow_id: str, timeout_sec: float | None = None) -> asyncio.Task[object]:
        with SetWorkflowID(workflow_id), SetWorkflowTimeout(timeout_sec):
            handle = await DBOS.start_workflow_async(self.holder)
        await _until(self.started.is_set, "the step body started")
        return asyncio.ensure_future(handle.get_result())


def test_a_preemptible_step_is_cancelled_with_its_workflow(dbos: type[DBOS], db: psycopg.Connection) -> None:
    case = _Preemptible(dbos)

    async def scenario() -> BaseException | None:
        result = await case.start("preempt-cancel")
        await asyncio.to_thread(DBOS.cancel_workflow, "preempt-cancel")
        await _until(case.body_cancelled.is_set, "the body cancelled by the poller")
        try:
            await result
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            return exc
        return None

    awaited = _run(scenario())
    assert type(awaited).__name__ == "DBOSAwaitedWorkflowCancelledError"
    assert isinstance(case.workflow_saw[0], DBOSWorkflowCancelledError)
    assert "Aborting preemptible step" in str(case.workflow_saw[0])
    assert _steps(db, "preempt-cancel") == []  # cut short: nothing recorded, a resume runs it again
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'preempt-cancel'").fetchone()[0] == "CANCELLED"


def test_a_preemptible_step_is_cancelled_at_its_workflows_deadline(dbos: type[DBOS], db: psycopg.Connection) -> None:
    case = _Preemptible(dbos)

    async def scenario() -> BaseException | None:
        result = await case.start("preempt-deadline", timeout_sec=0.5)
        await _until(case.body_cancelled.is_set, "the body cancelled once the deadline passed")
        try:
            await result
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            return exc
        return None

    awaited = _run(scenario())
    assert type(awaited).__name__ == "DBOSAwaitedWorkflowCancelledError"
    assert isinstance(case.workflow_saw[0], DBOSWorkflowCancelledError)
    assert _steps(db, "preempt-deadline") == []
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'preempt-deadline'").fetchone()[0] == "CANCELLED"


def test_a_preemptible_step_stops_when_another_executor_takes_its_workflow(dbos: type[DBOS], db: psycopg.Connection) -> None:
    case = _Preemptible(dbos)

    async def scenario() -> None:
        result = await case.start("preempt-taken")
        epoch = await asyncio.to_thread(take_over, db, "preempt-taken")
        assert epoch
        await _until(case.body_cancelled.is_set, "the body cancelled once the row names another owner")
        await _until(lambda: bool(case.workflow_saw), "the workflow body saw why")
        result.cancel()  # its handle would wait for the new owner, which is nobody here

    _run(scenario())
    assert isinstance(case.workflow_saw[0], DBOSWorkflowFencedError)
    assert _steps(db, "preempt-taken") == []
    row = db.execute("SELECT status, executor_id FROM dbos.workflow_status WHERE workflow_uuid = 'preempt-taken'").fetchone()
    assert row == ("PENDING", "someone-else")  # the fenced execution wrote nothing over the new owner


def test_a_preemptible_step_stops_when_its_executor_abandons_its_work(dbos: type[DBOS], db: psycopg.Connection) -> None:
    case = _Preemptible(dbos)
    executor = executor_for("test")

    async def scenario() -> None:
        result = await case.start("preempt-abandoned")
        executor.abandon_all("the test declared this executor dead")  # what a lost membership does
        await _until(case.body_cancelled.is_set, "the body cancelled by the local ownership check")
        await _until(lambda: bool(case.workflow_saw), "the workflow body saw why")
        result.cancel()

    _run(scenario())
    assert isinstance(case.workflow_saw[0], DBOSWorkflowFencedError)
    assert "abandoned" in str(case.workflow_saw[0])
    assert _steps(db, "preempt-abandoned") == []
