"""`pgfleet chaos` end to end, as an operator runs it: real nodes (`pgfleet supervise` trees) on
an embedded server of the run's own, a seeded storm of faults, the invariant table, --json and
--report, the exit codes, and cleanup on Ctrl-C.

The 60-second run of the built-in workload is in the default suite (one seed, from
``PGFLEET_CHAOS_SEEDS``, default "1"); tests/test_chaos_long.py has the 10-minute runs marked
``chaos``. With namespaces available (root on Linux) the run adds ``--netns`` and so partitions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.process.chaos.model import FAULT_KINDS
from cluster.process.chaos.netns import Netns
from conftest import REPO_ROOT, wait_until

SEEDS = [int(s) for s in os.environ.get("PGFLEET_CHAOS_SEEDS", "1").split(",") if s.strip()]
# Fast failure detection, so that a minute holds several takeovers.
FAST_CONFIG = "heartbeat_interval_sec = 0.5\nmember_timeout_sec = 2.0\n"


def run_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without a configured system database (the runs make their own server)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PGFLEET_SYSTEM_DATABASE_URL", "DBOS_SYSTEM_DATABASE_URL")}
    return {**env, "PYTHONPATH": str(REPO_ROOT), **(extra or {})}


def chaos(*args: str, timeout: float = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cluster.process.cli", "chaos", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, env=run_env(env))  # fmt: skip


def fast_config(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(FAST_CONFIG)
    return path


def netns_flags() -> list[str]:
    return ["--netns"] if Netns.available() is None else []


@pytest.mark.parametrize("seed", SEEDS)
def test_a_60_second_run_of_the_builtin_workload_holds_every_invariant(tmp_path, seed):
    report = tmp_path / "report.html"
    done = chaos("--seconds", "60", "--seed", str(seed), "--config", str(fast_config(tmp_path)), "--json",
                 "--report", str(report), *netns_flags())  # fmt: skip
    assert done.stdout.strip(), f"no JSON on stdout (exit {done.returncode}):\n{done.stderr[-4000:]}"
    result = json.loads(done.stdout)
    failed = [i for i in result["invariants"] if i["violations"]]
    assert done.returncode == 0 and result["passed"], json.dumps(failed, indent=1)[:6000] + done.stderr[-3000:]
    # Every invariant looked at something (a check of nothing proves nothing).
    unchecked = [i["name"] for i in result["invariants"] if i["checked"] == 0]
    assert not unchecked, f"invariants that checked nothing: {unchecked}"
    landed = {f["kind"] for f in result["faults"]}
    wanted = set(FAULT_KINDS) - (set() if netns_flags() else {"partition"})
    assert landed == wanted, f"faults landed {sorted(landed)}, wanted {sorted(wanted)}"
    assert result["takeovers"], "no workflow was taken over"
    assert result["workflows_by_status"].get("SUCCESS", 0) >= 100
    assert set(result["workflows_by_status"]) == {"SUCCESS"}
    assert f"--seed {seed}" in result["command"]
    html = report.read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_usage_errors_name_the_problem_and_start_nothing(tmp_path):
    done = chaos("--faults", "partition", "--seconds", "5")
    assert done.returncode == 2 and "partition needs --netns" in done.stderr, done.stderr
    done = chaos("--faults", "kill-node,explode")
    assert done.returncode == 2 and "unknown fault kind(s) explode" in done.stderr, done.stderr
    done = chaos(str(REPO_ROOT / "examples" / "orders.py"))
    assert done.returncode == 2 and "needs --workload MODULE:FUNCTION" in done.stderr, done.stderr
    done = chaos("--nodes", "1")
    assert done.returncode == 2 and "--nodes must be at least 2" in done.stderr, done.stderr
    done = chaos(str(REPO_ROOT / "examples" / "orders.py"), "--workload", "no_such_module_here:go")
    assert done.returncode == 2 and "no_such_module_here" in done.stderr, done.stderr


def test_a_run_whose_workload_starts_nothing_fails_with_the_evidence(tmp_path):
    """The harness's own invariant: a run that started no work proved nothing, and exits 1."""
    (tmp_path / "idle_workload.py").write_text("def nothing(client, wave):\n    return []\n")
    done = chaos(str(REPO_ROOT / "examples" / "orders.py"), "--workload", f"{tmp_path / 'idle_workload.py'}:nothing",
                 "--seconds", "6", "--nodes", "2", "--workers", "1", "--faults", "kill-worker",
                 "--config", str(fast_config(tmp_path)), "--drain-seconds", "5")  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    assert "FAIL" in done.stdout and "the workload started no workflow" in done.stdout, done.stdout
    assert "pgfleet chaos" in done.stdout and "--seed" in done.stdout  # the repro command
    # The evidence is kept, but nothing is left running: the server is stopped, its data kept.
    kept = [line for line in done.stderr.splitlines() if line.startswith("kept: kept the embedded server's data in ")]
    assert kept and "(stopped; start it with: pgfleet db start --data-dir " in kept[0], done.stderr[-2000:]
    data_dir = Path(kept[0].split(" data in ", 1)[1].split(" (stopped", 1)[0])
    assert data_dir.is_dir() and not (data_dir / "postmaster.pid").exists()


