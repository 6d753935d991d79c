"""The hot path's direct statements (sysdb/direct.py): each writes and returns what the cursor
path does, bad parameters are refused before anything is sent, server errors keep psycopg's
classes, and a session that lost its prepared statements, a pooler set-up without prepared
statements, a non-UTF-8 session and a transaction all behave as on the cursor."""

from __future__ import annotations

import enum
from typing import Any

import psycopg
import pytest

from sysdb import SystemDatabase
from sysdb.connection import DictConnection
from sysdb.database import is_connection_failure
from sysdb.direct import DIRECT_STATEMENTS, direct_statement, run_direct
from sysdb.statements import statement

OWNER = {"executor_id": "exec-a", "owner_epoch": 7}


def _start(workflow_id: str) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id, "name": "wf", "class_name": None, "config_name": None,
        "authenticated_user": "ann", "assumed_role": None, "authenticated_roles": '["admin"]',
        "application_version": "v1", "application_id": None, "application_name": "app", "now_ms": 1_700_000_000_123,
        "timeout_ms": None, "deadline_ms": None, "inputs": "aW5wdXRz", "parent_workflow_id": None,
        "serialization": "py_pickle", "attributes": '{"team": "ops", "note": "caf\u00e9 \u2713"}', **OWNER,
    }


def _step(workflow_id: str, function_id: int = 1) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id, "function_id": function_id, "function_name": "step-\u00e9", "output": "b3V0",
        "error": None, "child_workflow_id": None, "started_at_ms": 1_700_000_000_200, "completed_at_ms": 1_700_000_000_250,
        "serialization": "py_pickle", **OWNER,
    }


def _attempt(workflow_id: str) -> dict[str, Any]:
    return {"workflow_uuid": workflow_id, "function_id": 1, "function_name": "step", "pid": 4242, "attempt": 1, **OWNER}


def _finish(workflow_id: str) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "status": "SUCCESS", "output": "cmVzdWx0", "error": None, "now_ms": 1_700_000_000_900, **OWNER}


PARAMS = {"insert_workflow": _start, "record_step_output": _step, "record_step_attempt": _attempt, "finish_workflow": _finish}


def _both_ways(conn: DictConnection, name: str, workflow_id: str, direct: bool) -> tuple[list[dict[str, Any]], int]:
    params = PARAMS[name](workflow_id)
    if direct:
        found = direct_statement(name)
        assert found is not None
        result = run_direct(conn, found, params)
        return result.rows, result.rowcount
    cur = conn.run(statement(name), params)
    return (cur.fetchall() if cur.description else []), cur.rowcount


def _recorded(db: psycopg.Connection, workflow_id: str) -> dict[str, Any]:
    """Everything written for a workflow, with its id and the ledger's clock taken out."""
    status = db.execute(
        "SELECT to_jsonb(s) - 'workflow_uuid' AS r FROM dbos.workflow_status s WHERE workflow_uuid = %s", (workflow_id,)
    ).fetchone()
    steps = db.execute(
        "SELECT to_jsonb(o) - 'workflow_uuid' AS r FROM dbos.operation_outputs o WHERE workflow_uuid = %s", (workflow_id,)
    ).fetchall()
    attempts = db.execute(
        "SELECT to_jsonb(a) - 'workflow_uuid' - 'started_at' - 'id' AS r FROM dbos.pgfleet_step_attempts a WHERE workflow_uuid = %s",
        (workflow_id,),
    ).fetchall()
    return {"status": status, "steps": steps, "attempts": attempts}


def test_the_direct_statements_are_the_hot_paths_four():
    assert DIRECT_STATEMENTS == set(PARAMS)


def test_each_direct_statement_writes_and_returns_what_the_cursor_does(sysdb_one, db):
    order = ["insert_workflow", "record_step_attempt", "record_step_output", "finish_workflow"]
    with sysdb_one.pooled() as conn:
        for name in order:
            by_cursor = _both_ways(conn, name, "wf-cursor", direct=False)
            by_direct = _both_ways(conn, name, "wf-direct", direct=True)
            assert by_direct == by_cursor, name
            assert by_direct[1] == 1, name  # each wrote its one row (the start returns its epoch)
        again = _both_ways(conn, "finish_workflow", "wf-direct", direct=True)
        assert again == ([], 0)  # a finished workflow is no longer PENDING: the fence refuses
    assert _recorded(db, "wf-direct") == _recorded(db, "wf-cursor")
    (status,) = _recorded(db, "wf-direct")["status"]
    assert status["status"] == "SUCCESS" and status["completed_at"] == 1_700_000_000_900
    assert status["attributes"] == {"team": "ops", "note": "caf\u00e9 \u2713"}


