"""The attempt ledger (issue #12): with ``attempt_ledger`` on, every start of a step body is a
row of ``dbos.pgfleet_step_attempts`` (workflow, position, name, executor, epoch, pid, database
time), written before the body runs; so is every attempt of a ``@DBOS.transaction`` body (on
the system database or an application database) and of a datasource transaction (sync and
async). Off (the default), nothing is written."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import test_sql_transactions
from conftest import run_app, wait_until
from runtime import DBOS, AsyncSQLAlchemyDatasource, DBOSConfigError, SetWorkflowID, SQLAlchemyDatasource
from test_sql_transactions import sa_url

# A database of the application's (with public.items), from the transaction tests.
app_url = test_sql_transactions.app_url


def attempt_rows(db, workflow_id):
    return db.execute(
        "SELECT function_id, function_name, executor_id, owner_epoch, pid, attempt, started_at IS NOT NULL "
        "FROM dbos.pgfleet_step_attempts WHERE workflow_uuid = %s ORDER BY function_id, id",
        (workflow_id,),
    ).fetchall()


def owner_epoch(db, workflow_id):
    return db.execute("SELECT owner_epoch FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()[0]


def launch_ledger(sys_url: str, **config: object) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "ledger-test", "system_database_url": sys_url, "executor_id": "ledger-executor",  # type: ignore[typeddict-item]
                 "attempt_ledger": True, **config})
    DBOS.launch()


@pytest.fixture
def ledger_on(sys_url: str) -> Iterator[type]:
    """A launched DBOS with the attempt ledger switched on by its config key."""
    launch_ledger(sys_url)
    yield DBOS
    DBOS.destroy(destroy_registry=True)


def fail_once_as_a_serialization_conflict(tries: list[int]) -> None:
    """The first call raises SQLSTATE 40001 from the server, as a lost SERIALIZABLE race would:
    pgfleet runs the transaction again (DBOS's retry)."""
    tries.append(1)
    if len(tries) == 1:
        DBOS.sql_session.execute(sa.text("DO $$ BEGIN RAISE EXCEPTION 'planted' USING ERRCODE = '40001'; END $$"))


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


# -- transactions and datasource transactions ---------------------------------------------------


def a_step_then_a_transaction(tries: list[int]) -> object:
    @DBOS.step()
    def before() -> int:
        return 1

    @DBOS.transaction()
    def insert(x: int) -> int:
        if x < 0:
            fail_once_as_a_serialization_conflict(tries)
        return DBOS.sql_session.execute(sa.text("SELECT :x + 1"), {"x": abs(x)}).scalar_one()

    @DBOS.workflow()
    def flow(x: int) -> int:
        return insert(x * before())

    return flow


def test_a_transaction_records_one_row_at_its_position(ledger_on, db):
    tries: list[int] = []
    flow = a_step_then_a_transaction(tries)
    with SetWorkflowID("tx-wf"):
        assert flow(1) == 2
    rows = attempt_rows(db, "tx-wf")
    assert [(r[0], r[1].rsplit(".", 1)[-1], r[5]) for r in rows] == [(1, "before", 1), (2, "insert", 1)]
    assert {(r[2], r[3], r[4]) for r in rows} == {("ledger-executor", owner_epoch(db, "tx-wf"), os.getpid())}


def test_a_transaction_retried_after_a_serialization_failure_records_two(ledger_on, db):
    tries: list[int] = []
    flow = a_step_then_a_transaction(tries)
    with SetWorkflowID("tx-retry-wf"):
        assert flow(-1) == 2
    assert len(tries) == 2
    # The first attempt's row stays although its transaction rolled back.
    assert [(r[0], r[5]) for r in attempt_rows(db, "tx-retry-wf")] == [(1, 1), (2, 1), (2, 2)]


def test_a_transaction_on_an_application_database_records_in_the_system_database(sys_url, db, app_url):
    launch_ledger(sys_url, application_database_url=app_url)
    try:
        tries: list[int] = []
        flow = a_step_then_a_transaction(tries)
        with SetWorkflowID("apptx-wf"):
            assert flow(-1) == 2
        assert [(r[0], r[5]) for r in attempt_rows(db, "apptx-wf")] == [(1, 1), (2, 1), (2, 2)]
    finally:
        DBOS.destroy(destroy_registry=True)


def test_a_datasource_transaction_records_one_row_per_attempt(ledger_on, db, app_url):
    ds = SQLAlchemyDatasource.create(sa_url(app_url))
    tries: list[str] = []

    @ds.transaction(name="add_item")
    def add_item(name: str, conflict: bool) -> int:
        tries.append(name)
        if conflict and tries.count(name) == 1:
            ds.sql_session().execute(sa.text("DO $$ BEGIN RAISE EXCEPTION 'planted' USING ERRCODE = '40001'; END $$"))
        ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
        return tries.count(name)

    @DBOS.workflow()
    def adding() -> int:
        return add_item("apple", False) * 10 + add_item("pear", True)

    with SetWorkflowID("ds-wf"):
        assert adding() == 12  # apple at its first attempt, pear at its second
    rows = attempt_rows(db, "ds-wf")
    assert [(r[0], r[1], r[5]) for r in rows] == [(1, "add_item", 1), (2, "add_item", 1), (2, "add_item", 2)]
    assert {(r[2], r[3], r[4]) for r in rows} == {("ledger-executor", owner_epoch(db, "ds-wf"), os.getpid())}
    ds.engine.dispose()


def test_an_async_datasource_transaction_records_one_row_per_attempt(ledger_on, db, app_url):
    ds = asyncio.run(AsyncSQLAlchemyDatasource.create(sa_url(app_url), engine_kwargs={"poolclass": NullPool}))
    tries: list[int] = []

    @ds.transaction(name="add_async")
    async def add_item() -> int:
        tries.append(1)
        if len(tries) == 1:
            await ds.sql_session().execute(sa.text("DO $$ BEGIN RAISE EXCEPTION 'planted' USING ERRCODE = '40001'; END $$"))
        return len(tries)

    @DBOS.workflow()
    async def adding() -> int:
        return await add_item()

    async def main() -> int:
        with SetWorkflowID("ads-wf"):
            return await adding()

    assert asyncio.run(main()) == 2
    rows = attempt_rows(db, "ads-wf")
    assert [(r[0], r[1], r[5]) for r in rows] == [(1, "add_async", 1), (1, "add_async", 2)]
    assert {(r[2], r[3], r[4]) for r in rows} == {("ledger-executor", owner_epoch(db, "ads-wf"), os.getpid())}


def test_off_by_default_transactions_and_datasources_write_nothing(dbos, db, app_url):
    ds = SQLAlchemyDatasource.create(sa_url(app_url))
    tries: list[int] = []
    flow = a_step_then_a_transaction(tries)

    @ds.transaction(name="add_item")
    def add_item() -> int:
        ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES ('fig')"))
        return 1

    @DBOS.workflow()
    def adding() -> int:
        return add_item()

    with SetWorkflowID("off-tx-wf"):
        assert flow(-1) == 2
    with SetWorkflowID("off-ds-wf"):
        assert adding() == 1
    with psycopg.connect(app_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM public.items").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid LIKE 'off-%'").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM dbos.pgfleet_step_attempts").fetchone()[0] == 0
    ds.engine.dispose()


def test_a_start_whose_row_waited_past_a_takeover_does_not_run_its_body(ledger_on, db, sys_url):
    """The ledger's insert is a round trip between the lease check and the body. Held up past a
    takeover (here by the takeover's own row lock; in a partition, by the cut link), the body
    must not run: the row records the database's "no" and the stale owner writes nothing more."""
    gate, ran = threading.Event(), []

    @DBOS.step()
    def effect() -> str:
        ran.append("effect")
        return "done"

    @DBOS.workflow()
    def guarded() -> str:
        gate.wait(30)  # workflow code, no step: the takeover below gets in before the step starts
        return effect()

    with SetWorkflowID("ledger-late-wf"):
        DBOS.start_workflow(guarded)
    wait_until(lambda: owner_epoch(db, "ledger-late-wf") is not None, "the workflow's row")
    epoch = owner_epoch(db, "ledger-late-wf")
    with psycopg.connect(sys_url) as takeover:  # a takeover in flight: it holds the row's lock
        takeover.execute("UPDATE dbos.workflow_status SET owner_epoch = owner_epoch + 1000 WHERE workflow_uuid = 'ledger-late-wf'")
        gate.set()
        wait_until(lambda: db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%%pgfleet_step_attempts%%'"
        ).fetchone()[0] == 1, "the ledger insert to wait for the takeover's lock")
        takeover.commit()
    rows = wait_until(lambda: db.execute(
        "SELECT function_id, owned FROM dbos.pgfleet_step_attempts WHERE workflow_uuid = 'ledger-late-wf'").fetchall(), "the ledger row")
    assert rows == [(1, False)]
    executor = DBOS._executor_or_raise("test")
    wait_until(lambda: epoch not in executor.running_epochs(), "the stale execution to stop")
    assert ran == [], "the body ran although its workflow had been taken over before it could start"
    assert db.execute("SELECT status, owner_epoch FROM dbos.workflow_status WHERE workflow_uuid = 'ledger-late-wf'").fetchone() \
        == ("PENDING", epoch + 1000)
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'ledger-late-wf'").fetchone()[0] == 0
