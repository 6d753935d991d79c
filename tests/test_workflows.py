"""Workflows and steps in one process: results, checkpoints, replay, ids, children, errors."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from runtime import (
    DBOS,
    DBOSConfiguredInstance,
    DBOSConflictingWorkflowError,
    DBOSMaxStepRetriesExceeded,
    DBOSNonExistentWorkflowError,
    Queue,
    SetWorkflowID,
)
from runtime.serialization import serialize


def step_rows(db, workflow_id):
    return db.execute(
        "SELECT function_id, function_name, child_workflow_id, output IS NOT NULL, error IS NOT NULL "
        "FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY function_id",
        (workflow_id,),
    ).fetchall()


def test_seed_process_order_runs_and_checkpoints_each_step(dbos, db):
    calls = []

    @DBOS.step()
    def charge_payment(order_id: str):
        calls.append("charge")
        return {"charged": True}

    @DBOS.step()
    def reserve_inventory(order_id: str):
        calls.append("reserve")
        return {"reserved": True}

    @DBOS.step()
    def ship_order(order_id: str):
        calls.append("ship")

    @DBOS.workflow()
    def process_order(order_id: str):
        charge_payment(order_id)
        reserve_inventory(order_id)
        ship_order(order_id)
        return {"order_id": order_id, "status": "completed"}

    with SetWorkflowID("order-123"):
        assert process_order("order-123") == {"order_id": "order-123", "status": "completed"}
    assert calls == ["charge", "reserve", "ship"]
    assert step_rows(db, "order-123") == [
        (1, "test_seed_process_order_runs_and_checkpoints_each_step.<locals>.charge_payment", None, True, False),
        (2, "test_seed_process_order_runs_and_checkpoints_each_step.<locals>.reserve_inventory", None, True, False),
        (3, "test_seed_process_order_runs_and_checkpoints_each_step.<locals>.ship_order", None, True, False),
    ]
    status, executor, serialization, attempts = db.execute(
        "SELECT status, executor_id, serialization, recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid = 'order-123'"
    ).fetchone()
    assert (status, executor, serialization, attempts) == ("SUCCESS", "test-executor", "py_pickle", 1)

    # Same id again: the recorded result, and no step runs again.
    with SetWorkflowID("order-123"):
        assert process_order("order-123") == {"order_id": "order-123", "status": "completed"}
    assert calls == ["charge", "reserve", "ship"]


def test_start_workflow_handle_and_status(dbos):
    @DBOS.step()
    def add(a, b):
        return a + b

    @DBOS.workflow()
    def summing(a, b):
        return add(a, b) * 10

    handle = DBOS.start_workflow(summing, 2, b=3)
    assert handle.get_result() == 50
    status = handle.get_status()
    assert status.status == "SUCCESS"
    assert status.workflow_id == handle.get_workflow_id()
    assert status.input == {"args": (2,), "kwargs": {"b": 3}}
    assert status.output == 50
    assert DBOS.get_workflow_status(handle.workflow_id).status == "SUCCESS"
    assert DBOS.retrieve_workflow(handle.workflow_id).get_result() == 50
    assert DBOS.get_workflow_status("no-such-workflow") is None
    with pytest.raises(DBOSNonExistentWorkflowError):
        DBOS.retrieve_workflow("no-such-workflow")


def test_workflow_error_is_recorded_and_raised_again(dbos, db):
    runs = []

    @DBOS.workflow()
    def failing(x):
        runs.append(x)
        raise KeyError(f"missing {x}")

    with SetWorkflowID("fails-1"), pytest.raises(KeyError, match="missing 7"):
        failing(7)
    with SetWorkflowID("fails-1"), pytest.raises(KeyError, match="missing 7"):
        failing(7)
    assert runs == [7]
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid='fails-1'").fetchone()[0] == "ERROR"


def test_step_error_is_checkpointed_and_replayed(dbos, db):
    @DBOS.step()
    def explode():
        raise ValueError("boom")

    @DBOS.workflow()
    def catches():
        try:
            explode()
        except ValueError as exc:
            return f"caught {exc}"

    with SetWorkflowID("catch-1"):
        assert catches() == "caught boom"
    [(fid, _, _, has_output, has_error)] = step_rows(db, "catch-1")
    assert (fid, has_output, has_error) == (1, False, True)


def test_context_ids_and_logger(dbos, caplog):
    seen = {}

    @DBOS.step()
    def inside_step():
        seen["step_id"] = DBOS.step_id
        seen["step_wf"] = DBOS.workflow_id

    @DBOS.workflow()
    def ctx_workflow():
        ctx = DBOS.get_context()
        seen["ctx_wf"] = ctx.workflow_id
        seen["user"] = ctx.authenticated_user
        inside_step()
        DBOS.logger.info("processing workflow")
        return DBOS.workflow_id

    caplog.set_level("INFO", logger="dbos")
    with SetWorkflowID("ctx-1"):
        assert ctx_workflow() == "ctx-1"
    assert seen == {"ctx_wf": "ctx-1", "user": None, "step_id": 1, "step_wf": "ctx-1"}
    messages = [r.getMessage() for r in caplog.records if r.name == "dbos"]
    assert any("processing workflow" in m and "workflow_id='ctx-1'" in m and "executor_id='test-executor'" in m for m in messages)
    assert DBOS.workflow_id is None


def test_logger_formats_printf_style_arguments_as_the_standard_library_does(dbos, caplog):
    """DBOS.logger is a stdlib Logger in DBOS, and DBOS programs pass %-style arguments; a
    template they do not fit is logged as it stands, never raised at the call."""

    @DBOS.workflow()
    def logs_with_arguments() -> None:
        DBOS.logger.info("charged %s for %d items", "EUR 5", 3)
        DBOS.logger.info("%(who)s paid", {"who": "ana"})
        DBOS.logger.info("100%% of %s", "them")
        DBOS.logger.info("needs two: %s %s", "one")

    caplog.set_level("INFO", logger="dbos")
    with SetWorkflowID("printf-1"):
        logs_with_arguments()
    messages = [r.getMessage() for r in caplog.records if r.name == "dbos" and "printf-1" in r.getMessage()]
    assert [m.split("' ", 1)[0] for m in messages] == [
        "event='charged EUR 5 for 3 items", "event='ana paid", "event='100% of them", "event='needs two: %s %s",
    ]
    assert "positional_args=('one',)" in messages[3]
    assert all("workflow_id='printf-1'" in m for m in messages)


def test_log_records_name_the_line_that_logged_not_structlog(dbos, caplog):
    """A formatter's %(filename)s:%(lineno)d (DBOS's own console format has them) and OTLP's
    code attributes point at the caller of DBOS.logger and of pgfleet's loggers."""
    from sysdb.logs import get_logger

    caplog.set_level("INFO")
    DBOS.logger.info("from the test")
    get_logger("pgfleet.test").warning("from pgfleet's side")
    try:
        raise ValueError("logged with its traceback")
    except ValueError:
        DBOS.logger.exception("caught")
    records = [r for r in caplog.records if r.name in ("dbos", "pgfleet.test")]
    assert [(r.filename, r.funcName) for r in records] == [(__file__.rsplit("/", 1)[-1], "test_log_records_name_the_line_that_logged_not_structlog")] * 3
    assert records[0].pgfleet_event["event"] == "from the test"  # the fields, beside the text


