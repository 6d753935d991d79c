"""Retention (issue #13): ``pgfleet workflow prune`` and the leader's bounded pruning.

Rows are written with SQL so each test chooses their age and status exactly; the prune runs
through the real command, the real door and a real launched executor."""

from __future__ import annotations

import json

import psycopg
import pytest

from cluster.coordination.retention import RetentionDuty
from cluster.process.cli import main
from cluster.process.cli.prune_command import parse_duration
from conftest import wait_until
from runtime import DBOS
from runtime.config import resolve_config
from runtime.errors import DBOSConfigError
from sysdb import SystemDatabase

DAY_MS = 86_400_000
UNFINISHED = ("PENDING", "ENQUEUED", "DELAYED")


@pytest.fixture
def sdb(sys_url: str):
    database = SystemDatabase(sys_url, pool_size=2)
    database.open(run_migrations=False)
    yield database
    database.close()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("PGFLEET_SYSTEM_DATABASE_URL", "DBOS_SYSTEM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def add_workflow(db: psycopg.Connection, workflow_id: str, status: str, age_days: float, *, recorded: bool = True) -> None:
    """A workflow created ``age_days`` ago, with a step, an event (and its history), a stream
    value, a message to it and an attempt-ledger row when ``recorded``."""
    db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, created_at, updated_at) "
        "VALUES (%(id)s, %(status)s, 'wf', %(at)s, %(at)s)",
        {"id": workflow_id, "status": status, "at": _ms_ago(db, age_days)},
    )
    if not recorded:
        return
    db.execute("INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, function_name, output) VALUES (%s, 0, 's', 'x')", (workflow_id,))
    db.execute("INSERT INTO dbos.workflow_events (workflow_uuid, key, value) VALUES (%s, 'k', 'v')", (workflow_id,))
    db.execute("INSERT INTO dbos.workflow_events_history (workflow_uuid, function_id, key, value) VALUES (%s, 1, 'k', 'v')", (workflow_id,))
    db.execute("INSERT INTO dbos.streams (workflow_uuid, key, value, \"offset\") VALUES (%s, 's', 'v', 0)", (workflow_id,))
    db.execute("INSERT INTO dbos.notifications (destination_uuid, topic, message) VALUES (%s, 't', 'm')", (workflow_id,))
    db.execute(
        "INSERT INTO dbos.pgfleet_step_attempts (workflow_uuid, function_id, function_name, executor_id, owner_epoch, pid, attempt) "
        "VALUES (%s, 0, 's', 'e', 1, 1, 1)", (workflow_id,),
    )


def _ms_ago(db: psycopg.Connection, days: float) -> int:
    row = db.execute("SELECT (extract(epoch FROM now()) * 1000)::bigint").fetchone()
    assert row is not None
    return int(row[0] - days * DAY_MS)


