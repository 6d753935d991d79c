"""The nodes of a chaos run: each a real ``pgfleet supervise APP`` process tree in a session of
its own (so one signal to its process group reaches all of it), optionally inside a network
namespace, with the attempt ledger on and its log in the run's work directory.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysdb import SystemDatabase

from ..settings import read_config_file

if TYPE_CHECKING:
    from .database import ChaosDatabase

__all__ = ["Node", "pid_alive", "descendants", "signal_all", "node_config_text"]

# Keys of the user's config that the node's own file replaces: the run decides where the
# system database is, and the ledger is what the checker reads.
_RUN_OWNED = ("system_database_url", "embedded_data_dir", "attempt_ledger")


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def descendants(root: int) -> set[int]:
    """``root`` and every live process below it, from /proc."""
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
    found: set[int] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return {p for p in found if pid_alive(p)}


def signal_all(pids: Iterable[int], signum: int) -> None:
    """Send ``signum`` to each pid, ignoring those already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _toml_value(value: Any) -> str:
    """A TOML value for what a TOML file parsed into (strings, numbers, booleans, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return ("-inf" if value < 0 else "inf") if not math.isnan(value) else "nan"
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"cannot write {type(value).__name__} {value!r} to a node's config file")


def node_config_text(config_file: str | Path | None, url: str, extra: Mapping[str, Any] | None = None) -> str:
    """The node's own config: the user's file (its keys checked as ``pgfleet supervise``
    checks them), then ``extra``, with ``system_database_url`` set and the attempt ledger on."""
    values: dict[str, Any] = read_config_file(config_file) if config_file is not None else {}
    values.update(extra or {})
    for key in _RUN_OWNED:
        values.pop(key, None)
    values["system_database_url"] = url
    values["attempt_ledger"] = True
    origin = f"# Written by pgfleet chaos from {config_file or 'no --config'}; the run owns {', '.join(_RUN_OWNED)}.\n"
    return origin + "".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items())


# Run as `python -c _DIE_WITH_RUN RUNNER_PID ARGS...`: ask Linux to SIGKILL this process when its
# parent (the run) dies, check the run did not die first, then become `python ARGS...` (the same
# pid, so the node's process group and its kill signals are unchanged). The supervisor's own
# workers already die with it. Elsewhere than Linux the node simply outlives a killed run.
_DIE_WITH_RUN = """
import ctypes, os, signal, sys
runner = int(sys.argv[1])
if sys.platform.startswith("linux"):
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass
if os.getppid() != runner:
    sys.exit("pgfleet chaos: the run ended before this node started")
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


