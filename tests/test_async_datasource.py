"""AsyncSQLAlchemyDatasource (issue #11): ``async def`` datasource transactions, awaited in async
workflows, keep the sync datasource's guarantees.

- A transaction whose workflow was taken over (its owner epoch bumped) or cancelled while its
  body ran commits nothing: the user's own table is what is checked, not only pgfleet's rows.
- A serialization failure (a real one: another transaction changed a row this one read) runs
  the transaction again; it commits once.
- A failing body's error is recorded once (datasource table and checkpoint) and replayed from
  there without running the body again; a replay returns the recorded outputs (from the
  checkpoint, or adopted from the datasource's table when the checkpoint was lost).
- A commit whose reply was lost counts once.
- An async workflow killed inside a transaction's body is recovered by a new process: each
  transaction commits once.
- Many workflows committing at once through a small system-database pool all finish: the
  ownership lock is held by a worker thread across the loop's commit, never by no thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import test_sql_transactions
from conftest import run_app, wait_until
from runtime import DBOS, AsyncSQLAlchemyDatasource, DBOSException, SetWorkflowID
from test_fence_hardening import run_in_thread
from test_lost_replies import Effects, within
from test_recovery import kill, wait_for_line
from test_sql_transactions import count, items, launch, lose_while_running, sa_url
from tests.faults.proxy import PgProxy

# The sync datasource tests' fixtures: a database of the application's (with public.items), and
# DBOS destroyed after each test.
app_url = test_sql_transactions.app_url
teardown = test_sql_transactions.teardown


def make_datasource(url: str) -> AsyncSQLAlchemyDatasource:
    """A datasource whose engine opens a connection per use (NullPool): these tests run
    several loops (asyncio.run, the executor's background loop for resumed workflows), and an
    asyncio connection is best not carried from a closed loop to the next."""
    return asyncio.run(AsyncSQLAlchemyDatasource.create(sa_url(url), engine_kwargs={"poolclass": NullPool}))


async def run_async(workflow: Callable[[], Any], workflow_id: str) -> Any:
    with SetWorkflowID(workflow_id):
        return await workflow()


def run(workflow: Callable[[], Any], workflow_id: str) -> Any:
    """Await ``workflow()`` under ``workflow_id`` on a loop of its own."""
    return asyncio.run(run_async(workflow, workflow_id))


def outputs(url: str, workflow_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT step_id, output IS NOT NULL, error IS NOT NULL FROM dbos.datasource_outputs WHERE workflow_id = %s ORDER BY step_id",
            (workflow_id,),
        ).fetchall()


def steps(db: psycopg.Connection, workflow_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT function_id, function_name, output IS NOT NULL, error IS NOT NULL FROM dbos.operation_outputs"
        " WHERE workflow_uuid = %s ORDER BY function_id",
        (workflow_id,),
    ).fetchall()


def rerun(db: psycopg.Connection, workflow_id: str) -> Any:
    """Run a finished workflow's body again (marked cancelled, then resumed): what it recorded
    is replayed."""
    db.execute("UPDATE dbos.workflow_status SET status = 'CANCELLED' WHERE workflow_uuid = %s", (workflow_id,))
    return DBOS.resume_workflow(workflow_id).get_result(timeout_seconds=30)


@pytest.mark.parametrize("loss", ["takeover", "cancel"])
def test_an_async_datasource_transaction_commits_nothing_after_a_takeover_or_cancel(sys_url, db, app_url, teardown, loss):
    launch(sys_url)
    ds = make_datasource(app_url)
    reached, release = threading.Event(), threading.Event()

    @ds.transaction()
    async def add_item():
        await ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES ('apple')"))
        reached.set()
        await asyncio.to_thread(release.wait, 10)  # the workflow is lost while the body is uncommitted
        return 1

    @DBOS.workflow()
    async def adding():
        return await add_item()

    outcome = run_in_thread(lambda: asyncio.run(adding()), "ads-fence")
    assert reached.wait(10)
    expected = lose_while_running(db, "ads-fence", loss)
    release.set()
    error = outcome()
    assert isinstance(error, expected), error
    assert items(app_url) == []  # the user's table: the body's row never committed
    assert outputs(app_url, "ads-fence") == []
    assert steps(db, "ads-fence") == []


def test_a_serialization_failure_runs_the_transaction_again_and_it_commits_once(sys_url, db, app_url, teardown):
    launch(sys_url)
    ds = make_datasource(app_url)
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.counters (name text PRIMARY KEY, n int NOT NULL)")
        conn.execute("INSERT INTO public.counters VALUES ('hits', 0)")
    seen: list[int] = []

    def another_transaction_adds_ten() -> None:
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute("UPDATE public.counters SET n = n + 10 WHERE name = 'hits'")

    @ds.transaction(name="bump")
    async def bump():
        session = ds.sql_session()
        n = (await session.execute(sa.text("SELECT n FROM public.counters WHERE name = 'hits'"))).scalar_one()
        seen.append(n)
        if len(seen) == 1:  # the row this transaction read changes under it: its update fails (40001)
            await asyncio.to_thread(another_transaction_adds_ten)
        await session.execute(sa.text("UPDATE public.counters SET n = n + 1 WHERE name = 'hits'"))
        return n + 1

    @DBOS.workflow()
    async def bumping():
        return await bump()

    assert run(bumping, "ads-conflict") == 11
    assert seen == [0, 10]  # the second attempt saw the other transaction's commit
    with psycopg.connect(app_url, autocommit=True) as conn:
        assert conn.execute("SELECT n FROM public.counters").fetchone()[0] == 11
    assert outputs(app_url, "ads-conflict") == [(1, True, False)]
    assert steps(db, "ads-conflict") == [(1, "bump", True, False)]


def test_a_failing_body_records_its_error_once_and_a_replay_raises_it_without_running(sys_url, db, app_url, teardown):
    launch(sys_url)
    ds = make_datasource(app_url)
    effects = Effects()

    @ds.transaction(name="failing")
    async def failing():
        effects.add("failing")
        await ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES ('mallory')"))
        raise ValueError("rolled back")

    @DBOS.workflow()
    async def failing_workflow():
        try:
            await failing()
        except ValueError as exc:
            return repr(exc)

    assert run(failing_workflow, "ads-error") == "ValueError('rolled back')"
    assert items(app_url) == []  # rolled back
    assert outputs(app_url, "ads-error") == [(1, False, True)]
    assert steps(db, "ads-error") == [(1, "failing", False, True)]
    # The checkpoint lost (the process died between the two commits): the error is adopted
    # from the datasource's table, and the body does not run again.
    db.execute("DELETE FROM dbos.operation_outputs WHERE workflow_uuid = 'ads-error'")
    assert rerun(db, "ads-error") == "ValueError('rolled back')"
    assert effects.calls == ["failing"]
    assert steps(db, "ads-error") == [(1, "failing", False, True)]
    ds_rows = count(app_url, "SELECT count(*) FROM dbos.datasource_outputs WHERE workflow_id = 'ads-error'")
    assert ds_rows == 1


def test_a_replay_returns_the_recorded_outputs_without_running_the_bodies(sys_url, db, app_url, teardown):
    launch(sys_url)
    ds = make_datasource(app_url)
    effects = Effects()

    @ds.transaction(name="adder")
    async def add_item(name):
        effects.add(name)
        await ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
        return len(effects.calls)

    @DBOS.workflow()
    async def adding():
        return [await add_item("pear"), await add_item("plum")]

    assert run(adding, "ads-replay") == [1, 2]
    assert rerun(db, "ads-replay") == [1, 2]  # from the checkpoints
    # The second checkpoint lost: that output is adopted from the datasource's table.
    db.execute("DELETE FROM dbos.operation_outputs WHERE workflow_uuid = 'ads-replay' AND function_id = 2")
    assert rerun(db, "ads-replay") == [1, 2]
    assert effects.calls == ["pear", "plum"]
    assert items(app_url) == ["pear", "plum"]
    assert outputs(app_url, "ads-replay") == [(1, True, False), (2, True, False)]
    assert steps(db, "ads-replay") == [(1, "adder", True, False), (2, "adder", True, False)]


def test_an_async_datasource_commit_whose_reply_was_lost_counts_once(sys_url, db, app_url, teardown):
    launch(sys_url)
    effects = Effects()
    with PgProxy.start(app_url) as proxy:
        ds = make_datasource(proxy.url)

        @ds.transaction(name="add_item")
        async def add_item(name):
            effects.add(name)
            await ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
            return name.upper()

        @DBOS.workflow()
        async def adding():
            return await add_item("lime")

        rule = proxy.drop_reply("INSERT INTO public.items")
        assert within(lambda: run(adding, "ads-lost"), "an async datasource transaction whose commit reply was lost") == "LIME"
        assert rule.fired.is_set()
    assert effects.calls == ["lime"]  # adopted from the datasource's outputs table
    assert items(app_url) == ["lime"]
    assert steps(db, "ads-lost") == [(1, "add_item", True, False)]


def test_many_workflows_commit_at_once_through_a_small_pool(sys_url, db, app_url, teardown):
    """More workflows commit at once than the system database's pool has connections (and the
    executor worker threads): each commit holds its ownership lock in a thread, so all finish."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "ads-many", "system_database_url": sys_url, "executor_id": "ads-executor", "sys_db_pool_size": 4})
    DBOS.launch()
    ds = make_datasource(app_url)

    @ds.transaction()
    async def add_item(name):
        await ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
        return name

    @DBOS.workflow()
    async def adding(name):
        return await add_item(name)

    async def main() -> list[str]:
        async def one(i: int) -> str:
            with SetWorkflowID(f"ads-many-{i:02d}"):
                return await adding(f"item-{i:02d}")

        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(24))), timeout=120)

    names = [f"item-{i:02d}" for i in range(24)]
    assert asyncio.run(main()) == names
    assert items(app_url) == names
    assert count(sys_url, "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid LIKE 'ads-many-%'") == 24


