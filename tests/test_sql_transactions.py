"""@DBOS.transaction with DBOS's SQLAlchemy Session, and SQLAlchemyDatasource: the cluster's
guarantees hold for both (issue #10 item 2).

- A transaction whose workflow was taken over (its owner epoch bumped) or cancelled while its
  body ran commits none of its rows: on the system database (no application_database_url), and
  a datasource's likewise (tests/test_fence_hardening.py has the application-database case).
  The user's own table is what is checked, not only pgfleet's rows.
- A commit whose reply was lost (tests/faults/proxy.py) counts once: the retry finds the
  outcome the lost attempt committed and does not run the body again (system database,
  application database, datasource).
- A body that commits itself raises DBOS's error, logs DBOS's hint, and commits nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from psycopg.conninfo import make_conninfo

from runtime import DBOS, DBOSAwaitedWorkflowCancelledError, DBOSWorkflowFencedError, SetWorkflowID, SQLAlchemyDatasource
from test_fence_hardening import run_in_thread
from test_fencing import take_over
from test_lost_replies import Effects, within
from tests.faults.proxy import PgProxy

EXECUTOR_ID = "tx-executor"


@pytest.fixture
def app_url(pg_server_url: str) -> Iterator[str]:
    """A database of the application's own (an application database or a datasource's), with
    a table of items."""
    name = f"pgfleet_sqltx_{os.getpid()}_{int(time.time() * 1000)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(pg_server_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.items (name text)")
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def launch(system_url: str, application_url: str | None = None) -> None:
    DBOS.destroy(destroy_registry=True)
    config: dict[str, Any] = {"name": "sqltx", "system_database_url": system_url, "executor_id": EXECUTOR_ID}
    if application_url is not None:
        config["application_database_url"] = application_url
    DBOS(config=config)  # type: ignore[arg-type]
    DBOS.launch()


@pytest.fixture
def teardown() -> Iterator[None]:
    yield
    DBOS.destroy(destroy_registry=True)


def items(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM public.items ORDER BY name")]


def count(url: str, query: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchone()[0]


def sa_url(url: str) -> str:
    """The SQLAlchemy form of a libpq URL or conninfo string."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    return str(sa.URL.create(
        "postgresql+psycopg", username=params.get("user"), password=params.get("password"), host=params.get("host"),
        port=int(params["port"]) if params.get("port") else None, database=params.get("dbname"),
        query={k: v for k, v in params.items() if k in ("sslmode", "gssencmode")},
    ))


def lose_while_running(db: psycopg.Connection, workflow_id: str, loss: str) -> type[BaseException]:
    """Take the workflow over (bump its owner epoch) or cancel it; the error its direct caller
    gets: the fence, or (as in DBOS, whose caller adopts the recorded outcome) the awaited
    workflow's cancellation, while its body saw DBOSWorkflowCancelledError."""
    if loss == "takeover":
        take_over(db, workflow_id)
        return DBOSWorkflowFencedError
    DBOS.cancel_workflow(workflow_id)
    return DBOSAwaitedWorkflowCancelledError


# -- fencing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["takeover", "cancel"])
def test_a_system_database_transaction_commits_nothing_after_a_takeover_or_cancel(sys_url, db, teardown, loss):
    db.execute("CREATE TABLE public.items (name text)")
    launch(sys_url)
    reached, release = threading.Event(), threading.Event()

    @DBOS.transaction()
    def add_item():
        DBOS.sql_session.execute(sa.text("INSERT INTO public.items VALUES ('apple')"))
        reached.set()
        release.wait(10)  # the workflow is lost while the body is still uncommitted
        return 1

    @DBOS.workflow()
    def adding():
        return add_item()

    outcome = run_in_thread(adding, "sys-fence")
    assert reached.wait(10)
    expected = lose_while_running(db, "sys-fence", loss)
    release.set()
    error = outcome()
    assert isinstance(error, expected), error
    assert items(sys_url) == []  # the user's table: the body's row never committed
    assert count(sys_url, "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'sys-fence'") == 0


@pytest.mark.parametrize("loss", ["takeover", "cancel"])
def test_a_datasource_transaction_commits_nothing_after_a_takeover_or_cancel(sys_url, db, app_url, teardown, loss):
    launch(sys_url)
    ds = SQLAlchemyDatasource.create(sa_url(app_url))
    reached, release = threading.Event(), threading.Event()

    @ds.transaction()
    def add_item():
        ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES ('apple')"))
        reached.set()
        release.wait(10)
        return 1

    @DBOS.workflow()
    def adding():
        return add_item()

    outcome = run_in_thread(adding, "ds-fence")
    assert reached.wait(10)
    expected = lose_while_running(db, "ds-fence", loss)
    release.set()
    error = outcome()
    assert isinstance(error, expected), error
    assert items(app_url) == []
    assert count(app_url, "SELECT count(*) FROM dbos.datasource_outputs") == 0
    assert count(sys_url, "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'ds-fence'") == 0
    ds.engine.dispose()