def workflow_ids(db: psycopg.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT workflow_uuid FROM dbos.workflow_status")}


def rows_of(db: psycopg.Connection, workflow_id: str) -> dict[str, int]:
    """How many dependent rows of each kind ``workflow_id`` still has."""
    counts = {}
    for table, column in (
        ("operation_outputs", "workflow_uuid"), ("workflow_events", "workflow_uuid"),
        ("workflow_events_history", "workflow_uuid"), ("streams", "workflow_uuid"),
        ("notifications", "destination_uuid"), ("pgfleet_step_attempts", "workflow_uuid"),
    ):
        row = db.execute(f"SELECT count(*) FROM dbos.{table} WHERE {column} = %s", (workflow_id,)).fetchone()  # noqa: S608
        counts[table] = row[0] if row else 0
    return counts


def prune(capsys, sys_url: str, *argv: str) -> tuple[int, dict]:
    code = main(["workflow", "prune", "--database-url", sys_url, "--json", *argv])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def test_prune_deletes_only_old_finished_workflows_with_everything_they_recorded(sys_url, db, capsys):
    for status in ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"):
        add_workflow(db, f"old-{status}", status, 40)
        add_workflow(db, f"new-{status}", status, 10)
    for status in UNFINISHED:
        add_workflow(db, f"old-{status}", status, 40)
    code, result = prune(capsys, sys_url, "--older-than", "30d")
    assert code == 0
    assert result["workflows"] == 4 and result["dry_run"] is False
    assert result["by_status"] == {"SUCCESS": 1, "ERROR": 1, "CANCELLED": 1, "MAX_RECOVERY_ATTEMPTS_EXCEEDED": 1}
    assert (result["steps"], result["events"], result["streams"], result["messages"], result["attempts"]) == (4, 8, 4, 4, 4)
    left = workflow_ids(db)
    assert not any(w.startswith("old-") and w[4:] not in UNFINISHED for w in left)
    assert {f"old-{s}" for s in UNFINISHED} <= left  # unfinished never go, however old
    assert len([w for w in left if w.startswith("new-")]) == 4  # younger than the cutoff
    assert set(rows_of(db, "old-SUCCESS").values()) == {0}
    assert set(rows_of(db, "old-PENDING").values()) == {1}  # an unfinished one keeps its rows
    assert set(rows_of(db, "new-SUCCESS").values()) == {1}


def test_prune_by_status_in_batches_and_as_text(sys_url, db, capsys):
    for i in range(7):
        add_workflow(db, f"ok-{i}", "SUCCESS", 2, recorded=False)
    add_workflow(db, "failed", "ERROR", 2, recorded=False)
    code, result = prune(capsys, sys_url, "--older-than", "36h", "--status", "success", "--batch", "3")
    assert code == 0 and result["workflows"] == 7 and result["batches"] == 3  # 3 + 3 + 1
    assert workflow_ids(db) == {"failed"}
    assert main(["workflow", "prune", "--database-url", sys_url, "--older-than", "90m", "--status", "ERROR,CANCELLED"]) == 0
    out, _ = capsys.readouterr()
    assert "deleted 1 workflows in 1 batches (ERROR 1)" in out
    assert workflow_ids(db) == set()


def test_dry_run_counts_and_deletes_nothing(sys_url, db, capsys):
    add_workflow(db, "a", "SUCCESS", 40)
    add_workflow(db, "b", "ERROR", 40)
    add_workflow(db, "c", "SUCCESS", 1)
    code, result = prune(capsys, sys_url, "--older-than", "30d", "--dry-run")
    assert code == 0 and result["dry_run"] is True
    assert result["workflows"] == 2 and result["by_status"] == {"ERROR": 1, "SUCCESS": 1}
    assert workflow_ids(db) == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--older-than", "30d", "--status", "PENDING"], "PENDING is never pruned"),
        (["--older-than", "30d", "--status", "SUCCESS,ENQUEUED"], "ENQUEUED is never pruned"),
        (["--older-than", "30d", "--status", "DELAYED"], "DELAYED is never pruned"),
        (["--older-than", "30d", "--status", "DONE"], "unknown status 'DONE'"),
        (["--older-than", "30x"], "not a duration: '30x'"),
        (["--older-than", "0d"], "more than 0"),
        (["--older-than", "30d", "--batch", "0"], "must be at least 1"),
        ([], "--older-than"),
    ],
)
def test_refusals_name_the_problem(sys_url, db, capsys, argv, message):
    add_workflow(db, "p", "PENDING", 40, recorded=False)
    add_workflow(db, "s", "SUCCESS", 40, recorded=False)
    try:
        code = main(["workflow", "prune", "--database-url", sys_url, *argv])
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    _, err = capsys.readouterr()
    assert code == 2 and message in err
    assert workflow_ids(db) == {"p", "s"}


def test_durations():
    assert parse_duration("30d") == 30 * 86400 and parse_duration("12h") == 43200 and parse_duration("90m") == 5400
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("30")


def test_a_workflow_being_resumed_is_skipped_and_then_stays(sys_url, db, sdb):
    """A batch skips a row someone holds locked (a resume in flight) instead of waiting for it,
    and re-reads the status under its own lock: once resumed, the workflow is unfinished and stays."""
    add_workflow(db, "resumed", "CANCELLED", 40)
    add_workflow(db, "other", "CANCELLED", 40)
    with psycopg.connect(sys_url) as resumer:
        resumer.execute("UPDATE dbos.workflow_status SET status = 'ENQUEUED', queue_name = 'q' WHERE workflow_uuid = 'resumed'")
        batch = sdb.retention.prune_batch(30 * DAY_MS, ["CANCELLED"], 10)  # the resume has not committed yet
        assert batch.workflow_ids == ("other",)
    assert sdb.retention.prune_batch(30 * DAY_MS, ["CANCELLED"], 10).workflows == 0
    assert workflow_ids(db) == {"resumed"}


def _take_lease(db: psycopg.Connection, sdb: SystemDatabase, executor_id: str) -> int:
    """``executor_id`` leads from now: any earlier lease is made to have expired first."""
    db.execute("UPDATE dbos.pgfleet_leader SET expires_at = now() - interval '1 second'")
    term = sdb.leadership.acquire(executor_id, 1, 30.0)
    assert term is not None
    return term


