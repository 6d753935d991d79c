"""examples/async_orders.py as its docstring runs it: a plain asyncio program, and a FastAPI web
front (a real uvicorn server) beside a `pgfleet supervise` fleet, with a SIGKILL of the front."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import REPO_ROOT, wait_until

EXAMPLE = str(REPO_ROOT / "examples" / "async_orders.py")
SUPERVISE = "import sys\nfrom cluster.process.cli import main\nsys.exit(main(sys.argv[1:]))\n"
# The web front with the fleet's short liveness settings (a dead front is noticed in ~1.5 s).
SERVE = """
import sys
sys.path.insert(0, {examples!r})
import async_orders
async_orders.CONFIG.update(heartbeat_interval_sec=0.25, member_timeout_sec=1.5)
async_orders.serve("127.0.0.1", int(sys.argv[1]))
"""


def _env(url: str, step_seconds: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PGFLEET_SYSTEM_DATABASE_URL": url,
            "ORDERS_STEP_SECONDS": step_seconds, "PYTHONUNBUFFERED": "1"}


def _steps(db: psycopg.Connection, workflow_id: str) -> list[tuple[int, str]]:
    rows = db.execute("SELECT function_id, function_name FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY 1",
                      (workflow_id,)).fetchall()
    return [(r[0], r[1].rsplit(".", 1)[-1]) for r in rows]


def test_the_async_example_runs_as_a_plain_program(sys_url, db):
    proc = subprocess.run([sys.executable, EXAMPLE], env=_env(sys_url, "0"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for n in range(1, 5):
        assert f"'order_id': 'async-order-{n}', 'charged': True, 'reserved': True" in proc.stdout
    assert "checkpoints of async-order-1: [(1, 'charge_payment'), (2, 'reserve_inventory'), (3, 'ship_order')]" in proc.stdout
    statuses = dict(db.execute("SELECT workflow_uuid, status FROM dbos.workflow_status").fetchall())
    assert statuses == {f"async-order-{n}": "SUCCESS" for n in range(1, 5)}
    assert _steps(db, "async-order-4") == [(1, "charge_payment"), (2, "reserve_inventory"), (3, "ship_order")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def processes():
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _start_fleet(url: str, tmp_path: Path, processes: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    config = tmp_path / "fleet.toml"
    config.write_text("heartbeat_interval_sec = 0.25\nmember_timeout_sec = 1.5\n")
    fleet = subprocess.Popen([sys.executable, "-c", SUPERVISE, "supervise", EXAMPLE, "--workers", "1", "--name", "n1",
                              "--grace", "5", "--config", str(config)],
                             cwd=REPO_ROOT, env=_env(url, "0"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    processes.append(fleet)
    return fleet


def _start_front(url: str, step_seconds: str, processes: list[subprocess.Popen[str]]) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    front = subprocess.Popen([sys.executable, "-c", SERVE.format(examples=str(REPO_ROOT / "examples")), str(port)],
                             cwd=REPO_ROOT, env=_env(url, step_seconds), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    processes.append(front)
    wait_until(lambda: _answers(port) or front.poll() is not None, "the web front to listen", timeout=60)
    assert front.poll() is None, front.communicate()[0][-3000:]
    return front, port


def _worker_ready(db: psycopg.Connection) -> bool:
    return bool(db.execute("SELECT 1 FROM dbos.pgfleet_executors WHERE executor_id = 'n1-0' AND status = 'active'").fetchone())


def test_the_web_front_starts_awaits_and_enqueues_for_the_fleet(sys_url, db, tmp_path, processes):
    pytest.importorskip("fastapi", reason="the web front needs fastapi (the test extra installs it)")
    pytest.importorskip("uvicorn", reason="the web front needs uvicorn (the test extra installs it)")
    fleet = _start_fleet(sys_url, tmp_path, processes)
    front, port = _start_front(sys_url, "0", processes)
    base = f"http://127.0.0.1:{port}/orders"
    wait_until(lambda: _worker_ready(db), "the fleet's worker to register", timeout=60)

    assert _http("POST", f"{base}/web-1") == (200, {"workflow_id": "web-1"})
    status, here = _http("GET", f"{base}/web-1")
    assert status == 200 and here["order_id"] == "web-1" and here["executor"] != "n1-0"  # ran in the web process

    assert _http("POST", f"{base}/web-2/queue") == (200, {"workflow_id": "web-2"})
    assert _http("GET", f"{base}/web-2") == (200, {"order_id": "web-2", "charged": True, "reserved": True, "executor": "n1-0"})
    # Posting an order again starts nothing new: the order id is the workflow id.
    assert _http("POST", f"{base}/web-1") == (200, {"workflow_id": "web-1"})
    assert db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()[0] == 2

    status, missing = _http("GET", f"{base}/no-such-order")
    assert status == 500 and missing["dbos_error"] == "DBOSNonExistentWorkflowError"

    for proc in (front, fleet):  # both stop cleanly on Ctrl-C
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0]
        assert proc.returncode == 0, out[-3000:]


def test_an_order_of_a_killed_web_front_is_finished_by_the_fleet(sys_url, db, tmp_path, processes):
    pytest.importorskip("fastapi", reason="the web front needs fastapi (the test extra installs it)")
    pytest.importorskip("uvicorn", reason="the web front needs uvicorn (the test extra installs it)")
    fleet = _start_fleet(sys_url, tmp_path, processes)
    # The front's reserve step waits ten minutes: it is certainly inside it when it dies.
    front, port = _start_front(sys_url, "600", processes)
    wait_until(lambda: _worker_ready(db), "the fleet's worker to register", timeout=60)

    assert _http("POST", f"http://127.0.0.1:{port}/orders/kill-1") == (200, {"workflow_id": "kill-1"})
    wait_until(lambda: _steps(db, "kill-1") == [(1, "charge_payment")], "the front to checkpoint the payment")
    front.kill()
    front.communicate(timeout=30)

    def finished() -> Any:
        row = db.execute("SELECT status, executor_id, output FROM dbos.workflow_status WHERE workflow_uuid = 'kill-1'").fetchone()
        return row if row and row[0] == "SUCCESS" else None

    status, executor, _ = wait_until(finished, "the fleet to take the order over and finish it", timeout=60)
    assert executor == "n1-0"
    assert _steps(db, "kill-1") == [(1, "charge_payment"), (2, "reserve_inventory"), (3, "ship_order")]
    fleet.send_signal(signal.SIGINT)
    out = fleet.communicate(timeout=60)[0]
    assert fleet.returncode == 0, out[-3000:]
    # The worker resumed after the recorded payment: it reserved and shipped, never charged.
    assert "reserving inventory for kill-1" in out and "shipping kill-1" in out
    assert "charging payment for kill-1" not in out