def _tree(root: int) -> set[int]:
    from cluster.process.chaos.nodes import descendants

    return descendants(root)


def test_ctrl_c_stops_and_removes_everything_the_run_started(tmp_path):
    workdir, err_path = tmp_path / "run", tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cluster.process.cli", "chaos", "--seconds", "300", "--nodes", "2", "--workers", "1",
             "--faults", "kill-worker", "--config", str(fast_config(tmp_path)), "--workdir", str(workdir)],
            cwd=REPO_ROOT, env=run_env(), stdout=subprocess.DEVNULL, stderr=err,
            text=True, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: "2 workers registered" in err_path.read_text(), "the run's nodes to register", timeout=120)
        started = _tree(proc.pid) - {proc.pid}
        postmaster = int((workdir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
        assert len(started) >= 4 and _alive(postmaster)  # two supervisors, their workers, the server
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err_path.read_text()[-3000:]
    assert "stopping the run and cleaning up" in err_path.read_text()
    left = {p for p in started | {postmaster} if _alive(p)}
    assert not left, f"processes the run started are still alive: {left}"
    assert not (workdir / "postgres").exists(), "the run's embedded server was left behind"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_configured_server_gets_a_scratch_database_and_restart_db_is_refused(tmp_path, pg_server_url):
    """`the configured one`: a URL from --config (or the environment) is where the run makes its
    scratch database; restart-db, which would restart that server, is refused up front."""
    config = tmp_path / "fleet.toml"
    config.write_text(FAST_CONFIG + f"system_database_url = {pg_server_url!r}\n")
    done = chaos("--faults", "restart-db", "--config", str(config))
    assert done.returncode == 2 and "restart-db needs the embedded server" in done.stderr, done.stderr


def test_a_short_run_on_a_configured_server_passes_and_drops_its_scratch_database(tmp_path, pg_server_url):
    import psycopg

    def scratch_databases() -> set[str]:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'pgfleet_chaos_%'")}

    before = scratch_databases()
    done = chaos("--seconds", "10", "--nodes", "2", "--workers", "1", "--seed", "4", "--faults", "kill-worker,terminate-backends",
                 "--config", str(fast_config(tmp_path)), "--database-url", pg_server_url, "--json")  # fmt: skip
    assert done.stdout.strip(), done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert done.returncode == 0 and result["passed"], json.dumps([i for i in result["invariants"] if i["violations"]])[:4000]
    assert "--database-url '<the same server>'" in result["command"] and "postgres@" not in result["command"]
    assert scratch_databases() == before, "the run left its scratch database behind"


def test_a_sigkilled_run_leaves_no_node_behind(tmp_path):
    """SIGKILL gives the run no chance to clean up: its nodes die with it anyway (each node's
    supervisor asks Linux for SIGKILL when the run dies, and its workers die with it)."""
    workdir, err_path = tmp_path / "run", tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cluster.process.cli", "chaos", "--seconds", "300", "--nodes", "2", "--workers", "1",
             "--faults", "kill-worker", "--config", str(fast_config(tmp_path)), "--workdir", str(workdir)],
            cwd=REPO_ROOT, env=run_env(), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: "2 workers registered" in err_path.read_text(), "the run's nodes to register", timeout=120)
        nodes = _tree(proc.pid) - {proc.pid}
        postmaster = int((workdir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
        proc.kill()
        proc.wait(30)
        wait_until(lambda: not {p for p in nodes if _alive(p)}, "the nodes to die with the run", timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster, signal.SIGKILL)  # the one thing a SIGKILLed run cannot take along