def test_a_datasource_step_replays_its_recorded_outcome_without_running_again(sys_url, db, app_url, teardown):
    """A datasource outcome whose checkpoint was lost (the process died between the commits)
    is adopted from the datasource's table on resume: the body does not run again."""
    launch(sys_url)
    ds = SQLAlchemyDatasource.create(sa_url(app_url))
    effects = Effects()

    @ds.transaction(name="adder")
    def add_item(name):
        effects.add(name)
        ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
        return len(effects.calls)

    @DBOS.workflow()
    def adding():
        return add_item("pear")

    with SetWorkflowID("ds-adopt"):
        assert adding() == 1
    db.execute("DELETE FROM dbos.operation_outputs WHERE workflow_uuid = 'ds-adopt'")
    db.execute("UPDATE dbos.workflow_status SET status = 'CANCELLED' WHERE workflow_uuid = 'ds-adopt'")
    assert DBOS.resume_workflow("ds-adopt").get_result(timeout_seconds=30) == 1
    assert effects.calls == ["pear"]
    assert items(app_url) == ["pear"]
    steps = db.execute("SELECT function_name, output IS NOT NULL FROM dbos.operation_outputs WHERE workflow_uuid = 'ds-adopt'").fetchall()
    assert steps == [("adder", True)]
    ds.engine.dispose()


# -- lost replies ----------------------------------------------------------------------------------


def test_a_system_database_transaction_whose_commit_reply_was_lost_counts_once(sys_url, db, teardown):
    db.execute("CREATE TABLE public.items (name text)")
    effects = Effects()
    with PgProxy.start(sys_url) as proxy:
        launch(proxy.url)

        @DBOS.transaction()
        def add_item(name):
            effects.add(name)
            DBOS.sql_session.execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
            return name.upper()

        @DBOS.workflow()
        def adding():
            return add_item("fig")

        def start() -> str:
            with SetWorkflowID("sys-lost"):
                return adding()

        rule = proxy.drop_reply("INSERT INTO public.items")
        assert within(start, "a transaction whose commit reply was lost") == "FIG"
        assert rule.fired.is_set()
        DBOS.destroy(destroy_registry=True)
    assert effects.calls == ["fig"]  # the retry found the committed checkpoint: no second run
    assert items(sys_url) == ["fig"]


def test_an_application_database_transaction_whose_commit_reply_was_lost_counts_once(sys_url, app_url, teardown):
    effects = Effects()
    with PgProxy.start(app_url) as proxy:
        launch(sys_url, proxy.url)

        @DBOS.transaction()
        def add_item(name):
            effects.add(name)
            DBOS.sql_session.execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
            return name.upper()

        @DBOS.workflow()
        def adding():
            return add_item("kiwi")

        def start() -> str:
            with SetWorkflowID("app-lost"):
                return adding()

        rule = proxy.drop_reply("INSERT INTO public.items")
        assert within(start, "an application-database transaction whose commit reply was lost") == "KIWI"
        assert rule.fired.is_set()
        DBOS.destroy(destroy_registry=True)
    assert effects.calls == ["kiwi"]  # adopted from dbos.transaction_outputs
    assert items(app_url) == ["kiwi"]
    assert count(sys_url, "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'app-lost'") == 1


def test_a_datasource_transaction_whose_commit_reply_was_lost_counts_once(sys_url, app_url, teardown):
    effects = Effects()
    launch(sys_url)
    with PgProxy.start(app_url) as proxy:
        ds = SQLAlchemyDatasource.create(sa_url(proxy.url))

        @ds.transaction()
        def add_item(name):
            effects.add(name)
            ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
            return name.upper()

        @DBOS.workflow()
        def adding():
            return add_item("lime")

        def start() -> str:
            with SetWorkflowID("ds-lost"):
                return adding()

        rule = proxy.drop_reply("INSERT INTO public.items")
        assert within(start, "a datasource transaction whose commit reply was lost") == "LIME"
        assert rule.fired.is_set()
        ds.engine.dispose()
    assert effects.calls == ["lime"]  # adopted from the datasource's outputs table
    assert items(app_url) == ["lime"]
    assert count(sys_url, "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'ds-lost'") == 1


def test_a_datasource_step_whose_first_read_lost_its_connection_retries_it(sys_url, app_url, teardown):
    """The read of the outputs table before a datasource step's first attempt (for an outcome a
    dead execution committed without its checkpoint) is retried when its connection fails."""
    effects = Effects()
    launch(sys_url)
    with PgProxy.start(app_url) as proxy:
        ds = SQLAlchemyDatasource.create(sa_url(proxy.url))

        @ds.transaction()
        def add_item(name):
            effects.add(name)
            ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
            return name.upper()

        @DBOS.workflow()
        def adding():
            return add_item("fig")

        def start() -> str:
            with SetWorkflowID("ds-precheck"):
                return adding()

        rule = proxy.drop_reply("SELECT output, error, serialization")
        assert within(start, "a datasource step whose first read lost its connection") == "FIG"
        assert rule.fired.is_set()
        ds.engine.dispose()
    assert effects.calls == ["fig"]
    assert items(app_url) == ["fig"]


