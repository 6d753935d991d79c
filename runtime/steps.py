"""Steps and durable sleep: the checkpointed operations of a workflow (transactions are in
:mod:`runtime.transactions`).

Each takes the workflow's next step position (function id). On replay the recorded outcome is
returned (or its error raised) without running anything; otherwise the operation runs and its
outcome is written in one fenced round trip (``Executor.checkpoint`` →
``db.steps.record`` → ``sysdb/sql/record_step_output.sql``).
Called outside a workflow (or inside another step), a step is a plain function call.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from sysdb import now_ms

from . import metrics
from .context import WorkflowContext, active_workflow, current_workflow
from .errors import DBOSException, DBOSMaxStepRetriesExceeded, DBOSSerializationError, DBOSWorkflowCancelledError, DBOSWorkflowFencedError
from .operations import NOT_RECORDED, ExecutorShutdown, replay_recorded
from .registry import RegisteredStep
from .serialization import PORTABLE_JSON, serialize, serialize_exception
from .step_status import StepStatus, attempting, running_step
from .tracing import note_attempt, note_failed_attempt, operation_span, tracing_enabled

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["run_step", "durable_sleep", "durable_wake_time", "is_retryable", "retry_policy", "CONTROL_ERRORS", "SLEEP_FUNCTION_NAME",
           "observe_step", "sleep_checkpoint", "record_attempt", "sleeping_workflow"]

SLEEP_FUNCTION_NAME = "DBOS.sleep"
# The longest pause between two attempts of a retried step.
MAX_RETRY_INTERVAL_SEC = 3600.0
# Errors that stop a workflow: never retried, never recorded as a step's outcome.
CONTROL_ERRORS = (DBOSWorkflowFencedError, DBOSWorkflowCancelledError, ExecutorShutdown)


def run_step(executor: Executor, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run (or replay) one ``@DBOS.step`` call."""
    ctx = active_workflow()
    if ctx is None:
        return step.func(*args, **kwargs)
    function_id, recorded = executor.begin_operation(ctx, step.name)
    if step.should_retry is not None and inspect.iscoroutinefunction(step.should_retry):
        # DBOS's check and words, at the call (its position taken, nothing recorded).
        raise DBOSException(
            f"Step {step.name} is sync but should_retry is async. Use an async step to pair with an async validator."
        )
    if recorded is not NOT_RECORDED:
        return recorded
    started = now_ms()
    clock = time.perf_counter()
    ctx.step_id = function_id
    try:
        with running_step(function_id) as status:
            value = _call_with_retries(executor, ctx, step, args, kwargs, status)
    except CONTROL_ERRORS:
        raise
    except Exception as exc:
        executor.checkpoint(ctx, function_id, step.name, error=serialize_exception(exc), started_at_ms=started)
        observe_step("error", clock)
        raise
    finally:
        ctx.step_id = None
    try:
        output = serialize(value, what=f"the result of step {step.name!r}")
    except DBOSSerializationError as exc:
        # Recorded as the step's outcome so that a replay fails the same way.
        executor.checkpoint(ctx, function_id, step.name, error=serialize_exception(exc), started_at_ms=started)
        observe_step("error", clock)
        raise
    executor.checkpoint(ctx, function_id, step.name, output=output, started_at_ms=started)
    observe_step("success", clock)
    return value


def observe_step(outcome: str, started: float) -> None:
    metrics.count_step(outcome)
    metrics.STEP_SECONDS.observe(time.perf_counter() - started)


def _call_with_retries(
    executor: Executor, ctx: WorkflowContext, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any],
    status: StepStatus | None = None,
) -> Any:
    if not step.retries_allowed:
        # Every attempt first checks, locally, that this execution still holds its workflow
        # (lease, fence, generation): a member paused past its lease starts no body.
        executor.check_owned(ctx)
        record_attempt(executor, ctx, step.name, 1)
        return step.func(*args, **kwargs)
    attempts = 0

    def body(*a: Any, **kw: Any) -> Any:
        nonlocal attempts
        executor.check_owned(ctx)
        attempts += 1
        record_attempt(executor, ctx, step.name, attempts)
        with attempting(status, attempts - 1, step.max_attempts):  # DBOS.step_status counts from 0
            return step.func(*a, **kw)

    errors: list[Exception] = []

    def retryable(exc: BaseException) -> bool:
        return is_retryable(step, exc, errors)

    def pause(seconds: float) -> None:
        # Sleep between attempts, but wake at once when the executor shuts down.
        if executor.stop_event.wait(seconds):
            raise ExecutorShutdown()

    retrying = Retrying(retry=retry_if_exception(retryable), sleep=pause, **retry_policy(executor, step, errors))
    return retrying(body, *args, **kwargs)


def record_attempt(
    executor: Executor, ctx: WorkflowContext, name: str, attempt: int, *, function_id: int | None = None, connection: Any = None,
) -> None:
    """With ``attempt_ledger`` on, record (blocking, one autocommitted insert) that the body of
    the running step (or of the transaction at ``function_id``) is about to start: after the
    local ownership check, before the body, so a body that starts always has its row, even if
    it fails or the process dies in it. ``connection``: a system-database connection outside
    any transaction to write it on (see :func:`runtime.transactions.run_transaction`). Off,
    this is one attribute read (two with tracing on: the attempt goes on the step's span).

    The insert is a round trip between the lease check and the body, and it can wait (a link
    cut, a locked row) past a takeover: so the body runs only if the database said, as the row
    was written, that this owner still had the workflow, and the local lease still holds after
    it."""
    if tracing_enabled():
        note_attempt(attempt)
    if not executor.config.attempt_ledger:
        return
    position = function_id if function_id is not None else ctx.step_id
    if position is None:
        return
    owned = executor.db.attempts.record(ctx.workflow_id, position, name, ctx.executor_id, ctx.owner_epoch, os.getpid(),
                                        attempt, connection=connection)  # fmt: skip
    if not owned:
        reason = f"the database had given it to another owner before step {position} ({name}) could start"
        raise executor.lose(ctx, DBOSWorkflowFencedError(ctx.workflow_id, reason))
    executor.check_owned(ctx)


