"""Waiting for a workflow's outcome, wherever in the fleet it runs.

A workflow running in this process is awaited in memory (its :class:`LocalRun`); any other is
awaited by polling its status row. The executor, ``DBOSClient`` and handles all wait here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sysdb import SystemDatabase, now_ms
from sysdb.workflow_rows import WorkflowOutcome

from .aio import AsyncWork, in_thread
from .context import WorkflowContext, current_workflow
from .errors import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded,
    DBOSNonExistentWorkflowError,
    DBOSWorkflowFencedError,
)
from .operations import NOT_RECORDED, ExecutorShutdown, replay_recorded
from .serialization import deserialize, deserialize_exception, serialize, serialize_exception

if TYPE_CHECKING:
    from .executor import Executor
from .status import TERMINAL_STATUSES

__all__ = ["LocalRun", "await_outcome", "await_outcome_async", "decode_outcome", "recorded_result_async", "get_result_recorded"]

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
    # The execution itself: a cancel made in this process marks it lost at once, so it stops
    # before its next step body, as DBOS's per-step status check stops it.
    context: WorkflowContext | None = None
    # Async waiters (their loop and future), woken by finish().
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(default_factory=list)
    _waiters_lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self) -> None:
        """The run ended (its outcome recorded, or not): wake every waiter."""
        with self._waiters_lock:
            self.done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait_async(self, timeout_sec: float | None) -> None:
        """Wait on this task's loop (no thread held) until the run ends, or the timeout passes."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._waiters_lock:
            if self.done.is_set():
                return
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_sec)
        except asyncio.TimeoutError:  # TimeoutError from 3.11 on
            pass


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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


# What the two helpers below return when the workflow has not finished yet.
_POLL_AGAIN: Any = object()


def _local_outcome(local: LocalRun) -> Any:
    """The outcome a local run recorded (returned, or its error raised), else _POLL_AGAIN (it
    still runs, or ended without recording: the row says what happened)."""
    if local.done.is_set() and local.recorded:
        if local.error is not None:
            raise local.error
        return local.value
    return _POLL_AGAIN


def _row_outcome(workflow_id: str, row: WorkflowOutcome | None, deadline: float | None, timeout_sec: float | None) -> Any:
    """The outcome a polled status row settles (returned or raised), else _POLL_AGAIN; past
    ``deadline`` (monotonic) a TimeoutError."""
    if row is None:
        raise DBOSNonExistentWorkflowError("target", workflow_id)
    if row.status in TERMINAL_STATUSES:
        return decode_outcome(workflow_id, row)
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout_sec}s")
    return _POLL_AGAIN


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
            if (outcome := _local_outcome(local)) is not _POLL_AGAIN:
                return outcome
        if stop.is_set():  # its database may be closed by now: stop, do not read it
            raise ExecutorShutdown()
        if (outcome := _row_outcome(workflow_id, db.workflows.outcome(workflow_id), deadline, timeout_sec)) is not _POLL_AGAIN:
            return outcome
        if stop.wait(interval):
            raise ExecutorShutdown()
        interval = min(interval * 1.5, RESULT_POLL_MAX_INTERVAL_SEC)


async def await_outcome_async(
    db: SystemDatabase,
    workflow_id: str,
    timeout_sec: float | None,
    stop: threading.Event,
    local_run: Callable[[str], LocalRun | None] | None,
    work: AsyncWork | None,
) -> Any:
    """:func:`await_outcome` for asyncio code: waits on the loop, reads rows in ``work``'s
    threads, so a thousand waiting tasks hold no thread."""
    deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
    interval = RESULT_POLL_FIRST_INTERVAL_SEC
    while True:
        local = local_run(workflow_id) if local_run is not None else None
        if local is not None:
            await local.wait_async(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if (outcome := _local_outcome(local)) is not _POLL_AGAIN:
                return outcome
        if stop.is_set():  # its database may be closed by now: stop, do not read it
            raise ExecutorShutdown()
        row = await in_thread(work, db.workflows.outcome, workflow_id)
        if (outcome := _row_outcome(workflow_id, row, deadline, timeout_sec)) is not _POLL_AGAIN:
            return outcome
        if stop.is_set():  # before sleeping (the sync wait's stop.wait does both)
            raise ExecutorShutdown()
        await asyncio.sleep(interval)
        interval = min(interval * 1.5, RESULT_POLL_MAX_INTERVAL_SEC)


async def recorded_result_async(
    executor: Executor, parent: WorkflowContext, function_id: int, child_id: str, outcome: Callable[[], Awaitable[Any]]
) -> Any:
    """A child's outcome as the parent's ``DBOS.getResult`` at ``function_id`` (reserved on the
    loop): replayed if recorded, else awaited from ``outcome()`` and recorded."""
    recorded = parent.recorded_step(function_id)
    if recorded is not None:
        return replay_recorded(parent, function_id, "DBOS.getResult", recorded)
    started = now_ms()
    try:
        value = await outcome()
    except (DBOSWorkflowFencedError, ExecutorShutdown):
        raise
    except Exception as exc:
        await in_thread(executor.async_work, executor.checkpoint, parent, function_id, "DBOS.getResult",
                        error=serialize_exception(exc), started_at_ms=started, child_workflow_id=child_id)
        raise
    await in_thread(executor.async_work, executor.checkpoint, parent, function_id, "DBOS.getResult",
                    output=serialize(value), started_at_ms=started, child_workflow_id=child_id)
    return value


def get_result_recorded(executor: Executor, workflow_id: str) -> Any:
    """``DBOS.get_result``: wait for a workflow's outcome. Inside a workflow body, as DBOS records
    it, one ``DBOS.getResult`` step (no ``getStatus`` before it): it names no child workflow,
    and an error is not recorded (a replay waits for the workflow again)."""
    parent = current_workflow()
    if parent is None or parent.in_step or parent.in_transaction:
        return executor.wait_result(workflow_id)
    function_id, recorded = executor.begin_operation(parent, "DBOS.getResult")
    if recorded is not NOT_RECORDED:
        return recorded
    started = now_ms()
    value = executor.wait_result(workflow_id)
    executor.checkpoint(parent, function_id, "DBOS.getResult", output=serialize(value), started_at_ms=started)
    return value
