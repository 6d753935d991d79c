"""Pausing a process at a known point (a statement that waits on a lock: ``faults.locks``).

- :func:`pause_here`, called by an app under test at a named point: the first time the point is
  reached in a process whose ``PGFLEET_PAUSE_AT`` names it, the process stops itself (SIGSTOP),
  exactly there (e.g. between two steps of a workflow), until the test sends SIGCONT.
- :func:`wait_stopped`: the test's side, until ``/proc/<pid>/stat`` says the process is stopped.

Real processes and real signals: nothing here changes what the code under test does, it only
chooses when it is frozen.
"""

from __future__ import annotations

import os
import signal
import threading
import time

__all__ = ["PAUSE_ENV", "pause_here", "wait_stopped"]

PAUSE_ENV = "PGFLEET_PAUSE_AT"
_reached: set[str] = set()
_lock = threading.Lock()


def pause_here(point: str) -> None:
    """Stop this process (SIGSTOP to itself) the first time ``point`` is reached, if
    ``PGFLEET_PAUSE_AT`` names it; returns when the process is continued."""
    if os.environ.get(PAUSE_ENV) != point:
        return
    with _lock:
        if point in _reached:
            return
        _reached.add(point)
    # To this very thread: it stops before it returns to Python (a signal sent to the process
    # may be taken by another thread while this one runs on for a few more statements).
    signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) is in parentheses and may contain spaces.
        return f.read().rsplit(")", 1)[1].split()[0]


def wait_stopped(pid: int, timeout: float = 30.0) -> None:
    """Wait until process ``pid`` is stopped (state T); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while _state(pid) not in ("T", "t"):
        if time.monotonic() >= deadline:
            raise AssertionError(f"process {pid} did not stop within {timeout}s")
        time.sleep(0.01)
