"""``DBOS``'s asyncio API for starting, sleeping and awaiting workflows (a mixin of
:class:`runtime.dbos.DBOS`): ``start_workflow_async``, ``sleep_async``,
``retrieve_workflow_async``, ``get_result_async``, ``get_workflow_status_async``.

Each waits on the caller's loop; the database work runs in the executor's worker threads
(:mod:`runtime.aio`), and inside a workflow takes its step positions on the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from sysdb import now_ms

from .aio import active_workflow, in_thread
from .async_starts import start_workflow_async
from .async_steps import durable_sleep_async
from .current import executor_for
from .errors import DBOSNonExistentWorkflowError
from .handles import WorkflowHandle, WorkflowHandleAsync
from .operations import NOT_RECORDED
from .registry import split_bound, workflow_of
from .serialization import serialize
from .status import WorkflowStatus

__all__ = ["AsyncAPI"]

P = ParamSpec("P")
R = TypeVar("R")


class AsyncAPI:
    """The ``_async`` twins of DBOS's workflow starts and waits."""

    @classmethod
    async def start_workflow_async(cls, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandleAsync[Any]:
        """Start a workflow and return its handle at once. An ``async def`` workflow runs as a
        task of the caller's loop, which keeps running after the caller returns; a sync one
        runs in a thread, as ``start_workflow`` runs it."""
        entry, bound = workflow_of(func)
        executor = executor_for(f"workflow {entry.name!r}")
        rest: tuple[Any, ...] = tuple(args)
        if bound is None:
            bound, rest = split_bound(entry, rest)
        handle: WorkflowHandleAsync[Any] = await start_workflow_async(executor, entry, bound, rest, dict(kwargs), background=True)
        return handle

    @classmethod
    async def sleep_async(cls, seconds: float) -> None:
        """``DBOS.sleep`` for asyncio code: the wake-up time is checkpointed, the sleep is
        awaited on the loop (no thread is held)."""
        if seconds <= 0:
            return
        await durable_sleep_async(executor_for("DBOS.sleep_async"), seconds)

    @classmethod
    async def get_workflow_status_async(cls, workflow_id: str) -> WorkflowStatus | None:
        """``get_workflow_status`` for asyncio code (a recorded ``DBOS.getStatus`` inside a workflow)."""
        executor = executor_for("DBOS.get_workflow_status_async")
        status: WorkflowStatus | None = await in_thread(executor.async_work, cls._status_of, workflow_id, positions=1)
        return status

    @classmethod
    async def retrieve_workflow_async(cls, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandleAsync[Any]:
        """``retrieve_workflow`` for asyncio code."""
        executor = executor_for("DBOS.retrieve_workflow_async")
        if existing_workflow and await cls.get_workflow_status_async(workflow_id) is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        return WorkflowHandleAsync(workflow_id, handle=WorkflowHandle(workflow_id, source=executor))

    @classmethod
    async def get_result_async(cls, workflow_id: str) -> Any:
        """Wait, on the loop, for a workflow and return its result (or raise its error)."""
        executor = executor_for("DBOS.get_result_async")
        parent = active_workflow()
        if parent is None:
            return await executor.wait_result_async(workflow_id)
        # Inside a workflow, as DBOS records it: one DBOS.getResult step (no getStatus), its
        # position taken now, on the loop; it names no child workflow, and an error is not
        # recorded (a replay waits for the workflow again).
        function_id, recorded = executor.begin_operation(parent, "DBOS.getResult")
        if recorded is not NOT_RECORDED:
            return recorded
        started = now_ms()
        value = await executor.wait_result_async(workflow_id)
        await in_thread(executor.async_work, executor.checkpoint, parent, function_id, "DBOS.getResult",
                        output=serialize(value), started_at_ms=started)
        return value

    @classmethod
    def _status_of(cls, workflow_id: str) -> WorkflowStatus | None:
        from .dbos import DBOS  # the facade this mixin is part of

        return DBOS.get_workflow_status(workflow_id)