def test_child_workflows_direct_and_started_get_parent_n_ids(dbos, db):
    @DBOS.step()
    def perform_task(task):
        return task.upper()

    @DBOS.workflow()
    def child_workflow(task: str):
        return perform_task(task)

    @DBOS.step()
    def do_something_else():
        return 1

    @DBOS.workflow()
    def parent_workflow():
        result1 = child_workflow("task1")
        handle = DBOS.start_workflow(child_workflow, "task2")
        do_something_else()
        result2 = handle.get_result()
        return [result1, result2]

    with SetWorkflowID("parent"):
        assert parent_workflow() == ["TASK1", "TASK2"]
    name = "test_child_workflows_direct_and_started_get_parent_n_ids.<locals>"
    assert step_rows(db, "parent") == [
        (1, f"{name}.child_workflow", "parent-1", False, False),
        (2, "DBOS.getResult", "parent-1", True, False),
        (3, f"{name}.child_workflow", "parent-3", False, False),
        (4, f"{name}.do_something_else", None, True, False),
        (5, "DBOS.getResult", "parent-3", True, False),
    ]
    parents = dict(db.execute("SELECT workflow_uuid, parent_workflow_id FROM dbos.workflow_status WHERE workflow_uuid LIKE 'parent-%'").fetchall())
    assert parents == {"parent-1": "parent", "parent-3": "parent"}