def is_retryable(step: RegisteredStep, exc: BaseException, errors: list[Exception]) -> bool | Any:
    """Whether a failed attempt is tried again (``errors`` collects the attempts' errors). A
    coroutine for an async ``should_retry``, which the caller awaits."""
    if isinstance(exc, CONTROL_ERRORS) or not isinstance(exc, Exception):
        return False
    errors.append(exc)
    return step.should_retry(exc) if step.should_retry is not None else True


def retry_policy(executor: Executor, step: RegisteredStep, errors: list[Exception]) -> dict[str, Any]:
    """The tenacity settings every retried step shares, sync or async: DBOS's exponential
    backoff, its attempt count, a warning before each pause, and the error once exhausted."""

    def announce(state: RetryCallState) -> None:
        executor.log.warning(
            "step being automatically retried",
            step=step.name,
            attempt=state.attempt_number,
            max_attempts=step.max_attempts,
            error=repr(state.outcome.exception()) if state.outcome else None,
        )
        if tracing_enabled():  # DBOS's span event for an attempt that is retried
            note_failed_attempt(state.attempt_number - 1, state.outcome.exception() if state.outcome else None, step.interval_seconds)

    return {
        "stop": stop_after_attempt(step.max_attempts),
        "wait": wait_exponential(multiplier=step.interval_seconds, exp_base=step.backoff_rate, max=MAX_RETRY_INTERVAL_SEC),
        "before_sleep": announce,
        "retry_error_callback": lambda state: _exhausted(step, errors),
    }


def _exhausted(step: RegisteredStep, errors: list[Exception]) -> Any:
    raise DBOSMaxStepRetriesExceeded(step.name, step.max_attempts, errors)


def durable_sleep(executor: Executor, seconds: float) -> None:
    """``DBOS.sleep``: the wake-up time is checkpointed before sleeping, so a recovered
    workflow sleeps only what is left."""
    ctx = sleeping_workflow()
    executor.check_running(ctx)
    with operation_span("sleep"):  # as DBOS's: the recording, not the wait
        wake_at = durable_wake_time(executor, ctx, ctx.next_function_id(), seconds)
    while (wait := time_to_wake(executor, ctx, wake_at)) is not None:
        if executor.stop_event.wait(wait):
            raise ExecutorShutdown()


def sleeping_workflow() -> WorkflowContext:
    """The workflow a ``DBOS.sleep`` (or ``sleep_async``) of a positive time checkpoints in,
    refused elsewhere as DBOS refuses it: a sleep outside a workflow could not be made
    durable, and one inside a step or transaction would take a position whose replay skips it."""
    ctx = current_workflow()
    if ctx is None:
        raise DBOSException("sleep() must be called from within a workflow")
    if ctx.in_step or ctx.in_transaction:
        # DBOS's class and words (an assert there), so a program fails the same way on both.
        raise AssertionError("sleep() must be called from within a workflow")
    return ctx


def time_to_wake(executor: Executor, ctx: WorkflowContext, wake_at: float) -> float | None:
    """How long a durable sleep waking at ``wake_at`` waits next (None: it is over), checked
    first like every operation (past its deadline, the workflow is cancelled here). Shared by
    ``DBOS.sleep`` and ``DBOS.sleep_async``."""
    executor.check_running(ctx)
    wait = wake_at - time.time()
    if wait <= 0:
        return None
    if ctx.deadline_epoch_ms is not None:
        # The deadline is on the database clock, and check_running compares it so: wake by
        # that clock too, or a host clock ahead of it ends the sleep early and uncancelled.
        wait = min(wait, max(0.001, (ctx.deadline_epoch_ms - executor.db.clock.now_ms()) / 1000))
    return wait


def durable_wake_time(executor: Executor, ctx: WorkflowContext, function_id: int, seconds: float) -> float:
    """The wake-up time recorded at ``function_id`` (recording it now on a first execution).

    DBOS stores it as portable JSON epoch seconds, completed at the projected wake time; sleeps,
    and the timeouts of ``recv`` and ``get_event``, share it.
    """
    recorded = ctx.recorded_step(function_id)
    if recorded is not None:
        return float(replay_recorded(ctx, function_id, SLEEP_FUNCTION_NAME, recorded))
    wake_at, row = sleep_checkpoint(seconds)
    executor.checkpoint(ctx, function_id, SLEEP_FUNCTION_NAME, **row)
    return wake_at


def sleep_checkpoint(seconds: float) -> tuple[float, dict[str, Any]]:
    """A sleep's wake-up time from now, and its checkpoint's values (``Executor.checkpoint``)."""
    wake_at = time.time() + max(0.0, float(seconds))
    return wake_at, {"output": json.dumps(wake_at), "serialization": PORTABLE_JSON, "completed_at_ms": int(wake_at * 1000)}