def test_the_start_returns_its_epoch_and_nothing_for_an_existing_id(sysdb_one):
    with sysdb_one.pooled() as conn:
        first = _both_ways(conn, "insert_workflow", "wf-1", direct=True)
        second = _both_ways(conn, "insert_workflow", "wf-1", direct=True)
    assert first == ([{"owner_epoch": 7}], 1)
    assert second == ([], 0)


def test_a_nul_in_a_parameter_is_refused_before_anything_is_sent(sysdb_one, db):
    params = _start("wf-nul\x00tail")
    found = direct_statement("insert_workflow")
    assert found is not None
    with sysdb_one.pooled() as conn, pytest.raises(psycopg.DataError, match="'workflow_id' of insert_workflow.*NUL"):
        run_direct(conn, found, params)
    # Sent as a C string the id would have been cut to "wf-nul" and stored.
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE 'wf-nul%'").fetchone()[0] == 0


@pytest.mark.parametrize("value", [True, b"bytes", 1.5j])
def test_a_parameter_of_another_type_is_refused_with_its_name(sysdb_one, value):
    params = {**_start("wf-type"), "timeout_ms": value}
    found = direct_statement("insert_workflow")
    assert found is not None
    with sysdb_one.pooled() as conn, pytest.raises(TypeError, match="'timeout_ms' of insert_workflow"):
        run_direct(conn, found, params)


def test_a_server_error_keeps_psycopgs_class_and_the_connection_stays_usable(sysdb_one):
    with sysdb_one.pooled() as conn:
        _both_ways(conn, "insert_workflow", "wf-dup", direct=True)
        _both_ways(conn, "record_step_output", "wf-dup", direct=True)
        with pytest.raises(psycopg.errors.UniqueViolation):
            _both_ways(conn, "record_step_output", "wf-dup", direct=True)
        assert conn.run("SELECT 1 AS one").fetchall() == [{"one": 1}]
        assert _both_ways(conn, "record_step_output", "wf-missing", direct=True) == ([], 0)


def _prepared_names(conn: DictConnection) -> set[str]:
    return {row["name"] for row in conn.run("SELECT name FROM pg_prepared_statements").fetchall()}


def test_a_session_that_lost_its_prepared_statements_prepares_them_again(sysdb_one):
    with sysdb_one.pooled() as conn:
        assert conn.run_named("insert_workflow", _start("wf-p1")).rowcount == 1
        assert "pgfleet_insert_workflow" in _prepared_names(conn)
        conn.run("DEALLOCATE ALL")
        assert conn.run_named("insert_workflow", _start("wf-p2")).rows == [{"owner_epoch": 7}]
        assert "pgfleet_insert_workflow" in _prepared_names(conn)


def test_without_prepared_statements_nothing_is_prepared(sys_url):
    db = SystemDatabase(sys_url, pool_size=1, retry_timeout_sec=5, prepare_statements=False)
    db.open(run_migrations=False)
    try:
        with db.pooled() as conn:
            for name in ["insert_workflow", "record_step_output", "finish_workflow"]:
                assert conn.run_named(name, PARAMS[name]("wf-unnamed")).rowcount == 1, name
            assert _prepared_names(conn) == set()
    finally:
        db.close()


def test_a_non_utf8_session_goes_through_the_cursor(sysdb_one, db):
    with sysdb_one.pooled() as conn:
        conn.run("SET client_encoding TO 'LATIN1'")
        try:
            params = {**_start("wf-latin1"), "application_name": "caf\u00e9", "attributes": None}
            assert conn.run_named("insert_workflow", params).rows == [{"owner_epoch": 7}]
            assert "pgfleet_insert_workflow" not in _prepared_names(conn)
        finally:
            conn.run("SET client_encoding TO 'UTF8'")
    assert db.execute("SELECT application_name FROM dbos.workflow_status WHERE workflow_uuid = 'wf-latin1'").fetchone()[0] == "caf\u00e9"


def test_inside_a_transaction_a_direct_statement_rolls_back_with_it(sysdb_one, db):
    with sysdb_one.pooled() as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            assert conn.run_named("insert_workflow", _start("wf-tx")).rowcount == 1
            raise RuntimeError("roll it back")
        assert conn.run_named("insert_workflow", _start("wf-tx2")).rowcount == 1
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid = 'wf-tx'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid = 'wf-tx2'").fetchone()[0] == 1


