"""`pgfleet supervise` with real processes: spawn, replace, fence, drain, die together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT, wait_until
from runtime import DBOSClient
from tests.faults.proxy import PgProxy

APP = str(REPO_ROOT / "tests" / "apps" / "supervised_app.py")
FAST = {"PGFLEET_HEARTBEAT": "0.25", "PGFLEET_MEMBER_TIMEOUT": "1.5"}

# Run a supervisor whose restart timings are shortened for the test (a deterministic hook:
# the module constants), through the same entry point as `pgfleet supervise`.
RUN = """
import sys
import cluster.process.supervisor as s
s.BACKOFF_BASE_SEC = 0.1
s.BACKOFF_MAX_SEC = 0.4
s.CRASH_LOOP_RESTARTS = 3
from cluster.process.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Node:
    """A supervisor process for one node name."""

    def __init__(self, url, ledger, name, *extra, env=None, grace="3"):
        self.url = url
        full_env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "PGFLEET_TEST_LEDGER": str(ledger),
            "PGFLEET_SYSTEM_DATABASE_URL": url,
            **(env or {}),
        }
        config = ledger.parent / f"{name}.toml"
        config.write_text('heartbeat_interval_sec = 0.25\nmember_timeout_sec = 1.5\n')
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RUN, "supervise", APP, "--name", name, "--grace", grace, "--config", str(config), *extra],
            cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def members(self, db):
        return {r[0]: r[1:] for r in db.execute(
            "SELECT executor_id, pid, epoch, status, supervisor_id FROM dbos.pgfleet_executors WHERE status = 'active'"
        )}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def nodes():
    started = []
    yield started
    for node in started:
        node.stop()


def worker_pids(db, prefix):
    return {r[0]: r[1] for r in db.execute(
        "SELECT executor_id, pid FROM dbos.pgfleet_executors WHERE status = 'active' AND executor_id LIKE %s", (prefix + "-%",)
    )}


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of someone else counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def enqueue_jobs(url, n, steps=4):
    client = DBOSClient(system_database_url=url)
    try:
        return [client.enqueue({"workflow_name": "supervised_job", "queue_name": "jobs", "workflow_id": f"job-{i}"}, f"job-{i}", steps)
                for i in range(n)]
    finally:
        client.destroy()


def test_workers_register_get_replaced_and_their_work_finishes(sys_url, db, tmp_path, nodes):
    node = Node(sys_url, tmp_path / "ledger", "nodea", "--workers", "2")
    nodes.append(node)
    pids = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(worker_pids(db, "nodea")), "two workers", 30)
    assert set(pids) == {"nodea-0", "nodea-1"}
    supervisor_ids = {r[0] for r in db.execute("SELECT supervisor_id FROM dbos.pgfleet_executors")}
    assert len(supervisor_ids) == 1 and next(iter(supervisor_ids)).startswith("nodea@")

    enqueue_jobs(sys_url, 6)
    wait_until(lambda: (tmp_path / "ledger").exists() and len((tmp_path / "ledger").read_text().splitlines()) >= 4, "work", 20)
    killed = pids["nodea-0"]
    os.kill(killed, signal.SIGKILL)
    # Replaced at once: same executor id, new pid, new epoch.
    replaced = wait_until(lambda: (lambda p: p if p.get("nodea-0") not in (None, killed) else None)(worker_pids(db, "nodea")), "replacement", 15)
    assert replaced["nodea-0"] != killed
    wait_until(
        lambda: db.execute("SELECT count(*) FROM dbos.workflow_status WHERE queue_name='jobs' AND status='SUCCESS'").fetchone()[0] == 6,
        "all jobs", 40,
    )
    slots = db.execute("SELECT slots FROM dbos.pgfleet_supervisors").fetchone()[0]
    assert [s["restarts"] for s in sorted(slots, key=lambda s: s["slot"])] == [1, 0]
    assert "SIGKILL" in slots[0]["last_exit"] or "SIGKILL" in slots[1]["last_exit"]
    # No position of any job was recorded twice, and every job has all its steps.
    assert db.execute(
        "SELECT count(*) FROM dbos.operation_outputs o JOIN dbos.workflow_status w USING (workflow_uuid) WHERE w.queue_name='jobs'"
    ).fetchone()[0] == 6 * 4