class Node:
    """One ``pgfleet supervise APP --name NAME --workers N`` node (see the module docstring).

    ``prefix`` runs it elsewhere (``Netns.exec_prefix(i)``: the command execs in place, so the
    process started is the supervisor); ``extra_config`` adds settings (heartbeat, member
    timeout) on top of the user's ``config_file``.
    """

    def __init__(self, name: str, app: str, workers: int, *, url: str, config_file: str | Path | None, env: Mapping[str, str],
                 workdir: Path, prefix: list[str] | None = None, grace: float = 3.0,
                 extra_config: Mapping[str, Any] | None = None, cwd: Path | None = None) -> None:  # fmt: skip
        if workers < 1:
            raise ValueError(f"a node needs at least one worker, got {workers}")
        self.name, self.app, self.workers, self.url = name, app, workers, url
        workdir.mkdir(parents=True, exist_ok=True)
        # Each node is a host of its own: its own temporary directory, which holds the
        # supervisor's pidfile (one supervisor per name per host), so two runs on one machine
        # with the same node names do not refuse each other's supervisors.
        self.tmpdir = workdir / f"{name}.tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.env = {**env, "PGFLEET_ATTEMPT_LEDGER": "1", "PGFLEET_SYSTEM_DATABASE_URL": url, "TMPDIR": str(self.tmpdir)}
        self.prefix = list(prefix or [])
        self.grace = grace
        self.cwd = cwd or Path.cwd()
        self.log = workdir / f"{name}.log"
        self.config = workdir / f"{name}.toml"
        self.config.write_text(node_config_text(config_file, url, extra_config))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def command(self) -> list[str]:
        """The command line the node runs: the supervisor, through a launcher that ties its life
        to the run's (so a SIGKILLed ``pgfleet chaos`` leaves no node behind)."""
        return [*self.prefix, sys.executable, "-c", _DIE_WITH_RUN, str(os.getpid()), "-m", "cluster.process.cli",
                "supervise", self.app, "--name", self.name, "--workers", str(self.workers), "--grace", str(self.grace),
                "--config", str(self.config)]  # fmt: skip

    def start(self) -> int:
        """Start the supervisor (it spawns the workers); returns its pid."""
        if self.alive():
            raise RuntimeError(f"node {self.name} is already running (pid {self.proc.pid if self.proc else '?'})")
        with open(self.log, "ab") as out:
            out.write(f"--- pgfleet chaos: start {self.starts + 1} of node {self.name}: {' '.join(self.command())}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.command(), cwd=self.cwd, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.starts += 1
        return self.proc.pid

    @property
    def pid(self) -> int | None:
        """The supervisor's pid while it runs."""
        return self.proc.pid if self.alive() and self.proc is not None else None

    def alive(self) -> bool:
        """Whether the supervisor process runs (a paused one does)."""
        return self.proc is not None and self.proc.poll() is None

    def tree(self) -> set[int]:
        """The supervisor and every process below it (empty when it is not running)."""
        return descendants(self.proc.pid) if self.proc is not None and self.alive() else set()

    def owns(self, executor_id: str | None) -> bool:
        """Whether an executor id is one of this node's worker slots (``NAME-<index>``)."""
        return bool(executor_id) and str(executor_id).rsplit("-", 1)[0] == self.name

    def worker_pids(self, db: ChaosDatabase | SystemDatabase) -> dict[str, int]:
        """executor id → pid of this node's registered, active workers that run in its tree now
        (``db``: the run's :class:`ChaosDatabase`, or any open handle on its system database)."""
        tree = self.tree()
        members = db.fleet.members() if isinstance(db, SystemDatabase) else db.members()
        return {m.executor_id: m.pid for m in members if self.owns(m.executor_id) and m.status == "active"
                and m.pid in tree}  # fmt: skip

    def kill(self) -> set[int]:
        """SIGKILL the supervisor and every process below it at once; the pids it hit."""
        tree = self.tree()
        if self.proc is None:
            return tree
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        signal_all(tree, signal.SIGKILL)  # anything that left the process group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        return tree

    def pause(self) -> set[int]:
        """SIGSTOP the supervisor first (so it sees nothing of its workers' pause), then the rest."""
        tree = self.tree()
        if self.proc is not None:
            signal_all([self.proc.pid], signal.SIGSTOP)
        signal_all(tree, signal.SIGSTOP)
        return tree

    def resume(self) -> set[int]:
        """SIGCONT the whole tree (workers first, then the supervisor)."""
        tree = self.tree()
        signal_all(tree - {self.proc.pid} if self.proc else tree, signal.SIGCONT)
        if self.proc is not None:
            signal_all([self.proc.pid], signal.SIGCONT)
        return tree

    def stop(self, grace: float | None = None) -> bool:
        """Stop the node: SIGTERM (it drains within ``grace``), wait, then SIGKILL what is left.
        True if it exited by itself."""
        if self.proc is None or not self.alive():
            return True
        grace = self.grace if grace is None else grace
        self.resume()  # a paused node would never see the SIGTERM
        signal_all([self.proc.pid], signal.SIGTERM)
        deadline = time.monotonic() + grace + 10.0  # the supervisor's own drain slack is 5 s
        while time.monotonic() < deadline and self.alive():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.2)
        clean = not self.alive()
        self.kill()  # its workers too, if any outlived it
        return clean

    def kill_everything(self) -> None:
        """The last resort of a cleanup (an error, Ctrl-C): SIGCONT and SIGKILL whatever of the
        node is left, its process group included. Never raises; safe to call again."""
        with contextlib.suppress(Exception):
            tree = self.tree()
            signal_all(tree, signal.SIGCONT)
            self.kill()

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the node's log (supervisor and workers)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