# -- the Session -------------------------------------------------------------------------------------


def test_a_body_that_commits_itself_fails_as_in_dbos_and_commits_nothing(dbos, db, caplog):
    db.execute("CREATE TABLE public.items (name text)")

    @DBOS.transaction()
    def commits_itself():
        DBOS.sql_session.execute(sa.text("INSERT INTO public.items VALUES ('plum')"))
        DBOS.sql_session.commit()

    @DBOS.workflow()
    def committing():
        commits_itself()

    with SetWorkflowID("self-commit"), pytest.raises(sa.exc.InvalidRequestError, match="Can't operate on closed transaction"):
        committing()
    assert "InvalidRequestError in transaction" in caplog.text and "Do not call commit() or rollback()" in caplog.text
    # DBOS commits what came before the body's commit(); pgfleet commits nothing (README).
    assert items_in(db) == []
    error = db.execute("SELECT error FROM dbos.operation_outputs WHERE workflow_uuid = 'self-commit'").fetchone()
    assert error is not None and error[0] is not None


def items_in(db: psycopg.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM public.items")]


def test_pooled_connections_keep_pgfleet_row_shape_after_sessions(dbos, db):
    """SQLAlchemy borrowed pgfleet's pooled connections: they still return dict rows and
    psycopg's own JSON loading, and carry no SQLAlchemy notice handler afterwards."""

    @DBOS.transaction()
    def reads_json():
        return DBOS.sql_session.execute(sa.text("SELECT json_build_object('a', 1)::jsonb")).scalar_one()

    @DBOS.workflow()
    def reading():
        return [reads_json() for _ in range(3)]

    assert reading() == [{"a": 1}] * 3
    database = DBOS._process().executor.db
    with database.pooled() as conn:
        row = conn.execute("SELECT json_build_object('b', 2)::jsonb AS j").fetchone()
        assert row == {"j": {"b": 2}}
        assert not conn._notice_handlers


def test_a_serialization_failure_between_two_workflows_reruns_one_transaction(dbos, db):
    """Two SERIALIZABLE transactions read a counter, then both write it: one fails with 40001
    (at its UPDATE or its COMMIT) and runs again, as DBOS retries it. Each adds exactly once."""
    db.execute("CREATE TABLE public.counter (n int NOT NULL)")
    db.execute("INSERT INTO public.counter VALUES (0)")
    both_read = threading.Barrier(2, timeout=10)
    attempts: list[str] = []

    @DBOS.transaction()
    def bump():
        first = DBOS.workflow_id not in attempts
        attempts.append(DBOS.workflow_id)
        n = DBOS.sql_session.execute(sa.text("SELECT n FROM public.counter")).scalar_one()
        if first:
            both_read.wait()  # both snapshots saw the same n before either writes
        DBOS.sql_session.execute(sa.text("UPDATE public.counter SET n = :n"), {"n": n + 1})
        return n + 1

    @DBOS.workflow()
    def bumping():
        return bump()

    outcomes = [run_in_thread(bumping, f"bump-{i}") for i in range(2)]
    assert [outcome() for outcome in outcomes] == [None, None]
    assert db.execute("SELECT n FROM public.counter").fetchone()[0] == 2
    assert len(attempts) > 2  # at least one attempt ran again
    results = db.execute(
        "SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE 'bump-%' AND status = 'SUCCESS'"
    ).fetchone()[0]
    assert results == 2


def test_a_datasource_keeps_its_outputs_in_its_own_serializer(sys_url, db, app_url, teardown):
    """As DBOS's: the outputs table holds values in the datasource's serializer (named in its
    serialization column); a replay from that table reads them back with it."""
    import json

    from runtime import Serializer

    class JSONSerializer(Serializer):
        def serialize(self, data):
            return json.dumps(data)

        def deserialize(self, serialized_data):
            return json.loads(serialized_data)

        def name(self):
            return "test_json"

    launch(sys_url)
    ds = SQLAlchemyDatasource.create(sa_url(app_url), serializer=JSONSerializer())
    effects = Effects()

    @ds.transaction()
    def totals(name):
        effects.add(name)
        return {"name": name, "n": 3}

    @DBOS.workflow()
    def totalling():
        return totals("fig")

    with SetWorkflowID("ds-json"):
        assert totalling() == {"name": "fig", "n": 3}
    with psycopg.connect(app_url, autocommit=True) as conn:
        assert conn.execute("SELECT output, serialization FROM dbos.datasource_outputs").fetchone() == (
            '{"name": "fig", "n": 3}', "test_json",
        )
    db.execute("DELETE FROM dbos.operation_outputs WHERE workflow_uuid = 'ds-json'")
    db.execute("UPDATE dbos.workflow_status SET status = 'CANCELLED' WHERE workflow_uuid = 'ds-json'")
    assert DBOS.resume_workflow("ds-json").get_result(timeout_seconds=30) == {"name": "fig", "n": 3}
    assert effects.calls == ["fig"]
    ds.engine.dispose()
