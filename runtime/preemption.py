"""Preemptible async steps (``@DBOS.step(preemptible=True)`` on an ``async def``).

While the body of such a step runs, a poller on the same loop watches its workflow, and
cancels the body (an ``asyncio`` cancellation, at its next ``await``) when:

- the workflow was cancelled (its row is CANCELLED, wherever the cancel came from): the step
  raises ``DBOSWorkflowCancelledError`` with DBOS's text, and records nothing, so a resume runs
  it again; or
- its deadline (``SetWorkflowTimeout``) passed: the poller cancels the workflow, as DBOS's
  timeout does, with the same result; or
- this execution lost the workflow (pgfleet's addition): :meth:`Executor.check_owned` fails (the
  membership lease expired, the executor abandoned its work, an earlier write was fenced), or the
  row names another owner or epoch (taken over, resumed elsewhere, finished by someone else).
  The step raises ``DBOSWorkflowFencedError``: the new owner runs the step, not this one.

The local checks run every :data:`LOCAL_CHECK_INTERVAL_SEC`; the row is read (in a worker
thread) every :data:`PREEMPTIBLE_POLL_INTERVAL_SEC`, DBOS's interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .aio import in_thread
from .context import WorkflowContext
from .errors import DBOSWorkflowCancelledError, DBOSWorkflowFencedError
from .registry import RegisteredStep

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["step_body", "PREEMPTIBLE_POLL_INTERVAL_SEC", "LOCAL_CHECK_INTERVAL_SEC"]

# How often the poller reads the workflow's row (DBOS's interval).
PREEMPTIBLE_POLL_INTERVAL_SEC = 1.0
# How often it checks, locally, that this execution still holds its workflow (no round trip).
LOCAL_CHECK_INTERVAL_SEC = 0.1


def step_body(
    executor: Executor, ctx: WorkflowContext, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Coroutine[Any, Any, Any]:
    """The coroutine one attempt of an async step awaits: its body, watched when preemptible."""
    if not step.preemptible:
        coroutine: Coroutine[Any, Any, Any] = step.func(*args, **kwargs)  # an async def step's
        return coroutine
    return _run_preemptible(executor, ctx, step, args, kwargs)


async def _run_preemptible(
    executor: Executor, ctx: WorkflowContext, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    body: asyncio.Task[Any] = asyncio.ensure_future(step.func(*args, **kwargs))
    reason: list[BaseException] = []  # why the poller cancelled the body, if it did
    poller = asyncio.ensure_future(_watch(executor, ctx, body, reason))
    try:
        try:
            return await body
        except asyncio.CancelledError:
            if reason:
                raise reason[0].with_traceback(None) from None
            raise
    finally:
        for task in (body, poller):
            if not task.done():
                task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - torn down (or seen above): its outcome is nobody's
                pass


async def _watch(executor: Executor, ctx: WorkflowContext, body: asyncio.Task[Any], reason: list[BaseException]) -> None:
    """Cancel ``body`` once its workflow is cancelled or lost here, noting why in ``reason``."""
    since_poll = 0.0
    while not body.done():
        await asyncio.sleep(LOCAL_CHECK_INTERVAL_SEC)
        since_poll += LOCAL_CHECK_INTERVAL_SEC
        lost = _lost_locally(executor, ctx)
        if lost is None and _past_deadline(executor, ctx):
            lost = await _cancel_past_deadline(executor, ctx)
        if lost is None and since_poll >= PREEMPTIBLE_POLL_INTERVAL_SEC:
            since_poll = 0.0
            lost = await _lost_by_row(executor, ctx)
        if lost is not None:
            reason.append(executor.lose(ctx, lost))
            body.cancel()
            return


def _lost_locally(executor: Executor, ctx: WorkflowContext) -> BaseException | None:
    try:
        executor.check_owned(ctx)
    except DBOSWorkflowCancelledError:
        # Cancelled (a cancel made in this process is seen here at once): DBOS's words for a
        # step its poller cut short.
        return DBOSWorkflowCancelledError(f"Workflow {ctx.workflow_id} is cancelled. Aborting preemptible step.")
    except DBOSWorkflowFencedError as exc:
        return exc
    return None


def _past_deadline(executor: Executor, ctx: WorkflowContext) -> bool:
    """Whether the workflow's deadline passed, on the database clock as estimated here (DBOS
    cancels a workflow at its deadline, which a preemptible step's poller then sees)."""
    return ctx.deadline_epoch_ms is not None and executor.db.clock.now_ms() >= ctx.deadline_epoch_ms


async def _cancel_past_deadline(executor: Executor, ctx: WorkflowContext) -> BaseException | None:
    """Cancel the workflow, fenced on this execution (``Executor.check_running`` writes it and
    raises the cancellation, or the fence if it was lost meanwhile)."""
    try:
        await in_thread(executor.async_work, executor.check_running, ctx)
    except (DBOSWorkflowCancelledError, DBOSWorkflowFencedError) as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - a failed write is tried again at the next tick
        executor.log.warning("error cancelling a workflow past its deadline", workflow_id=ctx.workflow_id, error=repr(exc))
    return None


async def _lost_by_row(executor: Executor, ctx: WorkflowContext) -> BaseException | None:
    try:
        row = await in_thread(executor.async_work, executor.db.workflows.status, ctx.workflow_id)
    except Exception as exc:  # noqa: BLE001 - a failed poll is retried at the next one, as in DBOS
        executor.log.warning("error polling the status of a preemptible step's workflow", workflow_id=ctx.workflow_id, error=repr(exc))
        return None
    if row is None:
        return DBOSWorkflowFencedError(ctx.workflow_id, "its row was deleted while a preemptible step ran")
    if row.status == "CANCELLED":
        return DBOSWorkflowCancelledError(f"Workflow {ctx.workflow_id} is cancelled. Aborting preemptible step.")
    if row.status != "PENDING" or row.executor_id != ctx.executor_id or row.owner_epoch != ctx.owner_epoch:
        return DBOSWorkflowFencedError(
            ctx.workflow_id,
            f"it is {row.status} under executor {row.executor_id!r} epoch {row.owner_epoch} "
            f"while a preemptible step ran here under epoch {ctx.owner_epoch}",
        )
    return None
