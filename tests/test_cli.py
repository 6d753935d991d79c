"""The ``pgfleet`` command, run in this process through ``cluster.process.cli.main`` on a real Postgres
(and once as a real subprocess), plus the supervisor's settings: flags > TOML file > environment."""

from __future__ import annotations

import base64
import json
import pickle
import socket
import subprocess
import sys
import threading
import types

import pytest

from cluster.process.cli import build_parser, main, supervisor_options_kwargs, supervisor_settings
from cluster.process.settings import SettingsError, load_settings
from conftest import REPO_ROOT, wait_until
from sysdb import LATEST_VERSION

URL_VARIABLES = ("PGFLEET_SYSTEM_DATABASE_URL", "DBOS_SYSTEM_DATABASE_URL")
SETTINGS_VARIABLES = URL_VARIABLES + (
    "PGFLEET_APP", "PGFLEET_WORKERS", "PGFLEET_NAME", "PGFLEET_QUEUES", "PGFLEET_GRACE",
    "PGFLEET_METRICS_PORT", "PGFLEET_BOOT_DEADLINE", "PGFLEET_EMBEDDED_DATA_DIR", "PGFLEET_LOG_LEVEL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No URL or supervisor setting leaks in from the environment running the tests."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> tuple[int, object]:
    code, out, err = run(capsys, *argv, "--json")
    assert out.strip(), f"no JSON on stdout (exit {code}): {err}"
    return code, json.loads(out)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- help and usage ------------------------------------------------------------------------------


def test_help_as_a_subprocess_and_for_every_subcommand(capsys):
    done = subprocess.run([sys.executable, "-m", "cluster.process.cli", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    for command in ("supervise", "status", "workflow", "queue", "check", "migrate", "db"):
        assert command in done.stdout
    for argv in (
        ["supervise"], ["status"], ["workflow"], ["workflow", "list"], ["workflow", "get"], ["workflow", "steps"],
        ["workflow", "cancel"], ["workflow", "resume"], ["queue"], ["queue", "list"], ["check"], ["migrate"], ["db"],
    ):
        code, out, _ = run(capsys, *argv, "--help")
        assert code == 0 and "usage: pgfleet" in out, argv


def test_usage_errors_exit_2(capsys):
    assert run(capsys)[0] == 2
    assert run(capsys, "workflow")[0] == 2
    assert run(capsys, "workflow", "list", "--limit", "-1")[0] == 2
    assert run(capsys, "workflow", "list", "--start-time", "yesterday")[0] == 2
    code, _, err = run(capsys, "workflow", "list", "--status", "FINISHED", "--database-url", "postgresql://u@127.0.0.1:1/x")
    assert code == 2 and "unknown status FINISHED" in err
    code, _, err = run(capsys, "status", "--database-url", "mysql://nope")
    assert code == 2 and "not a PostgreSQL URL" in err


def test_read_commands_without_any_database_exit_1(capsys, tmp_path):
    code, out, err = run(capsys, "status", "--data-dir", str(tmp_path / "none"))
    assert code == 1 and "no system database" in err and "pgfleet db start" in err
    code, payload = run_json(capsys, "queue", "list", "--database-url", f"postgresql://u@127.0.0.1:{free_port()}/x")
    assert code == 1 and payload["ok"] is False and "cannot reach" in payload["error"]


def test_db_status_and_url_exit_3_when_not_running(capsys, tmp_path):
    code, payload = run_json(capsys, "db", "status", "--data-dir", str(tmp_path / "pg"))
    assert code == 3 and payload["running"] is False
    code, _, err = run(capsys, "db", "url", "--data-dir", str(tmp_path / "pg"))
    assert code == 3 and "not running" in err


def test_embedded_server_commands_and_reading_from_it(capsys, tmp_path):
    data_dir = str(tmp_path / "pg")
    code, payload = run_json(capsys, "db", "start", "--data-dir", data_dir)
    try:
        assert code == 0 and payload["running"] is True
        code, payload = run_json(capsys, "db", "url", "--data-dir", data_dir)
        assert code == 0 and payload["url"].startswith("postgresql://")
        # Read commands use the running embedded server but never create or migrate its database.
        code, _, err = run(capsys, "status", "--data-dir", data_dir)
        assert code == 1 and "does not exist" in err
        code, payload = run_json(capsys, "check", "--data-dir", data_dir)
        assert code == 0 and payload["database"]["embedded"] and payload["database"]["database_exists"] is False
        assert run(capsys, "migrate", "--data-dir", data_dir)[0] == 0
        code, status = run_json(capsys, "status", "--data-dir", data_dir)
        assert code == 0 and status["members"] == [] and status["leader_term"] is None
        code, payload = run_json(capsys, "check", "--data-dir", data_dir)
        assert code == 0 and payload["database"]["schema_version"] == LATEST_VERSION
    finally:
        code, payload = run_json(capsys, "db", "stop", "--data-dir", data_dir)
    assert code == 0 and payload["stopped"] is True
    assert run(capsys, "db", "status", "--data-dir", data_dir)[0] == 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- status --------------------------------------------------------------------------------------


def test_status_shows_the_member_the_leader_and_queues(dbos, sys_url, capsys):
    def leader_status():
        code, payload = run_json(capsys, "status", "--database-url", sys_url)
        assert code == 0
        return payload if payload["leader_term"] is not None else None

    status = wait_until(leader_status, "a leader term")
    (me,) = status["members"]
    assert me["executor_id"] == "test-executor" and me["is_leader"] and me["status"] == "active"
    assert me["slot"] == "-" and me["node"] == me["host"]  # not run by a supervisor
    assert me["heartbeat_age_sec"] < 5 and me["running_workflows"] == 0
    assert status["leader"]["executor_id"] == "test-executor"
    assert status["queues"] == [] and status["recent_takeovers"] == []

    code, out, _ = run(capsys, "status", "--database-url", sys_url)
    assert code == 0
    assert f"leader: term {status['leader_term']}, executor test-executor" in out
    header, row = out.split("members: 1 (1 active)\n")[1].splitlines()[:2]
    assert header.split() == ["NODE", "SLOT", "EXECUTOR", "PID", "HOST", "STATUS", "HEARTBEAT", "EPOCH", "LEADER", "RUNNING"]
    assert "test-executor" in row and "*" in row.split()


def test_node_and_slot_of_supervised_workers():
    from cluster.process.cli import _node_slot

    assert _node_slot("node-a-3", "node-a", "h") == ("node-a", "3")
    assert _node_slot("solo", None, "h") == ("h", "-")


# -- workflows -----------------------------------------------------------------------------------


def test_workflow_list_get_and_steps(dbos, sys_url, db, capsys):
    from runtime import DBOS, SetWorkflowID

    @DBOS.step()
    def add(a, b):
        return a + b

    @DBOS.step()
    def fail_once():
        raise ValueError("boom")

    @DBOS.workflow(name="cli_sum")
    def summed(a, b, *, label):
        try:
            fail_once()
        except ValueError:
            pass
        return {"label": label, "sum": add(a, b)}

    for i in range(3):
        with SetWorkflowID(f"cli-wf-{i}"):
            summed(i, 10, label=f"n{i}")

    code, rows = run_json(capsys, "workflow", "list", "--database-url", sys_url)
    assert code == 0 and [r["workflow_id"] for r in rows] == ["cli-wf-2", "cli-wf-1", "cli-wf-0"]  # newest first
    assert rows[0]["status"] == "SUCCESS" and rows[0]["name"] == "cli_sum" and "output" not in rows[0]
    code, rows = run_json(capsys, "workflow", "list", "--database-url", sys_url, "--oldest-first", "--limit", "2", "--status", "success,error")
    assert [r["workflow_id"] for r in rows] == ["cli-wf-0", "cli-wf-1"]
    code, rows = run_json(capsys, "workflow", "list", "--database-url", sys_url, "--status", "PENDING")
    assert code == 0 and rows == []
    code, rows = run_json(capsys, "workflow", "list", "--database-url", sys_url, "--start-time", "2000-01-01T00:00:00+00:00", "--name", "cli_sum")
    assert len(rows) == 3
    code, rows = run_json(capsys, "workflow", "list", "--database-url", sys_url, "--end-time", "2000-01-01T00:00:00+00:00")
    assert code == 0 and rows == []
    code, out, _ = run(capsys, "workflow", "list", "--database-url", sys_url, "--prefix", "cli-wf-1")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["WORKFLOW_ID", "STATUS", "NAME"] and "cli-wf-1" in out

    code, info = run_json(capsys, "workflow", "get", "cli-wf-1", "--database-url", sys_url)
    assert code == 0
    assert info["status"] == "SUCCESS" and info["executor_id"] == "test-executor"
    assert info["input"] == {"args": [1, 10], "kwargs": {"label": "n1"}}
    assert info["output"] == {"label": "n1", "sum": 11} and info["error"] is None and "undecoded" not in info
    code, out, _ = run(capsys, "workflow", "get", "cli-wf-1", "--database-url", sys_url)
    assert code == 0 and "{'label': 'n1', 'sum': 11}" in out and "label='n1'" in out
    code, raw = run_json(capsys, "workflow", "get", "cli-wf-1", "--raw", "--database-url", sys_url)
    assert pickle.loads(base64.b64decode(raw["output"])) == {"label": "n1", "sum": 11}

    code, steps = run_json(capsys, "workflow", "steps", "cli-wf-1", "--database-url", sys_url)
    assert code == 0 and [(s["function_name"], s["output"]) for s in steps][1] == (steps[1]["function_name"], 11)
    assert steps[0]["error"] == "ValueError: boom" and steps[0]["output"] is None
    code, out, _ = run(capsys, "workflow", "steps", "cli-wf-1", "--database-url", sys_url)
    assert code == 0 and "error: ValueError: boom" in out and "11" in out

    for action in ("get", "steps", "cancel", "resume"):
        code, _, err = run(capsys, "workflow", action, "no-such-workflow", "--database-url", sys_url)
        assert code == 1 and "'no-such-workflow' not found" in err, action

    # An output this process cannot unpickle (its class lives in a module it lacks) is shown raw.
    module = types.ModuleType("cli_test_vanishing_module")
    exec("class Thing:\n    pass\n", module.__dict__)
    sys.modules[module.__name__] = module
    try:
        stored = base64.b64encode(pickle.dumps(module.Thing())).decode()
    finally:
        del sys.modules[module.__name__]
    db.execute("UPDATE dbos.workflow_status SET output = %s WHERE workflow_uuid = 'cli-wf-2'", (stored,))
    code, info = run_json(capsys, "workflow", "get", "cli-wf-2", "--database-url", sys_url)
    assert code == 0 and info["output"] == stored and "cli_test_vanishing_module" in info["undecoded"]["output"]
    code, out, _ = run(capsys, "workflow", "get", "cli-wf-2", "--database-url", sys_url)
    assert code == 0 and "not decodable here" in out


def test_workflow_cancel_and_resume_through_the_internal_queue(dbos, sys_url, db, capsys):
    from runtime import DBOS, SetWorkflowID

    reached, release = threading.Event(), threading.Event()

    @DBOS.step()
    def wait_for_release():
        reached.set()
        release.wait(10)

    @DBOS.workflow()
    def held():
        wait_for_release()
        return "finished"

    with SetWorkflowID("cli-held"):
        DBOS.start_workflow(held)
    assert reached.wait(10)
    code, payload = run_json(capsys, "workflow", "cancel", "cli-held", "--database-url", sys_url)
    assert code == 0 and payload == {"workflow_id": "cli-held", "previous_status": "PENDING", "status": "CANCELLED", "cancelled": True}
    release.set()

    code, payload = run_json(capsys, "workflow", "resume", "cli-held", "--database-url", sys_url)
    assert code == 0 and payload["resumed"] is True and payload["previous_status"] == "CANCELLED"
    assert payload["status"] in ("ENQUEUED", "PENDING", "SUCCESS")

    def finished():
        row = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'cli-held'").fetchone()
        return row[0] == "SUCCESS"

    wait_until(finished, "the resumed workflow to finish")
    code, out, _ = run(capsys, "workflow", "resume", "cli-held", "--database-url", sys_url)
    assert code == 0 and "nothing to resume" in out
    code, payload = run_json(capsys, "workflow", "cancel", "cli-held", "--database-url", sys_url)
    assert code == 0 and payload["cancelled"] is False and payload["status"] == "SUCCESS"


# -- queues --------------------------------------------------------------------------------------


def test_queue_list_counts_and_limits(sys_url, db, capsys, tmp_path, monkeypatch):
    from runtime import DBOSClient

    client = DBOSClient(system_database_url=sys_url)
    try:
        for i in range(2):
            client.enqueue({"workflow_name": "nobody_runs_this", "queue_name": "cli-idle"}, i)
        client.enqueue({"workflow_name": "nobody_runs_this", "queue_name": "cli-idle", "delay_seconds": 600})
    finally:
        client.destroy()
    # Limits come from what live members declared in code (recorded when they register).
    db.execute(
        "INSERT INTO dbos.pgfleet_executors (executor_id, epoch, host, pid, status, queue_limits) VALUES "
        "('cli-member', 1, 'h', 1, 'active', %s)",
        ('{"cli-limited": {"concurrency": 3, "worker_concurrency": null, "rate_limit": [10, 60.0], '
         '"partitioned": false, "priority_enabled": false}}',),
    )

    # A queue registered in the database (DBOS.register_queue) shows its row's limits.
    client = DBOSClient(system_database_url=sys_url)
    try:
        client.register_queue("cli-registered", concurrency=7)
    finally:
        client.destroy()

    code, queues = run_json(capsys, "queue", "list", "--database-url", sys_url)
    assert code == 0
    assert queues[0] == {"queue_name": "cli-idle", "enqueued": 2, "delayed": 1, "running": 0, "limits": None, "source": None}
    assert queues[1]["queue_name"] == "cli-limited" and queues[1]["limits"]["concurrency"] == 3
    assert queues[1]["source"] == "code"
    assert queues[2]["queue_name"] == "cli-registered" and queues[2]["limits"]["concurrency"] == 7
    assert queues[2]["source"] == "database" and queues[2]["enqueued"] == 0
    code, out, _ = run(capsys, "queue", "list", "--database-url", sys_url)
    assert code == 0 and "concurrency=3 rate=10/60.0s" in out and "concurrency=7" in out
    code, status = run_json(capsys, "status", "--database-url", sys_url)
    assert code == 0 and status["queues"] == queues and status["leader_term"] is None
    assert [m["executor_id"] for m in status["members"]] == ["cli-member"]
    # The URL may also come from a config file (over the environment) or the environment alone.
    monkeypatch.setenv("PGFLEET_SYSTEM_DATABASE_URL", f"postgresql://u@127.0.0.1:{free_port()}/x")
    config = write(tmp_path, "read.toml", f'system_database_url = "{sys_url}"\n')
    assert run_json(capsys, "queue", "list", "--config", config) == (0, queues)
    assert run(capsys, "queue", "list")[0] == 1
    monkeypatch.setenv("PGFLEET_SYSTEM_DATABASE_URL", sys_url)
    assert run_json(capsys, "queue", "list") == (0, queues)


# -- check ---------------------------------------------------------------------------------------


def test_check_a_good_config(sys_url, capsys, tmp_path):
    config = write(tmp_path, "pgfleet.toml", f'app = "shop.worker"\nworkers = 3\nname = "node-a"\nsystem_database_url = "{sys_url}"\nlog_level = "DEBUG"\n')
    code, payload = run_json(capsys, "check", "--config", config)
    assert code == 0 and payload["ok"] is True
    assert payload["config"]["settings"]["workers"] == 3 and payload["config"]["settings"]["name"] == "node-a"
    assert payload["database"]["reachable"] is True and payload["database"]["schema_version"] == LATEST_VERSION
    code, out, _ = run(capsys, "check", "--config", config)
    assert code == 0 and "config: ok" in out and "database: ok" in out and "up to date" in out


def test_check_bad_configs_exit_2(capsys, tmp_path):
    unknown = write(tmp_path, "unknown.toml", "workers = 2\nwrokers = 3\n")
    code, out, err = run(capsys, "check", "--config", unknown)
    assert code == 2 and "unknown key 'wrokers'" in err and "unknown.toml" in err and "did you mean 'workers'" in err

    malformed = write(tmp_path, "malformed.toml", 'workers = 2\nname = "node\n')
    code, payload = run_json(capsys, "check", "--config", malformed)
    assert code == 2 and payload["ok"] is False
    assert "malformed.toml" in payload["config"]["error"] and "line 2" in payload["config"]["error"]

    for text, needle in (
        ("workers = 0\n", "'workers' must be at least 1"),
        ('workers = "4"\n', "'workers' must be an integer"),
        ('executor_id = "x"\n', "'executor_id' cannot be set"),
        ('heartbeat_interval_sec = "fast"\n', "heartbeat_interval_sec"),
        ('system_database_url = "mysql://x"\n', "not a PostgreSQL URL"),
    ):
        code, _, err = run(capsys, "check", "--config", write(tmp_path, "bad.toml", text))
        assert code == 2 and needle in err, (text, err)
    code, _, err = run(capsys, "check", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "does not exist" in err


def test_check_database_unreachable_missing_or_embedded(pg_server_url, capsys, tmp_path, monkeypatch):
    from psycopg.conninfo import make_conninfo

    code, payload = run_json(capsys, "check", "--database-url", f"postgresql://u@127.0.0.1:{free_port()}/x", "--timeout", "2")
    assert code == 1 and payload["database"]["reachable"] is False
    # The server answers but the database is not there yet: the first worker creates it.
    code, payload = run_json(capsys, "check", "--database-url", make_conninfo(pg_server_url, dbname="cli_never_created"))
    assert code == 0 and payload["database"]["database_exists"] is False
    # No URL anywhere: the embedded server would be used; it is not running.
    monkeypatch.setenv("PGFLEET_EMBEDDED_DATA_DIR", str(tmp_path / "embedded"))
    code, payload = run_json(capsys, "check")
    assert code == 0 and payload["database"]["embedded"] is True and payload["database"]["running"] is False
    # The environment's URL counts too.
    monkeypatch.setenv("DBOS_SYSTEM_DATABASE_URL", f"postgresql://u@127.0.0.1:{free_port()}/x")
    assert run(capsys, "check")[0] == 1


# -- settings ------------------------------------------------------------------------------------


def test_settings_precedence_flags_over_file_over_environment(tmp_path):
    environ = {
        "PGFLEET_WORKERS": "2",
        "PGFLEET_NAME": "env-node",
        "PGFLEET_QUEUES": "a, b",
        "PGFLEET_GRACE": "5",
        "PGFLEET_SYSTEM_DATABASE_URL": "postgresql://env@h/envdb",
        "DBOS_SYSTEM_DATABASE_URL": "postgresql://dbos@h/ignored",
        "PGFLEET_METRICS_PORT": "9100",
        "PGFLEET_LOG_LEVEL": "",  # empty: unset
    }
    config = write(tmp_path, "fleet.toml", 'workers = 3\nname = "file-node"\nboot_deadline = 12.5\nlog_level = "WARNING"\n')
    settings = load_settings(config, {"workers": 4, "name": None, "metrics_port": 9200}, environ)
    assert settings["workers"] == 4 and settings["sources"]["workers"] == "--workers"
    assert settings["name"] == "file-node" and "fleet.toml" in settings["sources"]["name"]
    assert settings["queues"] == ("a", "b") and settings["sources"]["queues"] == "environment variable PGFLEET_QUEUES"
    assert settings["grace"] == 5.0 and settings["boot_deadline"] == 12.5 and settings["metrics_port"] == 9200
    assert settings["worker_config"] == {"system_database_url": "postgresql://env@h/envdb", "log_level": "WARNING"}

    defaults = load_settings(None, {}, {})
    assert defaults["workers"] == 1 and defaults["name"] == socket.gethostname() and defaults["queues"] is None
    assert defaults["grace"] == 30.0 and defaults["worker_config"] == {}
    assert load_settings(None, {}, {"DBOS_SYSTEM_DATABASE_URL": "postgresql://d@h/db"})["worker_config"] == {"system_database_url": "postgresql://d@h/db"}

    with pytest.raises(SettingsError, match="PGFLEET_WORKERS.*must be an integer"):
        load_settings(None, {}, {"PGFLEET_WORKERS": "many"})
    with pytest.raises(SettingsError, match="'queues' must be a list"):
        load_settings(write(tmp_path, "q.toml", "queues = 3\n"), {}, {})


def test_supervise_flags_become_supervisor_options(tmp_path, capsys):
    config = write(tmp_path, "node.toml", 'app = "from-file"\nworkers = 2\nqueues = ["orders"]\nsystem_database_url = "postgresql://f@h/db"\n')
    environ = {"PGFLEET_NAME": "env-node", "PGFLEET_GRACE": "7"}
    args = build_parser().parse_args(
        ["supervise", "shop.app", "--workers", "5", "--queues", "a,b", "--queues", "c", "--config", config, "--metrics-port", "9187"]
    )
    kwargs = supervisor_options_kwargs(supervisor_settings(args, environ))
    assert kwargs == {
        "app": "shop.app",
        "workers": 5,
        "name": "env-node",
        "queues": ("a", "b", "c"),
        "grace_sec": 7.0,
        "metrics_port": 9187,
        "worker_config": {"system_database_url": "postgresql://f@h/db"},
        "boot_deadline_sec": 30.0,
    }
    kwargs = supervisor_options_kwargs(supervisor_settings(build_parser().parse_args(["supervise", "--config", config]), {}))
    assert kwargs["app"] == "from-file" and kwargs["workers"] == 2 and kwargs["queues"] == ("orders",)

    # Bad settings are reported before any supervisor is looked for.
    code, _, err = run(capsys, "supervise")
    assert code == 2 and "nothing to supervise" in err
    code, _, err = run(capsys, "supervise", "app", "--workers", "0")
    assert code == 2 and "'workers' must be at least 1" in err

    supervisor = pytest.importorskip("cluster.process.supervisor")
    from cluster.process.cli import build_supervisor_options

    options = build_supervisor_options(args, environ)
    assert isinstance(options, supervisor.SupervisorOptions)
    assert options.workers == 5 and options.name == "env-node" and options.queues == ("a", "b", "c")
