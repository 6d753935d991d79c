"""``DBOS.run_step_async`` and ``DBOS.asyncio_wait``: a step made of any function, and a
durable ``asyncio.wait``, for async workflows.

``run_step_async`` runs an ``async def`` function as an async step, awaited on the loop
(:func:`runtime.async_steps.run_step_async`), and a sync one as a sync step in a thread of the
loop's default executor, as DBOS's ``asyncio.to_thread`` does: its body and its checkpoint do not
block the loop, and a long body does not hold one of the database worker threads. Outside a
workflow (or in a step) the function is just called (a sync one in that thread too).

``asyncio_wait`` records, as DBOS does (``DBOS.asyncio_wait``, the list of the indices of the
awaitables that were done), which were done when it returned; a replay waits for exactly those
and returns the same done/pending split, whatever finished first this time.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from sysdb import now_ms

from . import async_steps, steps
from .aio import active_workflow, in_thread
from .context import current_workflow
from .operations import NOT_RECORDED
from .registry import RegisteredStep
from .serialization import serialize

__all__ = ["run_step_async", "asyncio_wait", "ASYNCIO_WAIT_FUNCTION_NAME"]

ASYNCIO_WAIT_FUNCTION_NAME = "DBOS.asyncio_wait"


async def run_step_async(entry: RegisteredStep, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``func`` with ``entry``'s settings as a step of the calling workflow (see the module)."""
    ctx = current_workflow()
    if inspect.iscoroutinefunction(func):
        if ctx is None:
            return await func(*args, **kwargs)
        return await async_steps.run_step_async(ctx.executor, entry, args, kwargs)
    if ctx is None:
        return await in_thread(None, func, *args, **kwargs)
    # One position (the step's), taken now on the loop, so gathered calls number the same at
    # every execution; none from a step, where the call is a plain one.
    return await in_thread(None, steps.run_step, ctx.executor, entry, args, kwargs, positions=1)


async def asyncio_wait(
    fs: list[Awaitable[Any]], *, timeout: float | None, return_when: str,
) -> tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]:
    """``asyncio.wait`` over ``fs``, checkpointed in a workflow body (see the module)."""
    ctx = active_workflow()
    futures: list[asyncio.Task[Any]] = [asyncio.ensure_future(f) for f in fs]
    if ctx is None:
        return await asyncio.wait(futures, timeout=timeout, return_when=return_when)
    executor = ctx.executor
    function_id, recorded = executor.begin_operation(ctx, ASYNCIO_WAIT_FUNCTION_NAME)
    if recorded is not NOT_RECORDED:
        indices = set(recorded or [])
        done = {f for i, f in enumerate(futures) if i in indices}
        pending = {f for i, f in enumerate(futures) if i not in indices}
        if done:
            await asyncio.wait(done)
        return done, pending
    started = now_ms()
    done, pending = await asyncio.wait(futures, timeout=timeout, return_when=return_when)
    done_indices = [i for i, f in enumerate(futures) if f in done]
    await in_thread(executor.async_work, executor.checkpoint, ctx, function_id, ASYNCIO_WAIT_FUNCTION_NAME,
                    output=serialize(done_indices), started_at_ms=started)
    return done, pending
