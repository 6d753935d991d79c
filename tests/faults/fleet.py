"""Fault tools for whole supervised nodes: start `pgfleet supervise` nodes, SIGKILL or SIGSTOP a
node's process tree or one of its workers, restart an embedded Postgres, terminate pgfleet's
backends. Every fault returns what it did (pids, counts) so a run can log it.

Used by tests/test_chaos_fleet.py; nothing here is chaos-specific, so other failover tests can
start nodes and inject the same faults.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

# Run a supervisor whose restart backoff is shortened (a deterministic hook: the module
# constants, as in tests/test_supervisor.py), through the same entry point as `pgfleet supervise`.
_RUN_SUPERVISOR = """
import sys
import cluster.process.supervisor as s
s.BACKOFF_BASE_SEC = 0.1
s.BACKOFF_MAX_SEC = 0.5
from cluster.process.cli import main
sys.exit(main(sys.argv[1:]))
"""


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def descendants(root: int) -> set[int]:
    """``root`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return {p for p in found if pid_alive(p)}


def signal_all(pids: set[int] | list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


class Node:
    """One `pgfleet supervise APP --name NAME --workers N` node, in a session of its own."""

    def __init__(self, name: str, app: str, workers: int, config: dict[str, Any], env: dict[str, str], workdir: Path,
                 repo_root: Path) -> None:  # fmt: skip
        self.name, self.app, self.workers, self.env, self.repo_root = name, app, workers, env, repo_root
        self.log = workdir / f"{name}.log"
        self.config = workdir / f"{name}.toml"
        self.config.write_text("".join(f"{k} = {v!r}\n" for k, v in config.items()))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> int:
        cmd = [sys.executable, "-c", _RUN_SUPERVISOR, "supervise", self.app, "--name", self.name,
               "--workers", str(self.workers), "--grace", "2", "--config", str(self.config)]  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=self.repo_root, env={**os.environ, "PYTHONPATH": str(self.repo_root), **self.env},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.starts += 1
        return self.proc.pid

    def tree(self) -> set[int]:
        return descendants(self.proc.pid) if self.proc and self.proc.poll() is None else set()

    def worker_pids(self, query: Callable[..., list[tuple]]) -> dict[str, int]:
        """executor id → pid of this node's registered workers that run in its tree now."""
        tree = self.tree()
        rows = query("SELECT executor_id, pid FROM dbos.pgfleet_executors WHERE executor_id LIKE %s AND status = 'active'",
                     (self.name + "-%",))  # fmt: skip
        return {e: p for e, p in rows if p in tree}

    def kill(self) -> set[int]:
        """SIGKILL the supervisor and every process below it at once; wait for the supervisor."""
        tree = self.tree()
        if self.proc is None:
            return tree
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        signal_all(tree, signal.SIGKILL)  # anything that left the process group
        self.proc.wait(10)
        return tree

    def pause(self) -> set[int]:
        """SIGSTOP the supervisor first (so it sees nothing of its workers' pause), then the rest."""
        tree = self.tree()
        if self.proc is not None:
            signal_all([self.proc.pid], signal.SIGSTOP)
        signal_all(tree, signal.SIGSTOP)
        return tree

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def restart_postgres(server: Any, mode: str, downtime_sec: float) -> dict[str, Any]:
    """Stop an :class:`sysdb.embedded.EmbeddedPostgres` (``fast``: clean; ``immediate``: a crash
    and WAL recovery), stay down ``downtime_sec``, start it again on the same port."""
    old_pid = server.status().pid
    t0 = time.monotonic()
    server.stop(mode=mode)
    time.sleep(downtime_sec)
    server.ensure_running()
    return {"mode": mode, "old_postmaster": old_pid, "new_postmaster": server.status().pid,
            "down_sec": round(time.monotonic() - t0, 2)}  # fmt: skip


def terminate_backends(admin_url: str, dbname: str, rng: random.Random, fraction: float = 0.5,
                       application_prefix: str = "pgfleet") -> dict[str, Any]:  # fmt: skip
    """pg_terminate_backend a random ``fraction`` of the backends pgfleet opened on ``dbname``
    (pools, heartbeat, leader and listener sessions: application_name ``pgfleet*``)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, application_name FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s "
            "AND pid <> pg_backend_pid() ORDER BY pid",
            (dbname, application_prefix + "%"),
        ).fetchall()
        chosen = rng.sample(rows, max(1, int(len(rows) * fraction))) if rows else []
        for pid, _ in chosen:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    apps: dict[str, int] = {}
    for _, app in chosen:
        apps[app] = apps.get(app, 0) + 1
    return {"terminated": len(chosen), "of": len(rows), "by_application": apps}