def test_step_retries_with_backoff_then_gives_up(dbos, db):
    attempts = []

    @DBOS.step(retries_allowed=True, interval_seconds=0.01, max_attempts=3, backoff_rate=2.0)
    def flaky(succeed_on):
        attempts.append(time.monotonic())
        if len(attempts) < succeed_on:
            raise ConnectionError(f"attempt {len(attempts)}")
        return len(attempts)

    @DBOS.workflow()
    def uses_flaky(succeed_on):
        return flaky(succeed_on)

    assert uses_flaky(3) == 3
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.01 and gaps[1] >= 0.02

    attempts.clear()
    with SetWorkflowID("exhausted"), pytest.raises(DBOSMaxStepRetriesExceeded) as info:
        uses_flaky(10)
    assert len(attempts) == 3
    assert [str(e) for e in info.value.errors] == ["attempt 1", "attempt 2", "attempt 3"]
    # Only the final outcome is checkpointed: one step row.
    assert len(step_rows(db, "exhausted")) == 1


def test_should_retry_false_stops_at_first_error(dbos):
    attempts = []

    @DBOS.step(retries_allowed=True, interval_seconds=0, max_attempts=5, should_retry=lambda e: not isinstance(e, PermissionError))
    def denied():
        attempts.append(1)
        raise PermissionError("no")

    @DBOS.workflow()
    def wf():
        return denied()

    with pytest.raises(PermissionError):
        wf()
    assert len(attempts) == 1


def test_same_id_different_function_conflicts(dbos):
    @DBOS.workflow()
    def first():
        return 1

    @DBOS.workflow()
    def second():
        return 2

    with SetWorkflowID("shared-id"):
        assert first() == 1
    with SetWorkflowID("shared-id"), pytest.raises(DBOSConflictingWorkflowError, match="different function name"):
        second()


def test_a_child_started_under_a_conflicting_id_takes_dbos_positions_and_records_its_outcome(dbos, db):
    """A child called under an id that another function holds records the conflict at the
    call's result position, and records no start; a child started or enqueued so records
    nothing. All take the positions DBOS takes (a called child two, the others one), so a
    workflow recorded by either engine replays on the other. pgfleet wrote a start step naming
    the other function's workflow as the child, and its positions after a called child's
    conflict were one short."""
    queue = Queue("conflicts-q")

    @DBOS.workflow()
    def holder() -> int:
        return 1

    @DBOS.workflow()
    def other() -> int:
        return 2

    @DBOS.workflow()
    def parent() -> list[str]:
        seen = []
        for start in (other, lambda: DBOS.start_workflow(other).get_result(), lambda: queue.enqueue(other).get_result()):
            try:
                with SetWorkflowID("held-id"):
                    start()
            except DBOSConflictingWorkflowError as exc:
                seen.append(type(exc).__name__)
        seen.append(str(other()))
        return seen

    with SetWorkflowID("held-id"):
        holder()
    for _ in range(2):  # the first execution, then a replay of it
        with SetWorkflowID("conflicted-parent"):
            assert parent() == ["DBOSConflictingWorkflowError"] * 3 + ["2"]
    steps = db.execute(
        "SELECT function_id, function_name, child_workflow_id, error IS NOT NULL FROM dbos.operation_outputs "
        "WHERE workflow_uuid = 'conflicted-parent' ORDER BY function_id"
    ).fetchall()
    assert steps == [(2, "DBOS.getResult", "held-id", True), (5, other.__qualname__, "conflicted-parent-5", False),
                     (6, "DBOS.getResult", "conflicted-parent-5", False)]


