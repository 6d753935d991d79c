"""Fencing of ``async def`` workflows: an async workflow whose row moved (a takeover from a
second session, or a paused member declared dead) starts no further step body and writes
nothing, its finish write included; a member paused past its lease stops before its next async
step body (the local lease check, ``executor.check_owned``)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from conftest import wait_until
from faults.pause import PAUSE_ENV, wait_stopped
from runtime import DBOS, DBOSWorkflowFencedError, SetWorkflowID
from test_async_cluster import Worker, workers  # noqa: F401  (the fixture)


def take_over(db, workflow_id: str, new_owner: str = "someone-else") -> int:
    """What a takeover does: a compare-and-set to another owner with a fresh epoch."""
    return db.execute(
        "UPDATE dbos.workflow_status SET executor_id = %s, owner_epoch = nextval('dbos.pgfleet_epoch_seq') "
        "WHERE workflow_uuid = %s AND status = 'PENDING' RETURNING owner_epoch",
        (new_owner, workflow_id),
    ).fetchone()[0]


def row(db, workflow_id: str):
    return db.execute(
        "SELECT status, output, error, executor_id, owner_epoch FROM dbos.workflow_status WHERE workflow_uuid = %s",
        (workflow_id,),
    ).fetchone()


def test_an_async_workflow_moved_during_a_step_starts_no_further_step_body_and_writes_nothing(dbos, db):
    ran: list[str] = []

    async def scenario() -> BaseException | None:
        reached, release = asyncio.Event(), asyncio.Event()

        @DBOS.step()
        async def first() -> int:
            ran.append("first")
            reached.set()
            await release.wait()
            return 1

        @DBOS.step()
        async def second() -> int:
            ran.append("second")
            return 2

        @DBOS.workflow()
        async def moved_wf() -> int:
            return await first() + await second()

        async def call() -> int:
            with SetWorkflowID("async-moved"):
                return await moved_wf()

        task = asyncio.get_running_loop().create_task(call())
        await reached.wait()
        # The move, from a second session, while the body of the first step runs.
        await asyncio.to_thread(take_over, db, "async-moved")
        release.set()
        try:
            await task
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            return exc
        return None

    new_epoch = db.execute("SELECT last_value FROM dbos.pgfleet_epoch_seq").fetchone()[0]
    error = asyncio.run(scenario())
    assert isinstance(error, DBOSWorkflowFencedError), error
    assert ran == ["first"]  # the second step's body never started
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='async-moved'").fetchone()[0] == 0
    status, output, err, owner, epoch = row(db, "async-moved")
    assert (status, output, err, owner) == ("PENDING", None, None, "someone-else")
    assert epoch > new_epoch


@pytest.mark.parametrize("background", [False, True], ids=["awaited", "start_workflow_async"])
def test_a_fenced_async_workflows_finish_write_changes_nothing(dbos, db, background):
    async def scenario() -> tuple[BaseException | None, bool]:
        reached, release = asyncio.Event(), asyncio.Event()

        @DBOS.workflow()
        async def no_steps() -> str:
            reached.set()
            await release.wait()
            return "mine"

        with SetWorkflowID("async-final"):
            if background:
                handle = await DBOS.start_workflow_async(no_steps)
                task = None
            else:
                task = asyncio.get_running_loop().create_task(no_steps())
                handle = None
        await reached.wait()
        await asyncio.to_thread(take_over, db, "async-final")
        release.set()
        if task is not None:
            try:
                await task
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                return exc, False
            return None, False
        # A handle does not take the fenced run's word for it: it waits for the new owner.
        try:
            await asyncio.wait_for(handle.get_result(), 0.5)
        except asyncio.TimeoutError:
            return None, True
        return None, False

    before = row(db, "async-final")
    error, waited = asyncio.run(scenario())
    if background:
        assert waited
    else:
        assert isinstance(error, DBOSWorkflowFencedError), error
    assert before is None
    status, output, err, owner, _ = row(db, "async-final")
    assert (status, output, err, owner) == ("PENDING", None, None, "someone-else")


def test_each_attempt_of_an_async_step_checks_the_lease_first(dbos, db):
    """An executor that abandoned its work (as when declared dead) between two attempts of a
    retried async step starts no second attempt: the check runs before every attempt's body."""
    executor = DBOS._process().executor
    attempts: list[int] = []

    @DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01)
    async def flaky() -> int:
        attempts.append(len(attempts))
        take_over(db, "async-retry")  # the workflow moved, and this executor knows it lost it
        executor.abandon_all("declared dead by the test")
        raise RuntimeError("first attempt fails")

    @DBOS.workflow()
    async def retry_wf() -> int:
        return await flaky()

    async def call() -> int:
        with SetWorkflowID("async-retry"):
            return await retry_wf()

    with pytest.raises(DBOSWorkflowFencedError, match="abandoned"):
        asyncio.run(call())
    assert attempts == [0]
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='async-retry'").fetchone()[0] == 0
    assert row(db, "async-retry")[:4] == ("PENDING", None, None, "someone-else")


@pytest.mark.parametrize("mode", ["pause", "pause-await"], ids=["background-loop", "callers-loop"])
def test_an_async_workflow_of_a_member_paused_past_its_lease_starts_no_step_body_on_waking(sys_url, ledger, workers, mode):  # noqa: F811
    db = ledger
    # node-b leads, so the paused node-a holds no leader lock the takeover would wait out.
    workers.append(Worker(sys_url, "node-b"))
    wait_until(
        lambda: db.execute("SELECT 1 FROM dbos.pgfleet_leader WHERE executor_id = 'node-b' AND expires_at > now()").fetchone(),
        "node-b to lead",
    )
    victim = Worker(sys_url, "node-a", mode, "paused-async", env={PAUSE_ENV: "between-steps"})
    workers.append(victim)
    wait_stopped(victim.proc.pid)  # stopped right after step 1's checkpoint
    wait_until(
        lambda: row(db, "paused-async")[0] == "SUCCESS", "node-b to take the async workflow over and finish it", 30,
    )
    os.kill(victim.proc.pid, signal.SIGCONT)
    # The old execution resumes exactly between two async steps, and must stop there.
    assert victim.next_line(30) == "stopped DBOSWorkflowFencedError"
    ran = db.execute("SELECT executor_id, function_id FROM public.side_effects ORDER BY id").fetchall()
    assert ran == [("node-a", 1)] + [("node-b", i) for i in range(2, 5)], ran
    assert row(db, "paused-async")[3] == "node-b"
