"""The life of an async workflow around its caller and its process: the awaiting task
cancelled, the starter returning, the caller's loop ending, ``DBOS.destroy()`` with async
workflows in flight on the background loop.

dbos 2.30 leaves a workflow whose awaiting task was cancelled (or whose loop ended) PENDING
until a restart recovers it; pgfleet runs it again here at once from its checkpoints (the
orphan sweep), so the caller's CancelledError is the caller's only.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import wait_until
from runtime import DBOS, DBOSWorkflowFencedError, SetWorkflowID


def row(db, workflow_id: str):
    return db.execute(
        "SELECT status, output, error FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)
    ).fetchone()


def steps(db, workflow_id: str) -> list[tuple[int, str]]:
    return db.execute(
        "SELECT function_id, function_name FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY 1", (workflow_id,)
    ).fetchall()


def succeeded(db, workflow_id: str):
    return lambda: (row(db, workflow_id) or ("",))[0] == "SUCCESS"


def hanging_workflow(ran: list[str], hold_first: threading.Event, reached: threading.Event):
    """A two-step async workflow whose first step's body waits (on the loop) for ``hold_first``
    to clear, the first time only."""

    @DBOS.step()
    async def first() -> int:
        ran.append("first")
        reached.set()
        while hold_first.is_set():
            await asyncio.sleep(0.01)
        return 1

    @DBOS.step()
    async def second() -> int:
        ran.append("second")
        return 2

    @DBOS.workflow()
    async def two_steps() -> int:
        return await first() + await second()

    return two_steps


def test_cancelling_the_awaiting_task_stops_the_caller_and_the_workflow_still_finishes(dbos, db):
    ran: list[str] = []
    hold, reached = threading.Event(), threading.Event()
    hold.set()
    two_steps = hanging_workflow(ran, hold, reached)

    async def scenario() -> None:
        async def call() -> int:
            with SetWorkflowID("async-cancelled-caller"):
                return await two_steps()

        task = asyncio.get_running_loop().create_task(call())
        while not reached.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    hold.clear()
    # Still this executor's, PENDING: re-run here from its checkpoints (the first step was cut
    # short in its body, so it runs again; nothing was recorded for it).
    wait_until(succeeded(db, "async-cancelled-caller"), "the workflow to be run again and finish", 30)
    assert ran == ["first", "first", "second"]
    assert [position for position, _ in steps(db, "async-cancelled-caller")] == [1, 2]
    assert DBOS.retrieve_workflow("async-cancelled-caller").get_result() == 3


def test_a_workflow_started_with_start_workflow_async_outlives_its_starter(dbos, db):
    ran: list[str] = []
    hold, reached = threading.Event(), threading.Event()
    two_steps = hanging_workflow(ran, hold, reached)

    async def scenario() -> int:
        async def starter() -> str:
            with SetWorkflowID("async-outlives"):
                handle = await DBOS.start_workflow_async(two_steps)
            return handle.get_workflow_id()  # the starter returns before the workflow ends

        workflow_id = await starter()
        handle = await DBOS.retrieve_workflow_async(workflow_id)
        return await handle.get_result()

    assert asyncio.run(scenario()) == 3
    assert ran == ["first", "second"]


def test_a_workflow_left_running_when_its_loop_ends_is_finished_here(dbos, db):
    ran: list[str] = []
    hold, reached = threading.Event(), threading.Event()
    hold.set()
    two_steps = hanging_workflow(ran, hold, reached)

    async def leave_running() -> None:
        with SetWorkflowID("async-loop-ended"):
            await DBOS.start_workflow_async(two_steps)
        while not reached.is_set():
            await asyncio.sleep(0.01)

    asyncio.run(leave_running())  # cancels the workflow's task as the loop ends
    assert row(db, "async-loop-ended") == ("PENDING", None, None)
    hold.clear()
    wait_until(succeeded(db, "async-loop-ended"), "the workflow to be run again and finish", 30)
    assert ran == ["first", "first", "second"]
    assert [position for position, _ in steps(db, "async-loop-ended")] == [1, 2]


def test_destroy_stops_async_workflows_on_the_background_loop_without_an_outcome_and_a_relaunch_recovers_them(dbos, db, sys_url):
    ran: list[str] = []
    hold, reached = threading.Event(), threading.Event()
    hold.set()
    two_steps = hanging_workflow(ran, hold, reached)

    @DBOS.workflow()
    async def sleeper() -> str:
        await DBOS.sleep_async(1.5)
        return "rested"

    with SetWorkflowID("async-destroyed"):
        DBOS.start_workflow(two_steps)  # from sync code: on the background loop
    with SetWorkflowID("async-sleeping"):
        DBOS.start_workflow(sleeper)
    assert reached.wait(10)
    wait_until(lambda: steps(db, "async-sleeping"), "the sleep's wake-up time to be recorded")
    DBOS.destroy()
    assert row(db, "async-destroyed") == ("PENDING", None, None)
    assert row(db, "async-sleeping") == ("PENDING", None, None)
    assert steps(db, "async-destroyed") == []  # the first step was cut short: nothing recorded
    assert ran == ["first"]

    hold.clear()
    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor"})
    DBOS.launch()
    assert DBOS.retrieve_workflow("async-destroyed").get_result() == 3
    assert ran == ["first", "first", "second"]
    assert DBOS.retrieve_workflow("async-sleeping").get_result() == "rested"
    assert len(steps(db, "async-sleeping")) == 1  # the recovered sleep kept its recorded wake-up time
    attempts = db.execute(
        "SELECT workflow_uuid, recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid LIKE 'async-%' ORDER BY 1"
    ).fetchall()
    assert attempts == [("async-destroyed", 2), ("async-sleeping", 2)]


class CallerLoop(threading.Thread):
    """A thread of the application running its own loop: it awaits one async workflow and
    starts another with start_workflow_async, then keeps what each returned or raised."""

    def __init__(self, workflow) -> None:
        super().__init__()
        self.workflow = workflow
        self.started = threading.Event()
        self.outcomes: list = []
        self.start()

    def run(self) -> None:
        async def main() -> None:
            with SetWorkflowID("on-caller-awaited"):
                awaited = asyncio.get_running_loop().create_task(self.workflow())
            with SetWorkflowID("on-caller-started"):
                handle = await DBOS.start_workflow_async(self.workflow)
            self.started.set()
            self.outcomes = await asyncio.gather(awaited, handle.get_result(), return_exceptions=True)

        asyncio.run(main())

    def outcome(self) -> list:
        self.join(30)
        assert not self.is_alive()
        return self.outcomes


def test_destroy_with_a_grace_period_lets_async_workflows_on_a_callers_loop_finish(dbos, db):
    """As dbos 2.30 waits for every active workflow, not only those of its own loop."""
    ran: list[str] = []
    hold, reached = threading.Event(), threading.Event()
    hold.set()
    two_steps = hanging_workflow(ran, hold, reached)
    caller = CallerLoop(two_steps)
    assert caller.started.wait(10) and reached.wait(10)
    # Both bodies are in their first step (one reaching it is not enough: the other, not yet
    # started when the executor closes, would stop with ExecutorShutdown instead).
    wait_until(lambda: ran.count("first") == 2, "both workflows in their first step", 10)
    threading.Timer(0.3, hold.clear).start()  # they finish only once destroy is waiting for them
    DBOS.destroy(workflow_completion_timeout_sec=20)
    assert caller.outcome() == [3, 3]
    assert row(db, "on-caller-awaited") == row(db, "on-caller-started")
    assert row(db, "on-caller-awaited")[0] == "SUCCESS"


def test_destroy_stops_async_workflows_on_a_callers_loop_as_it_stops_sync_ones(dbos, db, sys_url):
    ran: list[str] = []
    hold, reached = threading.Event(), threading.Event()
    hold.set()
    two_steps = hanging_workflow(ran, hold, reached)
    caller = CallerLoop(two_steps)
    assert caller.started.wait(10) and reached.wait(10)
    # Both bodies are in their first step (one reaching it is not enough: the other, not yet
    # started when the executor closes, would stop with ExecutorShutdown instead).
    wait_until(lambda: ran.count("first") == 2, "both workflows in their first step", 10)
    executor = DBOS._executor_or_raise("test")

    def release_once_stopped() -> None:  # the bodies go on only after the executor abandoned them
        executor.stop_event.wait(30)
        hold.clear()

    threading.Thread(target=release_once_stopped, daemon=True).start()
    DBOS.destroy()
    outcomes = caller.outcome()
    # The awaiting caller is told the workflow stopped (as a direct sync caller is); the handle
    # of the started one is told the process that waited is gone. Nothing was recorded.
    assert isinstance(outcomes[0], DBOSWorkflowFencedError), outcomes
    assert "shutting down" in str(outcomes[0])
    assert not isinstance(outcomes[1], RuntimeError), outcomes
    assert row(db, "on-caller-awaited") == row(db, "on-caller-started") == ("PENDING", None, None)
    assert steps(db, "on-caller-awaited") == steps(db, "on-caller-started") == []

    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor"})
    DBOS.launch()  # recovers both, on the background loop
    assert DBOS.retrieve_workflow("on-caller-awaited").get_result() == 3
    assert DBOS.retrieve_workflow("on-caller-started").get_result() == 3


def test_destroy_with_a_grace_period_waits_for_a_sync_workflow_called_directly_in_a_callers_thread(dbos, db):
    hold, reached, out = threading.Event(), threading.Event(), []

    @DBOS.step()
    def held() -> int:
        reached.set()
        hold.wait(10)
        return 5

    @DBOS.workflow()
    def direct() -> int:
        return held()

    def call() -> None:
        with SetWorkflowID("sync-direct"):
            out.append(direct())

    thread = threading.Thread(target=call)
    thread.start()
    assert reached.wait(10)
    threading.Timer(0.3, hold.set).start()
    DBOS.destroy(workflow_completion_timeout_sec=20)
    thread.join(10)
    assert out == [5]
    assert row(db, "sync-direct")[0] == "SUCCESS"


def test_a_cancel_during_a_checkpoint_write_hands_the_workflow_back_only_once_the_write_settled(dbos, db, sys_url):
    """The awaiting task is cancelled while its step's checkpoint waits in a worker thread (on
    a row lock a second session holds): the write goes on without the task. Until it ends, the
    execution still holds its epoch, so no sweep runs the workflow a second time beside it
    (which would run the step body again and meet the first write's row)."""
    from faults.locks import LockHolder, wait_for_lock_wait
    from runtime import ownership

    ran: list[str] = []
    locked: list[asyncio.Event] = []

    @DBOS.step()
    async def first() -> int:
        ran.append("first")
        await locked[0].wait()  # the row is locked now: this step's checkpoint will wait
        return 1

    @DBOS.step()
    async def second() -> int:
        ran.append("second")
        return 2

    @DBOS.workflow()
    async def written() -> int:
        return await first() + await second()

    process = DBOS._process()
    executor, services = process.executor, process.services
    with LockHolder(sys_url) as holder:

        async def scenario() -> None:
            locked.append(asyncio.Event())

            async def call() -> int:
                with SetWorkflowID("async-cancel-mid-write"):
                    return await written()

            task = asyncio.get_running_loop().create_task(call())
            await asyncio.to_thread(wait_until, lambda: ran, "the first step's body")
            await asyncio.to_thread(holder.hold_rows, "SELECT 1 FROM dbos.workflow_status WHERE workflow_uuid = %s",
                                    ("async-cancel-mid-write",))
            locked[0].set()
            await asyncio.to_thread(wait_for_lock_wait, sys_url, application_name_like="pgfleet%")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(scenario())
        # A sweep now must not adopt it: the execution's write is still in flight.
        assert ownership.adopt_orphans(executor, services.owning_writes, services._held_epochs) == 0
        holder.release()
    wait_until(lambda: row(db, "async-cancel-mid-write")[0] != "PENDING", "an outcome", 30)
    assert row(db, "async-cancel-mid-write")[0] == "SUCCESS"  # not ERROR: DuplicateCheckpointError
    assert DBOS.retrieve_workflow("async-cancel-mid-write").get_result() == 3
    assert ran == ["first", "second"]  # the first step's write landed: replayed, not run again


def test_a_step_task_left_behind_by_a_cancelled_run_writes_nothing_beside_the_run_that_replaced_it(dbos, db):
    """A workflow body that runs a step as a task of its own (asyncio.create_task) and is
    cancelled leaves that task running. The workflow runs again here; the old task must not
    record its step beside the new run (the new run would meet its row: DuplicateCheckpointError)."""
    runs: list[threading.Event] = []
    outcomes: list[str] = []
    started = threading.Event()

    @DBOS.step()
    async def slow() -> int:
        gate = threading.Event()
        runs.append(gate)
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return 1

    executions: list[int] = []

    @DBOS.workflow()
    async def spawner() -> int:
        executions.append(1)
        task = asyncio.get_running_loop().create_task(slow())

        def note(done: asyncio.Task) -> None:
            outcomes.append("cancelled" if done.cancelled() else type(done.exception()).__name__)

        task.add_done_callback(note)
        if len(executions) == 1:
            started.set()
            await asyncio.Event().wait()  # the first run waits here until it is cancelled
        return await task

    async def scenario() -> None:
        async def call() -> int:
            with SetWorkflowID("async-left-behind"):
                return await spawner()

        task = asyncio.get_running_loop().create_task(call())
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The left-behind step task runs on (this loop keeps it until it ended).
        wait_for = asyncio.to_thread(wait_until, lambda: len(runs) == 2, "the workflow to run again here")
        await wait_for
        runs[0].set()  # the old execution's step finishes first
        while not outcomes:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert outcomes == ["DBOSWorkflowFencedError"]  # it stopped at its checkpoint, writing nothing
    runs[1].set()
    wait_until(lambda: row(db, "async-left-behind")[0] != "PENDING", "an outcome", 30)
    assert row(db, "async-left-behind")[0] == "SUCCESS"
    assert DBOS.retrieve_workflow("async-left-behind").get_result() == 1