def test_same_id_in_two_threads_runs_body_once(dbos):
    runs = []
    gate = threading.Event()

    @DBOS.step()
    def slow():
        gate.wait(5)
        return "done"

    @DBOS.workflow()
    def once():
        runs.append(threading.current_thread().name)
        return slow()

    results = []

    def call():
        with SetWorkflowID("only-once"):
            results.append(once())

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in threads:
        t.join(10)
    assert results == ["done"] * 4
    assert len(runs) == 1


def test_steps_outside_workflows_are_plain_calls(dbos, db):
    @DBOS.step()
    def plain(x):
        return x + 1

    assert plain(1) == 2
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs").fetchone()[0] == 0


def test_durable_sleep_records_wake_time(dbos, db):
    @DBOS.workflow()
    def sleeper():
        DBOS.sleep(0.2)
        return "rested"

    started = time.monotonic()
    with SetWorkflowID("sleeper"):
        assert sleeper() == "rested"
    assert time.monotonic() - started >= 0.2
    name, output, serialization = db.execute(
        "SELECT function_name, output, serialization FROM dbos.operation_outputs WHERE workflow_uuid='sleeper'"
    ).fetchone()
    assert (name, serialization) == ("DBOS.sleep", "portable_json")
    assert abs(float(output) - time.time()) < 5


def test_dbos_class_methods(dbos, db):
    @DBOS.dbos_class()
    class Greeter(DBOSConfiguredInstance):
        def __init__(self, greeting):
            self.greeting = greeting
            super().__init__(config_name=f"greeter-{greeting}")

        @DBOS.workflow()
        def greet(self, name):
            return self.shout(f"{self.greeting} {name}")

        @DBOS.step()
        def shout(self, text):
            return text.upper()

        @classmethod
        @DBOS.workflow()
        def kind(cls, x):
            return f"{cls.__name__}:{x}"

        @staticmethod
        @DBOS.workflow()
        def static(x):
            return x * 2

    greeter = Greeter("hello")
    with SetWorkflowID("greet-1"):
        assert greeter.greet("ann") == "HELLO ANN"
    assert DBOS.start_workflow(greeter.greet, "bob").get_result() == "HELLO BOB"
    assert Greeter.kind(3) == "Greeter:3"
    assert Greeter.static(4) == 8
    row = db.execute("SELECT class_name, config_name FROM dbos.workflow_status WHERE workflow_uuid='greet-1'").fetchone()
    assert row == ("test_dbos_class_methods.<locals>.Greeter", "greeter-hello")
    assert DBOS.get_workflow_status("greet-1").input == {"args": ("ann",), "kwargs": {}}


def test_transaction_commits_with_its_checkpoint(dbos, db):
    db.execute("CREATE TABLE public.ledger (id serial primary key, note text)")

    @DBOS.transaction()
    def write_note(note):
        DBOS.sql_session.execute(sa.text("INSERT INTO public.ledger (note) VALUES (:note)"), {"note": note})
        return DBOS.sql_session.execute(sa.text("SELECT count(*) FROM public.ledger")).scalar_one()

    @DBOS.workflow()
    def noting():
        return write_note("first")

    with SetWorkflowID("tx-1"):
        assert noting() == 1
    with SetWorkflowID("tx-1"):
        assert noting() == 1
    assert db.execute("SELECT count(*) FROM public.ledger").fetchone()[0] == 1
    assert step_rows(db, "tx-1")[0][1].endswith("write_note")


def test_list_workflows_and_steps(dbos):
    @DBOS.step()
    def s():
        return 1

    @DBOS.workflow()
    def listed(i):
        s()
        return i

    for i in range(3):
        with SetWorkflowID(f"listed-{i}"):
            listed(i)
    found = DBOS.list_workflows(workflow_id_prefix="listed-", sort_desc=True)
    assert [w.workflow_id for w in found] == ["listed-2", "listed-1", "listed-0"]
    assert [w.output for w in DBOS.list_workflows(workflow_ids=["listed-1"])] == [1]
    steps = DBOS.list_workflow_steps("listed-0")
    assert [(st["function_id"], st["output"]) for st in steps] == [(1, 1)]