def test_sigterm_drains_and_exits_zero(sys_url, db, tmp_path, nodes):
    node = Node(sys_url, tmp_path / "ledger", "drainer", "--workers", "1")
    nodes.append(node)
    wait_until(lambda: worker_pids(db, "drainer"), "a worker", 30)
    enqueue_jobs(sys_url, 2, steps=3)
    wait_until(lambda: (tmp_path / "ledger").exists(), "work started", 20)
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(30) == 0
    # A clean exit while draining is what was asked for: said at INFO, not as a warning.
    exits = [line for line in node.proc.stderr.read().splitlines() if "event='worker exited'" in line]  # type: ignore[union-attr]
    assert exits and all(" INFO " in line for line in exits), exits
    # Drained: in-flight jobs finished within the grace period, or were handed back.
    rows = db.execute("SELECT status, error FROM dbos.workflow_status WHERE queue_name='jobs'").fetchall()
    import base64
    import pickle
    assert {r[0] for r in rows} <= {"SUCCESS", "ENQUEUED"}, [(r[0], r[1] and pickle.loads(base64.b64decode(r[1]))) for r in rows]
    assert db.execute("SELECT status FROM dbos.pgfleet_executors WHERE executor_id='drainer-0'").fetchone()[0] == "dead"
    assert db.execute("SELECT state FROM dbos.pgfleet_supervisors").fetchone()[0] == "stopped"


def test_children_die_with_a_sigkilled_supervisor_and_names_are_exclusive(sys_url, db, tmp_path, nodes):
    node = Node(sys_url, tmp_path / "ledger", "lonely", "--workers", "2")
    nodes.append(node)
    pids = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(worker_pids(db, "lonely")), "two workers", 30)

    twin = Node(sys_url, tmp_path / "ledger", "lonely")
    nodes.append(twin)
    assert twin.proc.wait(30) != 0
    assert "already runs on this host" in twin.proc.stderr.read()

    node.proc.kill()
    node.proc.wait(10)
    wait_until(lambda: not any(pid_alive(p) for p in pids.values()), "workers to die with their supervisor", 10)


def test_crash_looping_slot_is_reported_and_a_hung_boot_is_killed(sys_url, db, tmp_path, nodes):
    broken = Node(sys_url, tmp_path / "ledger", "broken", env={"PGFLEET_TEST_BREAK": "import"})
    nodes.append(broken)
    slots = wait_until(
        lambda: (lambda r: r[0] if r and r[0][0]["state"] == "crash_loop" else None)(
            db.execute("SELECT slots FROM dbos.pgfleet_supervisors WHERE name='broken'").fetchone()
        ),
        "the slot to be reported crash-looping", 60,
    )
    assert slots[0]["restarts"] >= 3 and "exit code" in slots[0]["last_exit"]

    hung = Node(sys_url, tmp_path / "ledger", "hung", "--boot-deadline", "2", env={"PGFLEET_TEST_BREAK": "hang"})
    nodes.append(hung)
    slot = wait_until(
        lambda: (lambda r: r[0][0] if r and r[0][0]["last_exit"] else None)(
            db.execute("SELECT slots FROM dbos.pgfleet_supervisors WHERE name='hung'").fetchone()
        ),
        "the hung worker to be killed", 30,
    )
    assert "SIGKILL" in slot["last_exit"]


