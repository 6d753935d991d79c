"""The parent's plumbing for ``queue.py``: worker processes and one engine's fresh databases.

``Child`` is one worker process (this benchmark's ``queue.py --worker ROLE``) whose stdout is
read in a thread (its ready line, then its result line) and whose stderr is kept in a temporary
file for the error message. ``EngineRun`` holds what every phase of one engine shares: its
interpreter, the server, the run's stamp, fresh databases named
``qbench_<engine>_<timestamp>_<phase>`` (dropped afterwards unless ``--keep-databases``) and the
worker command line. The phases themselves live in ``queue_drain.py``, ``queue_latency.py`` and
``queue_idle.py``.
"""

from __future__ import annotations

import argparse
import json
import queue as stdlib_queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

if __package__:
    from . import common, queue_worker
else:  # loaded by path by queue.py, which has loaded these the same way first
    common = sys.modules["pgfleet_bench_common"]
    queue_worker = sys.modules["pgfleet_bench_queue_worker"]

READY_PREFIX = queue_worker.READY_PREFIX
QUEUE_SCRIPT = Path(__file__).resolve().parent / "queue.py"


class Child:
    """A worker process; its stdout is read in a thread, its stderr kept in a temp file."""

    def __init__(self, cmd: list[str], label: str) -> None:
        self.cmd = cmd
        self.label = label
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, env=common.worker_env(), cwd=str(common.REPO_ROOT))
        self._stdout: list[str] = []
        self._ready: stdlib_queue.Queue[dict[str, Any] | None] = stdlib_queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._stdout.append(line)
            if line.startswith(READY_PREFIX):
                self._ready.put(json.loads(line[len(READY_PREFIX):]))
        self._ready.put(None)

    def _fail(self, what: str) -> SystemExit:
        self._stderr.seek(0)
        sys.stderr.write("".join(self._stdout)[-4000:])
        sys.stderr.write(self._stderr.read()[-4000:])
        return SystemExit(f"[bench] {self.label} {what} (exit code {self.proc.poll()}): {' '.join(self.cmd)}")

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        try:
            ready = self._ready.get(timeout=timeout)
        except stdlib_queue.Empty:
            self.kill()
            raise self._fail(f"did not report ready within {timeout:.0f}s") from None
        if ready is None:
            raise self._fail("exited before it was ready")
        return ready

    def finish(self, timeout: float, stop: bool) -> dict[str, Any]:
        """Send STOP (serving roles) or just close stdin, wait, and return the result line."""
        try:
            assert self.proc.stdin is not None
            if stop:
                self.proc.stdin.write("STOP\n")
                self.proc.stdin.flush()
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self._fail(f"did not finish within {timeout:.0f}s") from None
        self._reader.join(5)
        result = common.parse_result("".join(self._stdout))
        if self.proc.returncode != 0 or result is None:
            raise self._fail("failed")
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class EngineRun:
    """What every phase of one engine shares; each phase runs on a fresh database."""

    def __init__(self, engine: str, python: str, server_url: str, stamp: str, args: argparse.Namespace) -> None:
        self.engine = engine
        self.python = python
        self.server_url = server_url
        self.stamp = stamp
        self.args = args
        self.info: dict[str, Any] = {}

    def database(self, phase: str) -> tuple[str, str]:
        """A fresh database for ``phase``: (name, URL)."""
        dbname = f"qbench_{self.engine}_{self.stamp}_{phase}"
        common.admin(self.server_url, f'DROP DATABASE IF EXISTS "{dbname}"')
        common.admin(self.server_url, f'CREATE DATABASE "{dbname}"')
        return dbname, common.with_database(self.server_url, dbname)

    def drop(self, dbname: str) -> None:
        """Drop a phase's database, unless ``--keep-databases``."""
        if self.args.keep_databases:
            return
        try:
            common.admin(self.server_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        except Exception as exc:  # pragma: no cover - report, do not mask the run's result
            print(f"[bench] could not drop {dbname}: {exc}", file=sys.stderr)

    def _cmd(self, role: str, url: str, executor_id: str, serve: list[str] | None = None) -> list[str]:
        a = self.args
        cmd = [self.python, str(QUEUE_SCRIPT), "--worker", role, "--engine", self.engine,
               "--database-url", url, "--executor-id", executor_id, "--count", str(a.count), "--warmup", str(a.warmup),
               "--worker-concurrency", str(a.worker_concurrency), "--latency-count", str(a.latency_count),
               "--latency-warmup", str(a.latency_warmup)]
        if serve:
            cmd += ["--serve", ",".join(serve)]
        return cmd

    def note(self, result: dict[str, Any]) -> None:
        """Keep the engine's version and python (and the DBOS migration patch) from a result."""
        self.info.setdefault("version", result["version"])
        self.info.setdefault("python", result["python"])
        if result.get("dbos_migration_without_uuid_ossp"):
            self.info["dbos_migration_without_uuid_ossp"] = True

    def one_shot(self, role: str, url: str, extra: list[str] | None = None) -> dict[str, Any]:
        """Run a non-serving worker role to its end; its result line."""
        child = Child(self._cmd(role, url, f"qbench-{role}") + (extra or []), f"{self.engine} {role} worker")
        result = child.finish(self.args.timeout, stop=False)
        self.note(result)
        return result

    def serve(self, url: str, executor_id: str, serve: list[str]) -> Child:
        """Start a worker serving ``serve`` as ``executor_id`` (wait for it with ``wait_ready``)."""
        return Child(self._cmd("serve", url, executor_id, serve), f"{self.engine} serve worker {executor_id}")
