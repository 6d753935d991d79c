"""Starting an ``async def`` workflow from asyncio code: awaiting it, or
``DBOS.start_workflow_async``.

The same start as :mod:`runtime.starts`, split where it blocks: the positions in the parent
and the start options are taken on the loop, in call order; the row is written by
:func:`runtime.starts.plan_start` in a worker thread; the body is awaited on the caller's loop
(:meth:`Executor.run_async`): directly, or as a task of the caller's loop that outlives its
starter (a handle is returned at once). A sync workflow started from asyncio code runs as it
would from sync code, in a thread.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .aio import in_thread
from .context import WorkflowContext, current_workflow, take_start_options
from .errors import DBOSWorkflowCancelledError
from .handles import WorkflowHandle, WorkflowHandleAsync
from .registry import RegisteredWorkflow
from .results import recorded_result_async
from .starts import plan_start, start_workflow
from .workflow_start import take_start_position, validate_input

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["start_workflow_async"]


async def start_workflow_async(
    executor: Executor, entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
    *, background: bool,
) -> Any:
    """Start a workflow from asyncio code: await its result, or (``background``) return a
    :class:`WorkflowHandleAsync` at once."""
    if not entry.is_async:
        started = await in_thread(executor.async_work, start_workflow, executor, entry, bound, args, kwargs,
                                  background=background, positions=1 if background else 2)
        return WorkflowHandleAsync.of(started) if background else started
    parent = current_workflow()
    if parent is not None:
        parent.refuse_workflow_start("start" if background else "call", entry.name)
        executor.check_running(parent)
    options = take_start_options()
    validate_input(entry, args, kwargs)
    position = take_start_position(parent, options, entry)
    # A direct child's result is recorded at the next position: taken now, in call order.
    result_id = parent.next_function_id() if parent is not None and not background else None
    plan = await in_thread(executor.async_work, plan_start, executor, entry, bound, args, kwargs, options, parent,
                           position, background=background)
    ctx = plan.context
    if ctx is None:
        if background:
            return WorkflowHandleAsync(plan.workflow_id, handle=WorkflowHandle(plan.workflow_id, source=executor))
        if parent is None or result_id is None:
            return await executor.wait_result_async(plan.workflow_id)
        return await recorded_result_async(executor, parent, result_id, plan.result_as or plan.workflow_id,
                                           lambda: executor.wait_result_async(plan.workflow_id))
    if background:
        task = asyncio.get_running_loop().create_task(executor.run_async(ctx, entry, bound, args, kwargs, background=True))
        executor.async_work.keep(task)
        return WorkflowHandleAsync(ctx.workflow_id, handle=WorkflowHandle(ctx.workflow_id, source=executor))
    if parent is None or result_id is None:
        return await _run_for_caller(executor, ctx, entry, bound, args, kwargs)
    return await recorded_result_async(executor, parent, result_id, ctx.workflow_id,
                                       lambda: _run_for_caller(executor, ctx, entry, bound, args, kwargs))


async def _run_for_caller(
    executor: Executor, ctx: WorkflowContext, entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """:func:`runtime.starts.run_for_caller` on the caller's loop: a body stopped by its
    cancellation gives the caller ``DBOSAwaitedWorkflowCancelledError``, as in DBOS."""
    try:
        return await executor.run_async(ctx, entry, bound, args, kwargs)
    except DBOSWorkflowCancelledError:
        return await executor.wait_result_async(ctx.workflow_id)