def test_replay_with_a_different_step_raises_unexpected_step_error(dbos, db):
    import threading as _threading

    from runtime import DBOSUnexpectedStepError

    reached, release = _threading.Event(), _threading.Event()
    version = {"first": "charge"}

    @DBOS.step()
    def charge():
        return "charged"

    @DBOS.step()
    def refund():
        return "refunded"

    @DBOS.step()
    def wait_here():
        reached.set()
        release.wait(10)

    @DBOS.workflow()
    def changing():
        (charge if version["first"] == "charge" else refund)()
        wait_here()
        return "done"

    with SetWorkflowID("changing"):
        DBOS.start_workflow(changing)
    assert reached.wait(10)
    DBOS.cancel_workflow("changing")
    release.set()
    time.sleep(0.2)

    version["first"] = "refund"  # the code changed: position 1 is now a different step
    handle = DBOS.resume_workflow("changing")
    with pytest.raises(DBOSUnexpectedStepError) as info:
        handle.get_result()
    message = str(info.value)
    assert "refund" in message and "charge" in message and "step 1" in message


def test_listing_survives_a_row_it_cannot_decode(dbos, db):
    @DBOS.workflow()
    def fine():
        return "ok"

    with SetWorkflowID("fine"):
        fine()
    # A result pickled by another program whose class does not exist here.
    db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, output, serialization) VALUES "
        "('alien', 'SUCCESS', 'elsewhere', 'gASVEgAAAAAAAACMBmFsaWVuc5SMBUFsaWVulJOUKYGULg==', 'py_pickle')"
    )
    listed = {w.workflow_id: w.output for w in DBOS.list_workflows()}
    assert listed["fine"] == "ok"
    assert listed["alien"] == "gASVEgAAAAAAAACMBmFsaWVuc5SMBUFsaWVulJOUKYGULg=="  # the raw text


def test_a_step_listing_survives_a_step_row_it_cannot_decode(dbos, db):
    """Its output and error come back as their stored text, as DBOS gives them; the listing
    raised DBOSSerializationError for the whole workflow before."""
    alien = "gASVEgAAAAAAAACMBmFsaWVuc5SMBUFsaWVulJOUKYGULg=="  # a class that does not exist here
    db.execute("INSERT INTO dbos.workflow_status (workflow_uuid, status, name) VALUES ('alien-steps', 'SUCCESS', 'elsewhere')")
    db.execute(
        "INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, function_name, output, error, serialization) VALUES "
        "('alien-steps', 1, 'fine', %s, NULL, 'py_pickle'), ('alien-steps', 2, 'odd', %s, NULL, 'py_pickle'), "
        "('alien-steps', 3, 'failed', NULL, %s, 'py_pickle')",
        (serialize("ok"), alien, alien),
    )
    steps = DBOS.list_workflow_steps("alien-steps")
    assert [(s["function_name"], s["output"], s["error"]) for s in steps] == [
        ("fine", "ok", None), ("odd", alien, None), ("failed", None, alien)]