def test_only_the_lease_holder_prunes_and_a_deposed_leader_prunes_nothing(db, sdb):
    for i in range(4):
        add_workflow(db, f"old-{i}", "SUCCESS", 40)
    old_term = _take_lease(db, sdb, "leader-a")
    assert sdb.retention.prune_batch_as_leader(old_term, "not-the-leader", 30 * DAY_MS, ["SUCCESS"], 10).workflows == 0
    duty_a = RetentionDuty(sdb, "leader-a", 30 * 86400, batch_size=2)
    assert duty_a.prune_once(old_term).workflows == 2  # the holder prunes, one batch at most
    new_term = _take_lease(db, sdb, "leader-b")  # the lease moved: a is deposed
    assert duty_a.prune_once(old_term).workflows == 0
    assert len(workflow_ids(db)) == 2
    assert RetentionDuty(sdb, "leader-b", 30 * 86400, batch_size=10).prune_once(new_term).workflows == 2
    assert workflow_ids(db) == set()
    logged = db.execute("SELECT term, executor_id FROM dbos.pgfleet_leader_log WHERE action = 'prune' ORDER BY id").fetchall()
    assert logged == [(old_term, "leader-a"), (new_term, "leader-b")]


def test_the_duty_runs_at_most_one_batch_per_interval(db, sdb):
    for i in range(5):
        add_workflow(db, f"old-{i}", "SUCCESS", 40, recorded=False)
    now = [0.0]
    term = _take_lease(db, sdb, "leader")
    duty = RetentionDuty(sdb, "leader", 86400, batch_size=2, interval_sec=5, clock=lambda: now[0])
    duty(term)
    duty(term)  # the same round: nothing more
    assert len(workflow_ids(db)) == 3
    now[0] = 5.0
    duty(term)
    assert len(workflow_ids(db)) == 1


def _leader_ticked_twice(db: psycopg.Connection, executor_id: str) -> None:
    """Wait until ``executor_id`` leads and has renewed its lease after a first tick: the tick
    that elected it ran its duties before the renewal."""
    def lease() -> object:
        row = db.execute("SELECT expires_at FROM dbos.pgfleet_leader WHERE executor_id = %s", (executor_id,)).fetchone()
        return row[0] if row else None

    first = wait_until(lease, f"{executor_id} to lead")
    wait_until(lambda: (lease() or first) > first, f"{executor_id} to renew its lease")


@pytest.mark.parametrize("configured", [True, False])
def test_the_leader_prunes_only_with_the_key_set(sys_url, db, configured):
    add_workflow(db, "old-done", "SUCCESS", 40)
    add_workflow(db, "old-running", "PENDING", 40, recorded=False)
    add_workflow(db, "young-done", "SUCCESS", 1)
    config = {"name": "retention-test", "system_database_url": sys_url, "executor_id": "retention-leader"}
    if configured:
        config["workflow_retention_sec"] = 30 * 86400
    DBOS.destroy(destroy_registry=True)
    DBOS(config=config)
    DBOS.launch()
    try:
        _leader_ticked_twice(db, "retention-leader")
        expected = {"old-running", "young-done"} | (set() if configured else {"old-done"})
        assert workflow_ids(db) == expected
    finally:
        DBOS.destroy(destroy_registry=True)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("workflow_retention_sec", 0, "greater than 0"),
        ("workflow_retention_sec", "30d", "must be int or float"),
        ("workflow_retention_statuses", ["PENDING"], "PENDING is never pruned"),
        ("workflow_retention_statuses", ["FINE"], "unknown status"),
        ("workflow_retention_statuses", "SUCCESS", "must be a list"),
        ("workflow_retention_statuses", [], "no status to prune"),
        ("workflow_retention_batch_size", 0, "greater than 0"),
        ("workflow_retention_batch_size", 1.5, "must be int"),
        ("workflow_retention_days", 30, "did you mean 'workflow_retention_sec'"),
    ],
)
def test_bad_retention_keys_are_config_errors(key, value, message):
    with pytest.raises(DBOSConfigError, match=message):
        resolve_config({"name": "app", key: value})


def test_retention_keys_resolve():
    plain = resolve_config({"name": "app"})
    assert plain.workflow_retention_sec is None
    set_ = resolve_config({"name": "app", "workflow_retention_sec": 3600, "workflow_retention_statuses": ["error"],
                           "workflow_retention_batch_size": 50})
    assert (set_.workflow_retention_sec, set_.workflow_retention_statuses, set_.workflow_retention_batch_size) == (3600.0, ("ERROR",), 50)


