"""``DBOS``'s asyncio API for waiting (a mixin of :class:`runtime.dbos.DBOS`): ``recv_async``,
``get_event_async``, ``read_stream_async``, ``wait_first_async``, ``run_step_async`` and
``asyncio_wait``, with DBOS 2.30's signatures.

Each waits on the caller's loop without holding a thread (:mod:`runtime.async_waits`); the
database work runs in the executor's worker threads, and step positions are taken on the loop
in call order, as many as DBOS takes (two for ``recv`` and ``get_event``: the second is the
durable timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from . import async_durable, async_waits
from .api_messaging import StepOptions, step_of_options
from .current import executor_for
from .executor import Executor
from .handles import WorkflowHandleAsync
from .waiting import DEFAULT_POLLING_INTERVAL_SEC

__all__ = ["AsyncWaitsAPI"]

P = ParamSpec("P")
R = TypeVar("R")


def _executor(what: str) -> Executor:
    return executor_for(what)  # the calling workflow's executor, else the process's


class AsyncWaitsAPI:
    """The ``_async`` twins of DBOS's waiting methods, and its durable ``asyncio.wait``."""

    @classmethod
    async def recv_async(cls, topic: str | None = None, timeout_seconds: float = 60) -> Any:
        """Receive the oldest message sent to this workflow on ``topic``, waiting on the loop
        up to ``timeout_seconds`` (durably: a recovered workflow waits only what is left);
        ``None`` if none came. Only from a workflow body."""
        return await async_waits.recv_async(_executor("DBOS.recv_async"), topic, timeout_seconds)

    @classmethod
    async def get_event_async(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The latest value of a workflow's event ``key``, waiting on the loop up to
        ``timeout_seconds`` for it to be set (``None`` if it was not); recorded in a workflow
        body."""
        return await async_waits.get_event_async(_executor("DBOS.get_event_async"), workflow_id, key, timeout_seconds)

    @classmethod
    async def read_stream_async(
        cls, workflow_id: str, key: str, *, offset: int = 0, polling_interval_sec: float | None = None,
    ) -> AsyncGenerator[Any, None]:
        """Yield a workflow's stream values in order from ``offset`` (an async generator) until
        the stream is closed or the workflow ends; ``DBOSNonExistentWorkflowError`` for an
        unknown workflow. ``polling_interval_sec``: how often it looks for new values."""
        executor = _executor("DBOS.read_stream_async")
        async for value in async_waits.read_stream_async(
            executor, workflow_id, key, offset=offset, polling_interval_sec=polling_interval_sec
        ):
            yield value

    @classmethod
    async def wait_first_async(
        cls, handles: list[WorkflowHandleAsync[Any]], *, polling_interval_sec: float = DEFAULT_POLLING_INTERVAL_SEC,
    ) -> WorkflowHandleAsync[Any]:
        """Wait on the loop until one of the handles' workflows finishes and return its handle
        (recorded as ``DBOS.waitFirst`` in a workflow body, so a replay returns the same one)."""
        executor = _executor("DBOS.wait_first_async")
        return await async_waits.wait_first_async(executor, handles, polling_interval_sec)

    @overload
    @classmethod
    async def run_step_async(
        cls, dbos_step_options: StepOptions | None, func: Callable[P, Coroutine[Any, Any, R]], *args: P.args, **kwargs: P.kwargs,
    ) -> R: ...

    @overload
    @classmethod
    async def run_step_async(
        cls, dbos_step_options: StepOptions | None, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs,
    ) -> R: ...

    @classmethod
    async def run_step_async(
        cls, dbos_step_options: StepOptions | None, func: Callable[..., Any], *args: Any, **kwargs: Any,
    ) -> Any:
        """Call ``func(*args, **kwargs)`` as a checkpointed step of the calling workflow, with
        ``@DBOS.step()``'s settings from ``dbos_step_options``: an ``async def`` function is
        awaited on the loop, a sync one runs in a thread. Outside a workflow a plain call."""
        entry = step_of_options(dbos_step_options, func)
        return await async_durable.run_step_async(entry, func, args, kwargs)

    @classmethod
    async def asyncio_wait(
        cls, fs: list[Awaitable[Any]], *, timeout: float | None = None, return_when: str = asyncio.ALL_COMPLETED,
    ) -> tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]:
        """A durable ``asyncio.wait``: in a workflow body, which of ``fs`` were done is
        recorded, so a replay returns the same done/pending split; elsewhere plain
        ``asyncio.wait``."""
        return await async_durable.asyncio_wait(fs, timeout=timeout, return_when=return_when)