def test_transactions_on_a_separate_application_database(sys_url, pg_server_url):
    """With application_database_url, a transaction commits its effects with its output in the
    application database; a replay that finds the output there does not run it again."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    app_name = f"pgfleet_app_{int(time.time() * 1000)}"
    app_url = make_conninfo(pg_server_url, dbname=app_name)
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "t", "system_database_url": sys_url, "application_database_url": app_url, "executor_id": "tx"})
    DBOS.launch()
    try:
        with psycopg.connect(app_url, autocommit=True) as app:
            app.execute("CREATE TABLE public.items (name text)")
        runs = []

        @DBOS.transaction()
        def add_item(name):
            runs.append(name)
            DBOS.sql_session.execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
            return DBOS.sql_session.execute(sa.text("SELECT count(*) FROM public.items")).scalar_one()

        @DBOS.workflow()
        def adding():
            return add_item("apple")

        with SetWorkflowID("app-tx"):
            assert adding() == 1
        with psycopg.connect(app_url, autocommit=True) as app, psycopg.connect(sys_url, autocommit=True) as sysconn:
            assert app.execute("SELECT function_name FROM dbos.transaction_outputs WHERE workflow_uuid='app-tx'").fetchone()[0].endswith("add_item")
            # Lose the system-database checkpoint, as if the process died right after the commit.
            sysconn.execute("DELETE FROM dbos.operation_outputs WHERE workflow_uuid='app-tx'")
            sysconn.execute("UPDATE dbos.workflow_status SET status='CANCELLED' WHERE workflow_uuid='app-tx'")
            DBOS.resume_workflow("app-tx").get_result()
            assert app.execute("SELECT count(*) FROM public.items").fetchone()[0] == 1
            assert runs == ["apple"]
            assert sysconn.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='app-tx'").fetchone()[0] == 1
    finally:
        DBOS.destroy(destroy_registry=True)
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(app_name)))


def test_max_executor_threads_bounds_background_workflows(sys_url):
    """At most max_executor_threads background workflows run at once; the rest wait their
    turn. A child started by a running workflow never waits (its parent may be waiting on it)."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "t", "system_database_url": sys_url, "executor_id": "bounded", "max_executor_threads": 2})
    DBOS.launch()
    try:
        running, peak, lock = [0], [0], threading.Lock()

        @DBOS.step()
        def occupy():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.2)
            with lock:
                running[0] -= 1

        @DBOS.workflow()
        def busy(i):
            occupy()
            return i

        @DBOS.workflow()
        def child(i):
            return i * 10

        @DBOS.workflow()
        def parent(i):
            return DBOS.start_workflow(child, i).get_result()

        handles = [DBOS.start_workflow(busy, i) for i in range(6)]
        assert [h.get_result(timeout_seconds=10) for h in handles] == list(range(6))
        assert peak[0] == 2
        # Two parents fill both threads and wait on children: the children still run.
        parents = [DBOS.start_workflow(parent, i) for i in range(2)]
        assert [h.get_result(timeout_seconds=10) for h in parents] == [0, 10]
    finally:
        DBOS.destroy(destroy_registry=True)


def test_a_failed_background_workflow_is_logged_and_a_failed_call_is_not(dbos, caplog):
    # As DBOS ("Exception encountered in background workflow"): nobody awaits a started,
    # enqueued or recovered workflow, so its error would otherwise be in the database only.
    import asyncio

    caplog.set_level("ERROR", logger="dbos")

    @DBOS.workflow()
    def breaks(kind: str) -> None:
        raise RuntimeError(f"{kind} broke")

    @DBOS.workflow()
    async def breaks_async() -> None:
        raise ValueError("async broke")

    with pytest.raises(RuntimeError):
        breaks("direct")  # the caller gets it: not logged
    with SetWorkflowID("bg-breaks"):
        handle = DBOS.start_workflow(breaks, "started")
    with pytest.raises(RuntimeError):
        handle.get_result()

    async def start_async() -> None:
        with SetWorkflowID("bg-breaks-async"):
            started = await DBOS.start_workflow_async(breaks_async)
        with pytest.raises(ValueError):
            await started.get_result()

    asyncio.run(start_async())
    failed = {r.pgfleet_event["workflow_id"]: r for r in caplog.records
              if getattr(r, "pgfleet_event", {}).get("event") == "background workflow failed"}
    assert sorted(failed) == ["bg-breaks", "bg-breaks-async"]
    record = failed["bg-breaks"]
    assert record.levelname == "ERROR" and record.pgfleet_event["error"] == "RuntimeError('started broke')"
    assert record.pgfleet_event["workflow_name"].endswith("breaks")
    assert "Traceback" in record.pgfleet_event["exception"] and "started broke" in record.pgfleet_event["exception"]
    # For a reader: the traceback on lines of its own after the event's line, not escaped in it.
    first, *traceback = record.getMessage().splitlines()
    assert first.startswith("event='background workflow failed'") and "exception=" not in first
    assert traceback[0] == "Traceback (most recent call last):" and traceback[-1] == "RuntimeError: started broke"
