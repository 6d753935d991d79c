"""Waiting for a workflow's outcome, wherever in the fleet it runs.

A workflow running in this process is awaited in memory (its :class:`LocalRun`); any other is
awaited by polling its status row. The executor, ``DBOSClient`` and handles all wait here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sysdb import SystemDatabase
from sysdb.workflow_rows import WorkflowOutcome

from .errors import DBOSAwaitedWorkflowCancelledError, DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded, DBOSNonExistentWorkflowError
from .operations import ExecutorShutdown
from .serialization import deserialize, deserialize_exception
from .status import TERMINAL_STATUSES

__all__ = ["LocalRun", "await_outcome", "decode_outcome"]

# Waiting for a workflow that runs elsewhere: poll its row, backing off to this interval.
RESULT_POLL_MAX_INTERVAL_SEC = 0.5
RESULT_POLL_FIRST_INTERVAL_SEC = 0.005


@dataclass
class LocalRun:
    """A workflow running in this process, so local waiters need not poll the database."""

    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None
    # True only when the outcome was written to the database by this run.
    recorded: bool = False
    # The executor generation it runs under (an older one: abandoned, still stopping).
    generation: int = 0


def decode_outcome(workflow_id: str, row: WorkflowOutcome) -> Any:
    """Return the recorded result of a finished workflow, or raise its recorded error."""
    status = row.status
    if status == "SUCCESS":
        return deserialize(row.output, row.serialization, what="workflow output")
    if status == "ERROR":
        raise deserialize_exception(row.error, row.serialization)
    if status == "CANCELLED":
        raise DBOSAwaitedWorkflowCancelledError(workflow_id)
    raise DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded(workflow_id)


def await_outcome(
    db: SystemDatabase,
    workflow_id: str,
    timeout_sec: float | None,
    stop: threading.Event,
    local_run: Callable[[str], LocalRun | None] | None = None,
) -> Any:
    """Wait for a workflow to finish, wherever it runs; return its result or raise its error.

    A workflow running in this process is awaited in memory (``local_run``); otherwise its
    status row is polled, backing off from 5 ms to 0.5 s. Raises :class:`TimeoutError` after
    ``timeout_sec`` and :class:`ExecutorShutdown` when ``stop`` is set.
    """
    deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
    interval = RESULT_POLL_FIRST_INTERVAL_SEC
    while True:
        local = local_run(workflow_id) if local_run is not None else None
        if local is not None:
            local.done.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if local.done.is_set() and local.recorded:
                if local.error is not None:
                    raise local.error
                return local.value
        row = db.workflows.outcome(workflow_id)
        if row is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        if row.status in TERMINAL_STATUSES:
            return decode_outcome(workflow_id, row)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout_sec}s")
        if stop.wait(interval):
            raise ExecutorShutdown()
        interval = min(interval * 1.5, RESULT_POLL_MAX_INTERVAL_SEC)