def test_the_supervisors_config_file_checks_the_retention_keys(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('workers = 2\nworkflow_retention_statuses = ["SUCCESS", "PENDING"]\n')
    assert main(["check", "--config", str(bad)]) == 2
    assert "PENDING is never pruned" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text('app = "shop.worker"\nworkers = 2\nworkflow_retention_sec = 2592000\n')
    main(["check", "--config", str(good), "--json"])  # its database part may fail here: not this test's
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["ok"] is True and config["worker_config"] == {"workflow_retention_sec": 2592000}


def test_a_finished_parent_goes_while_its_child_runs_as_in_dbos(sys_url, db, capsys):
    """DBOS's garbage_collect looks at each workflow's own status only; so does prune. The
    running child stays (and nothing of it refers to the parent's rows)."""
    add_workflow(db, "parent", "SUCCESS", 40)
    add_workflow(db, "parent-1", "PENDING", 40)
    db.execute("UPDATE dbos.workflow_status SET parent_workflow_id = 'parent' WHERE workflow_uuid = 'parent-1'")
    code, result = prune(capsys, sys_url, "--older-than", "30d")
    assert code == 0 and result["workflows"] == 1
    assert workflow_ids(db) == {"parent-1"} and set(rows_of(db, "parent-1").values()) == {1}


@pytest.fixture
def app_url(empty_db_url: str) -> str:
    """An application database with its table of transaction outputs (as a launch makes it)."""
    app = SystemDatabase(empty_db_url, pool_size=1)
    app.open(run_migrations=False, application_schema=True)
    app.close()
    return empty_db_url


def transaction_outputs(app_url: str) -> set[str]:
    with psycopg.connect(app_url, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT workflow_uuid FROM dbos.transaction_outputs")}


def test_prune_deletes_the_transaction_outputs_in_the_application_database(sys_url, db, app_url, capsys, tmp_path):
    for workflow_id, status, age in (("old-a", "SUCCESS", 40), ("old-b", "ERROR", 40), ("old-p", "PENDING", 40), ("new", "SUCCESS", 1)):
        add_workflow(db, workflow_id, status, age, recorded=False)
    with psycopg.connect(app_url, autocommit=True) as conn:
        for workflow_id in ("old-a", "old-a", "old-b", "old-p", "new"):
            conn.execute(
                "INSERT INTO dbos.transaction_outputs (workflow_uuid, function_id, output, txn_snapshot) "
                "VALUES (%s, (SELECT count(*) FROM dbos.transaction_outputs), 'x', '')", (workflow_id,),
            )
    code, result = prune(capsys, sys_url, "--older-than", "30d", "--app-database-url", app_url, "--batch", "1")
    assert code == 0 and result["workflows"] == 2 and result["batches"] == 3
    assert result["transaction_outputs"] == 3 and result["application_database"]
    assert transaction_outputs(app_url) == {"old-p", "new"}  # an unfinished or younger workflow keeps its outputs
    # From the supervisor's config file, as text; and without one, the summary says they stay.
    add_workflow(db, "old-c", "SUCCESS", 40, recorded=False)
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute("INSERT INTO dbos.transaction_outputs (workflow_uuid, function_id, output, txn_snapshot) VALUES ('old-c', 9, 'x', '')")
    config = tmp_path / "pgfleet.toml"
    config.write_text(f'system_database_url = "{sys_url}"\napplication_database_url = "{app_url}"\n', "utf-8")
    assert main(["workflow", "prune", "--config", str(config), "--older-than", "30d"]) == 0
    out, _ = capsys.readouterr()
    assert "and 1 transaction outputs in" in out and "old-c" not in transaction_outputs(app_url)
    add_workflow(db, "old-d", "SUCCESS", 40, recorded=False)
    code, result = prune(capsys, sys_url, "--older-than", "30d")
    assert code == 0 and result["workflows"] == 1 and result["transaction_outputs"] is None
    assert main(["workflow", "prune", "--database-url", sys_url, "--older-than", "30d", "--dry-run"]) == 0
    assert "transaction outputs in an application database are not touched" in capsys.readouterr()[0]


def test_prune_refuses_an_application_database_without_the_outputs_table_and_deletes_nothing(
    sys_url, db, pg_server_url, empty_db_url, capsys,
):
    add_workflow(db, "old", "SUCCESS", 40, recorded=False)
    argv = ["workflow", "prune", "--database-url", sys_url, "--older-than", "30d", "--app-database-url", empty_db_url]
    assert main(argv) != 0  # the database does not exist yet
    assert "cannot reach the application database" in capsys.readouterr()[1]
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{psycopg.conninfo.conninfo_to_dict(empty_db_url)["dbname"]}"')
    assert main(argv) != 0  # it exists, but it is not an application database
    err = capsys.readouterr()[1]
    assert "has no dbos.transaction_outputs table" in err and "Nothing was deleted" in err
    assert workflow_ids(db) == {"old"}