def test_cancelling_the_awaiting_task_during_the_commit_leaves_the_commit_and_its_checkpoint_together(sys_url, db, app_url, teardown):
    """Once the commit has begun, the awaiting task's cancellation waits for it and for its
    checkpoint: a committed row never lacks its checkpoint because of a cancelled await. The
    commit is held at COMMIT (a deferred trigger waits for an advisory lock the test holds)."""
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION public.wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER items_wait AFTER INSERT ON public.items DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION public.wait_at_commit()"
        )
    launch(sys_url)
    ds = make_datasource(app_url)

    @ds.transaction(name="add_item")
    async def add_item():
        await ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES ('apple')"))
        return 1

    @DBOS.workflow()
    async def adding():
        return await add_item()

    def commit_waits() -> bool:
        with psycopg.connect(app_url, autocommit=True) as conn:
            return bool(conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query = 'COMMIT'"
            ).fetchone()[0])

    at_end: list[list[tuple[Any, ...]]] = []
    with psycopg.connect(app_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(4242)")

        async def main() -> BaseException | None:
            task = asyncio.ensure_future(run_async(adding, "ads-cancel"))
            # What was checkpointed at the moment the task ended (a plain query, on purpose).
            task.add_done_callback(lambda _: at_end.append(steps(db, "ads-cancel")))
            await asyncio.to_thread(wait_until, commit_waits, "the datasource commit waiting at COMMIT")
            task.cancel()
            await asyncio.sleep(0)  # the task takes its cancellation now, while the commit waits
            await asyncio.to_thread(holder.execute, "SELECT pg_advisory_unlock(4242)")
            try:
                await asyncio.wait_for(task, timeout=30)
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                return exc
            return None

        error = asyncio.run(main())
    assert isinstance(error, asyncio.CancelledError), error
    assert at_end == [[(1, "add_item", True, False)]]  # the cancellation was raised after the checkpoint
    assert items(app_url) == ["apple"]
    assert outputs(app_url, "ads-cancel") == [(1, True, False)]
    assert steps(db, "ads-cancel") == [(1, "add_item", True, False)]


def test_bad_arguments_are_refused_with_errors_that_name_them():
    sync_engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connects
    with pytest.raises(DBOSException, match="needs an AsyncEngine"):
        AsyncSQLAlchemyDatasource(database_url="", engine_kwargs={}, engine=sync_engine, schema=None, serializer=None)
    with pytest.raises(DBOSException, match="SQLite is not supported"):
        asyncio.run(AsyncSQLAlchemyDatasource.create("sqlite+aiosqlite:///x.db"))
    ds = AsyncSQLAlchemyDatasource(
        database_url="postgresql://nobody@127.0.0.1:1/none", engine_kwargs={}, engine=None, schema=None, serializer=None
    )
    with pytest.raises(DBOSException, match="AsyncDatasource.transaction requires a coroutine function, but .*sync_body is not"):

        @ds.transaction()
        def sync_body():
            return 1


def test_a_lost_connection_while_looking_for_an_earlier_outcome_is_retried(sys_url, db, app_url, teardown):
    """Before its first attempt a datasource step reads the outputs table (an execution that
    committed and died before its checkpoint left its outcome there only): that read losing its
    connection is retried like an attempt, not raised."""
    launch(sys_url)
    effects = Effects()
    with PgProxy.start(app_url) as proxy:
        ds = make_datasource(proxy.url)

        @ds.transaction(name="add_item")
        async def add_item(name):
            effects.add(name)
            await ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
            return name.upper()

        @DBOS.workflow()
        async def adding():
            return await add_item("fig")

        rule = proxy.drop_reply("SELECT output, error, serialization")
        assert within(lambda: run(adding, "ads-precheck"), "a datasource step whose first read lost its connection") == "FIG"
        assert rule.fired.is_set()
    assert effects.calls == ["fig"]
    assert items(app_url) == ["fig"]
    assert steps(db, "ads-precheck") == [(1, "add_item", True, False)]


def test_a_killed_async_workflow_is_recovered_and_its_datasource_steps_commit_once(sys_url, db, app_url, tmp_path):
    """SIGKILL inside the second transaction's body (uncommitted), then a new process: the first
    transaction is replayed, the second runs again, the third runs once; each row commits once."""
    ledger = tmp_path / "ledger"
    first = run_app("async_datasource_app.py", "start", sys_url, sa_url(app_url), str(ledger))
    wait_for_line(ledger, "two")
    kill(first)
    second = run_app("async_datasource_app.py", "recover", sys_url, sa_url(app_url), str(ledger))
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "ads-crash ['one', 'two', 'three']" in out
    runs: dict[str, list[int]] = {}
    for name, pid in (line.split() for line in ledger.read_text().splitlines()):
        runs.setdefault(name, []).append(int(pid))
    assert runs == {"one": [first.pid], "two": [first.pid, second.pid], "three": [second.pid]}
    assert items(app_url) == ["one", "three", "two"]
    assert outputs(app_url, "ads-crash") == [(1, True, False), (2, True, False), (3, True, False)]
    assert steps(db, "ads-crash") == [(1, "add_item", True, False), (2, "add_item", True, False), (3, "add_item", True, False)]
