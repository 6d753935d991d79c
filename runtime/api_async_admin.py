"""The ``_async`` twins of ``DBOS``'s workflow management methods (a mixin of
:class:`runtime.dbos.DBOS`): listing, cancelling, resuming, forking, deleting, delaying and
re-attributing workflows from asyncio code.

Each runs its sync method (:mod:`runtime.api_admin`) in the executor's worker threads
(:func:`runtime.aio.in_thread`); inside a workflow it first takes, on the loop, the step
positions DBOS's twin takes (one each; a fork two: the fork and the ``DBOS.getStatus`` of its
handle), so twins gathered with ``asyncio.gather`` number their steps in call order.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from .aio import in_thread
from .current import executor_for
from .handles import WorkflowHandleAsync
from .status import StepInfo, WorkflowStatus

if TYPE_CHECKING:
    from .dbos import DBOS

__all__ = ["AsyncAdminAPI", "facade", "off_loop"]


def facade() -> type[DBOS]:
    """The ``DBOS`` class these mixins are part of (imported when called: it imports them)."""
    from .dbos import DBOS

    return DBOS


async def off_loop(what: str, positions: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in the worker threads of the executor a call made here goes to,
    after taking ``positions`` step positions on the loop (inside a workflow body)."""
    work = executor_for(what).async_work
    return await in_thread(work, functools.partial(fn, *args, **kwargs), positions=positions)


class AsyncAdminAPI:
    """Workflow management for asyncio code."""

    @classmethod
    async def list_workflows_async(
        cls,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        completed_after: str | None = None,
        completed_before: str | None = None,
        dequeued_after: str | None = None,
        dequeued_before: str | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        forked_from: str | list[str] | None = None,
        parent_workflow_id: str | list[str] | None = None,
        user: str | list[str] | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        workflow_id_prefix: str | list[str] | None = None,
        load_input: bool = True,
        load_output: bool = True,
        executor_id: str | list[str] | None = None,
        queues_only: bool = False,
        was_forked_from: bool | None = None,
        has_parent: bool | None = None,
        attributes: dict[str, Any] | None = None,
        schedule_name: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowStatus]:
        """``list_workflows`` for asyncio code (a recorded ``DBOS.listWorkflows`` inside a workflow)."""
        criteria = {k: v for k, v in locals().items() if k != "cls"}
        listed: list[WorkflowStatus] = await off_loop("DBOS.list_workflows_async", 1, facade().list_workflows, **criteria)
        return listed

    @classmethod
    async def list_queued_workflows_async(
        cls,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        completed_after: str | None = None,
        completed_before: str | None = None,
        dequeued_after: str | None = None,
        dequeued_before: str | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        forked_from: str | list[str] | None = None,
        parent_workflow_id: str | list[str] | None = None,
        user: str | list[str] | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        workflow_id_prefix: str | list[str] | None = None,
        load_input: bool = True,
        load_output: bool = True,
        executor_id: str | list[str] | None = None,
        has_parent: bool | None = None,
        attributes: dict[str, Any] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowStatus]:
        """``list_queued_workflows`` for asyncio code."""
        criteria = {k: v for k, v in locals().items() if k != "cls"}
        what = "DBOS.list_queued_workflows_async"
        listed: list[WorkflowStatus] = await off_loop(what, 1, facade().list_queued_workflows, **criteria)
        return listed

    @classmethod
    async def list_workflow_steps_async(
        cls, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepInfo]:
        """``list_workflow_steps`` for asyncio code."""
        steps: list[StepInfo] = await off_loop(
            "DBOS.list_workflow_steps_async", 1, facade().list_workflow_steps, workflow_id,
            load_output=load_output, limit=limit, offset=offset,
        )
        return steps

    @classmethod
    async def cancel_workflow_async(cls, workflow_id: str, *, cancel_children: bool = False) -> None:
        """``cancel_workflow`` for asyncio code."""
        await cls.cancel_workflows_async([workflow_id], cancel_children=cancel_children)

    @classmethod
    async def cancel_workflows_async(cls, workflow_ids: list[str], *, cancel_children: bool = False) -> None:
        """``cancel_workflows`` for asyncio code (a recorded ``DBOS.cancelWorkflow`` inside a workflow)."""
        await off_loop("DBOS.cancel_workflows_async", 1, facade().cancel_workflows, workflow_ids, cancel_children=cancel_children)

    @classmethod
    async def resume_workflow_async(cls, workflow_id: str, *, queue_name: str | None = None) -> WorkflowHandleAsync[Any]:
        """``resume_workflow`` for asyncio code: an async handle on the resumed workflow."""
        return (await cls.resume_workflows_async([workflow_id], queue_name=queue_name))[0]

    @classmethod
    async def resume_workflows_async(
        cls, workflow_ids: list[str], *, queue_name: str | None = None
    ) -> list[WorkflowHandleAsync[Any]]:
        """``resume_workflows`` for asyncio code: an async handle for each, in order."""
        handles = await off_loop("DBOS.resume_workflows_async", 1, facade().resume_workflows, workflow_ids, queue_name=queue_name)
        return [WorkflowHandleAsync.of(handle) for handle in handles]

    @classmethod
    async def fork_workflow_async(
        cls,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandleAsync[Any]:
        """``fork_workflow`` for asyncio code (inside a workflow: a recorded
        ``DBOS.forkWorkflow`` and the ``DBOS.getStatus`` of its handle, as in DBOS)."""
        handle = await off_loop(
            "DBOS.fork_workflow_async", 2, facade().fork_workflow, workflow_id, start_step,
            application_version=application_version, queue_name=queue_name, queue_partition_key=queue_partition_key,
            replacement_children=replacement_children, timeout_seconds=timeout_seconds,
        )
        return WorkflowHandleAsync.of(handle)

    @classmethod
    async def delete_workflow_async(cls, workflow_id: str, *, delete_children: bool = False) -> None:
        """``delete_workflow`` for asyncio code."""
        await cls.delete_workflows_async([workflow_id], delete_children=delete_children)

    @classmethod
    async def delete_workflows_async(cls, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        """``delete_workflows`` for asyncio code (a recorded ``DBOS.deleteWorkflow`` inside a workflow)."""
        await off_loop("DBOS.delete_workflows_async", 1, facade().delete_workflows, workflow_ids, delete_children=delete_children)

    @classmethod
    async def update_workflow_attributes_async(cls, workflow_id: str, attributes: dict[str, Any] | None) -> None:
        """``update_workflow_attributes`` for asyncio code."""
        await off_loop("DBOS.update_workflow_attributes_async", 1, facade().update_workflow_attributes, workflow_id, attributes)

    @classmethod
    async def set_workflow_delay_async(
        cls, workflow_id: str, *, delay_seconds: float | None = None, delay_until_epoch_ms: int | None = None
    ) -> None:
        """``set_workflow_delay`` for asyncio code."""
        await off_loop(
            "DBOS.set_workflow_delay_async", 1, facade().set_workflow_delay, workflow_id,
            delay_seconds=delay_seconds, delay_until_epoch_ms=delay_until_epoch_ms,
        )
