"""Bad input gets a clear error that names the problem, and nothing is half-written."""

from __future__ import annotations

import socket
import threading

import pytest

from runtime import (
    DBOS,
    DBOSConfigError,
    DBOSDatabaseUnavailableError,
    DBOSException,
    DBOSInvalidInputError,
    DBOSSerializationError,
    DBOSWorkflowFunctionNotFoundError,
    SetWorkflowID,
)


def workflow_count(db) -> int:
    return db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()[0]


def test_unpicklable_argument_names_the_argument_and_writes_nothing(dbos, db):
    @DBOS.workflow()
    def takes(a, b=None):
        return a

    with pytest.raises(DBOSSerializationError, match="keyword argument 'b'"):
        takes(1, b=threading.Lock())
    with pytest.raises(DBOSSerializationError, match="argument 0"):
        DBOS.start_workflow(takes, threading.Lock())
    assert workflow_count(db) == 0


def test_unpicklable_step_result_fails_the_step_clearly(dbos, db):
    @DBOS.step()
    def returns_lock():
        return threading.Lock()

    @DBOS.workflow()
    def wf():
        return returns_lock()

    with SetWorkflowID("bad-result"), pytest.raises(DBOSSerializationError, match="result of step"):
        wf()
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid='bad-result'").fetchone()[0] == "ERROR"


def test_unpicklable_workflow_result_is_an_error_not_a_hang(dbos, db):
    @DBOS.workflow()
    def wf():
        return threading.Lock()

    with SetWorkflowID("bad-wf-result"), pytest.raises(DBOSSerializationError, match="result of workflow"):
        wf()
    with SetWorkflowID("bad-wf-result"), pytest.raises(DBOSSerializationError):
        wf()


def test_validate_input_rejection_records_nothing(dbos, db):
    def positive(amount, currency):
        if amount <= 0:
            raise ValueError("amount must be positive")

    @DBOS.workflow(name="process_payment_v2", validate_input=positive)
    def process_payment(amount: float, currency: str):
        return amount

    with pytest.raises(DBOSInvalidInputError, match="amount must be positive"):
        process_payment(-1, "EUR")
    assert workflow_count(db) == 0
    assert process_payment(5, "EUR") == 5
    assert db.execute("SELECT name FROM dbos.workflow_status").fetchone()[0] == "process_payment_v2"


def test_calling_a_workflow_before_launch(sys_url):
    DBOS.destroy(destroy_registry=True)

    @DBOS.workflow()
    def early():
        return 1

    with pytest.raises(DBOSException, match="System database accessed before DBOS was launched"):
        early()
    DBOS(config={"name": "t", "system_database_url": sys_url})
    with pytest.raises(DBOSException, match="before DBOS was launched"):
        early()
    DBOS.destroy(destroy_registry=True)


def test_unknown_config_key_is_named_with_a_suggestion():
    with pytest.raises(DBOSConfigError, match=r"'system_databse_url' \(did you mean 'system_database_url'\?\)"):
        DBOS(config={"name": "t", "system_databse_url": "postgresql://x/y"})
    with pytest.raises(DBOSConfigError, match="'name' is required"):
        DBOS(config={})
    with pytest.raises(DBOSConfigError, match="max_executor_threads"):
        DBOS(config={"name": "t", "max_executor_threads": "many"})


def test_scheduler_polling_interval_is_a_positive_number_or_zero_for_the_default():
    from runtime.config import DEFAULT_SCHEDULER_POLLING_INTERVAL_SEC, resolve_config

    def interval(value: object) -> float:
        return resolve_config({"name": "t", "scheduler_polling_interval_sec": value}).scheduler_polling_interval_sec

    assert interval(2.5) == 2.5 and interval(30) == 30.0
    assert interval(None) == interval(0) == DEFAULT_SCHEDULER_POLLING_INTERVAL_SEC  # as DBOS: 0 is unset
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(DBOSConfigError, match="'scheduler_polling_interval_sec' must be a positive number of seconds"):
            interval(bad)
    with pytest.raises(DBOSConfigError, match="'scheduler_polling_interval_sec' must be int or float, got str"):
        interval("30s")


def test_asking_for_dbos_admin_server_says_pgfleet_runs_none(sys_url, caplog):
    DBOS.destroy(destroy_registry=True)
    caplog.set_level("WARNING", logger="pgfleet")
    DBOS(config={"name": "t", "system_database_url": sys_url, "run_admin_server": False, "admin_port": 3001})
    assert not [r for r in caplog.records if "admin server" in r.getMessage()]
    DBOS(config={"name": "t", "system_database_url": sys_url, "run_admin_server": True})
    [warning] = [r for r in caplog.records if "admin server" in r.getMessage()]
    assert warning.levelname == "WARNING" and "pgfleet runs no DBOS admin server" in warning.getMessage()
    DBOS.destroy(destroy_registry=True)


def test_malformed_and_unreachable_database_urls():
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "t", "system_database_url": "mysql://nope"})
    with pytest.raises(DBOSDatabaseUnavailableError, match="not a PostgreSQL URL"):
        DBOS.launch()
    DBOS.destroy()

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    DBOS(config={"name": "t", "system_database_url": f"postgresql://u:secret@127.0.0.1:{port}/x", "database_retry_timeout_sec": 1})
    with pytest.raises(DBOSDatabaseUnavailableError) as info:
        DBOS.launch()
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "secret" not in str(info.value)
    DBOS.destroy()


def test_start_workflow_of_a_plain_function(dbos):
    def not_a_workflow():
        return 1

    # DBOS's class and words (a program catching DBOSWorkflowFunctionNotFoundError works on both).
    with pytest.raises(DBOSWorkflowFunctionNotFoundError, match="not_a_workflow is not a registered workflow function"):
        DBOS.start_workflow(not_a_workflow)


def test_a_live_executor_id_cannot_be_taken_by_another_process(dbos, sys_url):
    import subprocess
    import sys

    from conftest import REPO_ROOT

    script = (
        "import sys\nfrom runtime import DBOS\n"
        "DBOS(config={'name': 'twin', 'system_database_url': sys.argv[1], 'executor_id': 'test-executor'})\n"
        "DBOS.launch()\n"
    )
    out = subprocess.run([sys.executable, "-c", script, sys_url], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "executor id 'test-executor' is in use by a live process" in out.stderr