def test_a_dead_connection_raises_a_connection_failure_the_retries_know(sysdb_one, db):
    with sysdb_one.pooled() as conn:
        conn.run_named("insert_workflow", _start("wf-dead"))  # prepared on this session
        db.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError) as caught:
            conn.run_named("record_step_output", _step("wf-dead"))
    assert is_connection_failure(caught.value)
    # The door's retry takes a fresh connection and prepares there.
    assert sysdb_one._execute_count_once("record_step_output", _step("wf-dead")) == 1


def test_every_direct_statements_result_columns_are_ones_it_decodes(sysdb_one):
    with sysdb_one.pooled() as conn:
        for name in sorted(DIRECT_STATEMENTS):
            found = direct_statement(name)
            assert found is not None
            described = conn.pgconn.describe_prepared(found.prepared_name) if name in conn.direct_prepared else None
            if described is None:
                conn.pgconn.prepare(b"probe_" + found.prepared_name, found.text)
                described = conn.pgconn.describe_prepared(b"probe_" + found.prepared_name)
            types = {described.ftype(i) for i in range(described.nfields)}
            assert types <= {16, 20, 21, 23, 25, 1043}, (name, types)


class _Status(str, enum.Enum):
    SUCCESS = "SUCCESS"


class _Epoch(enum.IntEnum):
    SEVENTH = 7


def test_str_and_int_subclasses_are_sent_as_their_values(sysdb_one, db):
    with sysdb_one.pooled() as conn:
        assert conn.run_named("insert_workflow", {**_start("wf-enum"), "owner_epoch": _Epoch.SEVENTH}).rowcount == 1
        finish = {**_finish("wf-enum"), "status": _Status.SUCCESS, "owner_epoch": _Epoch.SEVENTH}
        assert conn.run_named("finish_workflow", finish).rowcount == 1
    row = db.execute("SELECT status, owner_epoch FROM dbos.workflow_status WHERE workflow_uuid = 'wf-enum'").fetchone()
    assert row == ("SUCCESS", 7)


def test_inside_a_transaction_a_direct_statement_needs_no_prepared_statement(sysdb_one, db):
    with sysdb_one.pooled() as conn:
        conn.run_named("insert_workflow", _start("wf-tx-lost"))
        conn.run_named("record_step_output", _step("wf-tx-lost"))  # both prepared on this session
        with conn.transaction():
            conn.run("DEALLOCATE ALL")
            assert conn.run_named("record_step_output", _step("wf-tx-lost", 2)).rowcount == 1
        # Outside a transaction it is prepared again and runs.
        assert conn.run_named("record_step_output", _step("wf-tx-lost", 3)).rowcount == 1
        assert "pgfleet_record_step_output" in _prepared_names(conn)
    steps = db.execute("SELECT function_id FROM dbos.operation_outputs WHERE workflow_uuid = 'wf-tx-lost' ORDER BY 1").fetchall()
    assert steps == [(1,), (2,), (3,)]


def test_psycopgs_deallocate_all_after_a_rollback_does_not_fail_a_transactions_direct_statement(sysdb_one, db):
    # Seen in a chaos run: a claim's transaction rolled back (lock timeout), psycopg answered
    # by sending DEALLOCATE ALL before its next statement (it does after ROLLBACK, DROP, ALTER
    # once it holds prepared statements of its own), and the next workflow's checkpoint inside
    # a transaction found its prepared statement gone and aborted the transaction.
    with sysdb_one.pooled() as conn:
        conn.run_named("insert_workflow", _start("wf-psycopg"))
        conn.run_named("record_step_output", _step("wf-psycopg"))  # prepared by us
        for _ in range(6):  # past prepare_threshold: psycopg prepares this one of its own
            conn.run("SELECT 1 AS one WHERE %(x)s::int = 1", {"x": 1})
        with pytest.raises(RuntimeError), conn.transaction():
            raise RuntimeError("roll back")
        with conn.transaction():
            conn.run("SELECT 1 AS one WHERE %(x)s::int = 1", {"x": 1})  # psycopg's DEALLOCATE ALL goes out here
            assert conn.run_named("record_step_output", _step("wf-psycopg", 2)).rowcount == 1
        assert conn.run_named("record_step_output", _step("wf-psycopg", 3)).rowcount == 1
    steps = db.execute("SELECT function_id FROM dbos.operation_outputs WHERE workflow_uuid = 'wf-psycopg' ORDER BY 1").fetchall()
    assert steps == [(1,), (2,), (3,)]