def test_workers_serve_prometheus_metrics(sys_url, db, tmp_path, nodes):
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = Node(sys_url, tmp_path / "ledger", "metered", "--workers", "1", "--metrics-port", str(port))
    nodes.append(node)
    wait_until(lambda: worker_pids(db, "metered"), "a worker", 30)
    enqueue_jobs(sys_url, 2, steps=2)
    wait_until(
        lambda: db.execute("SELECT count(*) FROM dbos.workflow_status WHERE queue_name='jobs' AND status='SUCCESS'").fetchone()[0] == 2,
        "the jobs", 30,
    )

    def scrape():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()

    text = scrape()
    assert 'pgfleet_queue_claims_total{queue="jobs"} 2.0' in text
    assert 'pgfleet_workflows_finished_total{status="SUCCESS"} 2.0' in text
    assert 'pgfleet_steps_total{outcome="success"} 4.0' in text
    assert "pgfleet_step_duration_seconds_count 4.0" in text
    assert "pgfleet_heartbeat_age_seconds" in text
    assert "pgfleet_leader_term" in text
    # The only member leads, so it also exports the fleet's queue gauges (tests/test_queue_gauges.py).
    text = wait_until(lambda: (lambda t: t if "pgfleet_queue_started_last_minute" in t else None)(scrape()), "the leader's queue gauges", 30)
    assert 'pgfleet_queue_depth{queue="jobs",status="ENQUEUED"} 0.0' in text
    assert 'pgfleet_queue_started_last_minute{queue="jobs"} 2.0' in text


def test_app_forms_module_file_and_attribute(tmp_path, monkeypatch):
    """APP may be a module, a file, or module:attribute naming a DBOSConfig (or a function
    returning one); the worker imports it the same way in every form."""
    from cluster.process.worker import load_app

    package = tmp_path / "shopapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "workers.py").write_text(
        "CONFIG = {'name': 'shop', 'max_executor_threads': 8}\n"
        "def make_config():\n    return {'name': 'shop-made'}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_app("shopapp.workers") == ("workers", {})
    assert load_app("shopapp.workers:CONFIG") == ("workers", {"name": "shop", "max_executor_threads": 8})
    assert load_app("shopapp.workers:make_config") == ("workers", {"name": "shop-made"})
    assert load_app(str(package / "workers.py")) == ("workers", {})
    with pytest.raises(SystemExit, match="has no attribute 'MISSING'"):
        load_app("shopapp.workers:MISSING")
    with pytest.raises(SystemExit, match="does not exist"):
        load_app("nowhere/app.py")


def test_a_second_signal_stops_at_once(sys_url, db, tmp_path, nodes):
    node = Node(sys_url, tmp_path / "ledger", "impatient", "--workers", "1", grace="60",
                env={"PGFLEET_TEST_STEP_SECONDS": "30"})
    nodes.append(node)
    pids = wait_until(lambda: worker_pids(db, "impatient"), "a worker", 30)
    enqueue_jobs(sys_url, 1, steps=2)
    wait_until(lambda: (tmp_path / "ledger").exists(), "a long step to start", 20)
    node.proc.send_signal(signal.SIGTERM)  # drain: would wait up to 60 s for the 30 s step
    time.sleep(0.5)
    started = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)  # now
    assert node.proc.wait(20) == 0
    assert time.monotonic() - started < 10
    wait_until(lambda: not any(pid_alive(p) for p in pids.values()), "the worker to be gone", 10)


def test_a_signal_while_the_database_is_down_still_ends_the_supervisor_soon(sys_url, db, tmp_path, nodes):
    # The supervisor's database calls are best effort (its state row, fencing a dead worker:
    # the leader's sweep does that later). With the database gone each used to wait out a
    # 10 s retry budget, so a Ctrl-C took about 100 s to end `pgfleet supervise`.
    with PgProxy.start(sys_url) as proxy:
        node = Node(proxy.url, tmp_path / "ledger", "cutoff", "--workers", "1", grace="3")
        nodes.append(node)
        pids = wait_until(lambda: worker_pids(db, "cutoff"), "a worker", 30)
        proxy.close()  # the database is gone for everyone: links cut, new connections refused
        time.sleep(1.0)  # the supervisor's next report meets it
        started = time.monotonic()
        node.proc.send_signal(signal.SIGTERM)
        node.proc.wait(120)
        elapsed = time.monotonic() - started
    assert elapsed < 20, f"the supervisor took {elapsed:.0f} s to end with the database down"
    wait_until(lambda: not any(pid_alive(p) for p in pids.values()), "the worker to be gone", 10)
