"""The attempt ledger (issue #12): with ``attempt_ledger`` on, every start of a step body is a
row of ``dbos.pgfleet_step_attempts`` (workflow, position, name, executor, epoch, pid, database
time), written before the body runs; off (the default), nothing is written."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from conftest import run_app, wait_until
from runtime import DBOS, DBOSConfigError, SetWorkflowID


def attempt_rows(db, workflow_id):
    return db.execute(
        "SELECT function_id, function_name, executor_id, owner_epoch, pid, attempt, started_at IS NOT NULL "
        "FROM dbos.pgfleet_step_attempts WHERE workflow_uuid = %s ORDER BY function_id, id",
        (workflow_id,),
    ).fetchall()


def owner_epoch(db, workflow_id):
    return db.execute("SELECT owner_epoch FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()[0]


@pytest.fixture
def ledger_on(sys_url: str) -> Iterator[type]:
    """A launched DBOS with the attempt ledger switched on by its config key."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "ledger-test", "system_database_url": sys_url, "executor_id": "ledger-executor",
                 "attempt_ledger": True})
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


def three_steps() -> object:
    @DBOS.step()
    def first(x: int) -> int:
        return x + 1

    @DBOS.step()
    def second(x: int) -> int:
        return x * 2

    @DBOS.step()
    def third(x: int) -> int:
        return x - 3

    @DBOS.workflow()
    def flow(x: int) -> int:
        return third(second(first(x)))

    return flow


def test_off_by_default_writes_nothing(dbos, db):
    flow = three_steps()
    with SetWorkflowID("off-wf"):
        assert flow(1) == 1
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='off-wf'").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM dbos.pgfleet_step_attempts").fetchone()[0] == 0


def test_three_steps_write_three_rows_with_the_owner_epoch(ledger_on, db):
    flow = three_steps()
    with SetWorkflowID("on-wf"):
        assert flow(1) == 1
    epoch = owner_epoch(db, "on-wf")
    rows = attempt_rows(db, "on-wf")
    assert [(r[0], r[1].rsplit(".", 1)[-1]) for r in rows] == [(1, "first"), (2, "second"), (3, "third")]
    assert {(r[2], r[3], r[4], r[5], r[6]) for r in rows} == {("ledger-executor", epoch, os.getpid(), 1, True)}
    # The door reads the same rows, in order.
    listed = DBOS._executor_or_raise("test").db.attempts.list_for("on-wf")
    assert [(a.function_id, a.owner_epoch) for a in listed] == [(1, epoch), (2, epoch), (3, epoch)]


def test_a_retried_step_writes_one_row_per_attempt(ledger_on, db):
    tries = []

    @DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01, backoff_rate=1.0)
    def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ValueError("not yet")
        return "ok"

    @DBOS.workflow()
    def retrying() -> str:
        return flaky()

    with SetWorkflowID("retry-wf"):
        assert retrying() == "ok"
    rows = attempt_rows(db, "retry-wf")
    assert [(r[0], r[5]) for r in rows] == [(1, 1), (1, 2), (1, 3)]


def test_an_async_workflows_steps_are_recorded(ledger_on, db):
    @DBOS.step()
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @DBOS.workflow()
    async def gathered(x: int) -> int:
        a, b = await asyncio.gather(fetch(x), fetch(x + 10))
        return a + b

    async def main() -> int:
        with SetWorkflowID("async-wf"):
            return await gathered(1)

    assert asyncio.run(main()) == 14
    rows = attempt_rows(db, "async-wf")
    assert [r[0] for r in rows] == [1, 2]
    assert {(r[2], r[3], r[4]) for r in rows} == {("ledger-executor", owner_epoch(db, "async-wf"), os.getpid())}


def test_a_bad_switch_value_is_refused(sys_url, monkeypatch):
    DBOS.destroy(destroy_registry=True)
    with pytest.raises(DBOSConfigError, match="attempt_ledger"):
        DBOS(config={"name": "x", "system_database_url": sys_url, "attempt_ledger": "yes"})
    DBOS.destroy(destroy_registry=True)
    monkeypatch.setenv("PGFLEET_ATTEMPT_LEDGER", "maybe")
    with pytest.raises(DBOSConfigError, match="PGFLEET_ATTEMPT_LEDGER"):
        DBOS(config={"name": "x", "system_database_url": sys_url})
    DBOS.destroy(destroy_registry=True)


def test_a_killed_processs_in_flight_step_has_its_row(sys_url, db, tmp_path):
    """Switched on by the environment, in a process SIGKILLed inside its second step: that
    step's row is there (it was written before the body); the recovering process writes rows
    for the re-run step and the third, and none for the step that had completed."""
    notes = tmp_path / "notes"
    env = {"PGFLEET_ATTEMPT_LEDGER": "1"}
    first = run_app("crashy.py", "start", sys_url, str(notes), env=env)
    wait_until(lambda: notes.exists() and "step_two" in notes.read_text(), "the second step to start", 30)
    first_epoch = owner_epoch(db, "crash-wf")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    rows = attempt_rows(db, "crash-wf")
    assert [(r[0], r[4]) for r in rows] == [(1, first.pid), (2, first.pid)]
    assert {r[3] for r in rows} == {first_epoch}

    second = run_app("crashy.py", "recover", sys_url, str(notes), "crash-wf", env=env)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "crash-wf 6" in out
    rows = attempt_rows(db, "crash-wf")
    assert [(r[0], r[4]) for r in rows] == [(1, first.pid), (2, first.pid), (2, second.pid), (3, second.pid)]
    # The recovering execution's rows carry its own (later) epoch.
    second_epoch = owner_epoch(db, "crash-wf")
    assert second_epoch != first_epoch
    assert [r[3] for r in rows[2:]] == [second_epoch, second_epoch]
