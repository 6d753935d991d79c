"""``async def`` steps and ``DBOS.sleep_async``: the checkpointed operations of an async
workflow, awaited on its loop.

As in :mod:`runtime.steps`: the step takes the workflow's next position (on the loop, when it
is called, so steps gathered with ``asyncio.gather`` number the same at every execution); a
replay returns the recorded outcome; a first execution checks locally that this execution
still holds its workflow before each attempt's body, awaits the body (retries pause with
``asyncio.sleep``), and writes the outcome in one fenced round trip, run in a worker thread
(:func:`runtime.aio.in_thread`) so the loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any

from tenacity import AsyncRetrying
from tenacity.asyncio import retry_if_exception

from sysdb import now_ms

from .aio import active_workflow, in_thread
from .context import WorkflowContext
from .errors import DBOSSerializationError
from .operations import NOT_RECORDED, ExecutorShutdown, replay_recorded
from .preemption import step_body
from .registry import RegisteredStep
from .serialization import serialize, serialize_exception
from .step_status import StepStatus, attempting, running_step
from .steps import (
    CONTROL_ERRORS,
    SLEEP_FUNCTION_NAME,
    is_retryable,
    observe_step,
    record_attempt,
    retry_policy,
    sleep_checkpoint,
    sleeping_workflow,
    time_to_wake,
)
from .tracing import note_attempt, operation_span, tracing_enabled

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["run_step_async", "durable_sleep_async", "sleep_unless_stopped"]

# How long an async wait sleeps at most before it looks whether its executor is stopping.
STOP_CHECK_INTERVAL_SEC = 1.0


async def run_step_async(executor: Executor, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run (or replay) one call of an ``async def`` ``@DBOS.step``."""
    ctx = active_workflow()
    if ctx is None:
        return await step.func(*args, **kwargs)
    # Local checks only, except past a deadline (one write that cancels the workflow).
    function_id, recorded = executor.begin_operation(ctx, step.name)
    if recorded is not NOT_RECORDED:
        return recorded
    started = now_ms()
    clock = time.perf_counter()
    ctx.step_id = function_id  # in this task only: gathered steps each have their own
    try:
        with running_step(function_id) as status:
            value = await _attempts(executor, ctx, step, args, kwargs, status)
    except CONTROL_ERRORS:
        raise
    except Exception as exc:
        await in_thread(executor.async_work, executor.checkpoint, ctx, function_id, step.name,
                        error=serialize_exception(exc), started_at_ms=started)
        observe_step("error", clock)
        raise
    finally:
        ctx.step_id = None
    try:
        output = serialize(value, what=f"the result of step {step.name!r}")
    except DBOSSerializationError as exc:
        await in_thread(executor.async_work, executor.checkpoint, ctx, function_id, step.name,
                        error=serialize_exception(exc), started_at_ms=started)
        observe_step("error", clock)
        raise
    await in_thread(executor.async_work, executor.checkpoint, ctx, function_id, step.name, output=output, started_at_ms=started)
    observe_step("success", clock)
    return value


async def _attempts(
    executor: Executor, ctx: WorkflowContext, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any],
    status: StepStatus,
) -> Any:
    if not step.retries_allowed:
        executor.check_owned(ctx)  # a member paused past its lease starts no body
        await _record(executor, ctx, step.name, 1)
        return await step_body(executor, ctx, step, args, kwargs)
    attempts = 0

    async def body() -> Any:
        nonlocal attempts
        executor.check_owned(ctx)
        attempts += 1
        await _record(executor, ctx, step.name, attempts)
        with attempting(status, attempts - 1, step.max_attempts):  # DBOS.step_status counts from 0
            return await step_body(executor, ctx, step, args, kwargs)

    errors: list[Exception] = []

    async def retryable(exc: BaseException) -> bool:
        verdict = is_retryable(step, exc, errors)
        return bool(await verdict) if inspect.isawaitable(verdict) else bool(verdict)

    async def pause(seconds: float) -> None:
        await sleep_unless_stopped(executor, seconds)

    retrying = AsyncRetrying(retry=retry_if_exception(retryable), sleep=pause, **retry_policy(executor, step, errors))
    return await retrying(body)


async def _record(executor: Executor, ctx: WorkflowContext, name: str, attempt: int) -> None:
    # The attempt ledger's insert runs in a worker thread (never on the loop); off, no thread hop.
    if tracing_enabled():
        note_attempt(attempt)
    if executor.config.attempt_ledger:
        await in_thread(executor.async_work, record_attempt, executor, ctx, name, attempt)


async def sleep_unless_stopped(executor: Executor, seconds: float) -> None:
    """``asyncio.sleep(seconds)``, raising :class:`ExecutorShutdown` within a second of the
    executor stopping."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        if executor.stop_event.is_set():
            raise ExecutorShutdown()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, STOP_CHECK_INTERVAL_SEC))


async def durable_sleep_async(executor: Executor, seconds: float) -> None:
    """``DBOS.sleep_async``: the wake-up time is checkpointed (in a worker thread) before the
    sleep, which is awaited on the loop; a recovered workflow sleeps only what is left."""
    ctx = sleeping_workflow()
    executor.check_running(ctx)
    function_id = ctx.next_function_id()  # on the loop, in call order
    with operation_span("sleep"):  # as DBOS's: the recording, not the wait
        wake_at = await _wake_time(executor, ctx, function_id, seconds)
    while (wait := time_to_wake(executor, ctx, wake_at)) is not None:
        await sleep_unless_stopped(executor, wait)


async def _wake_time(executor: Executor, ctx: WorkflowContext, function_id: int, seconds: float) -> float:
    recorded = ctx.recorded_step(function_id)
    if recorded is not None:
        return float(replay_recorded(ctx, function_id, SLEEP_FUNCTION_NAME, recorded))
    wake_at, row = sleep_checkpoint(seconds)
    await in_thread(executor.async_work, executor.checkpoint, ctx, function_id, SLEEP_FUNCTION_NAME, **row)
    return wake_at
