"""``DBOSClient``'s asyncio management API, with DBOS 2.30's names and signatures: listing,
cancelling, resuming, deleting, delaying and forking workflows, database-backed queues,
schedules, application versions and renaming (a mixin of :class:`runtime.client.DBOSClient`).

Each twin runs its sync method in the client's worker threads (:func:`runtime.client_async.off_loop`),
so it is the same statement with the same errors, and the caller's loop never waits on the
database. Methods that return handles return :class:`WorkflowHandleAsync` ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .client_async import off_loop
from .handles import WorkflowHandleAsync
from .queue_admin import DEFAULT_RENAME_BATCH_SIZE, ApplicationRowCounts, VersionInfo
from .queues import Queue, QueueConflictResolution, QueueRateLimit
from .schedules import ClientScheduleInput, WorkflowSchedule
from .status import StepInfo, WorkflowStatus

if TYPE_CHECKING:
    from .client import DBOSClient

__all__ = ["ClientAsyncAdminAPI"]


class ClientAsyncAdminAPI:
    """The ``_async`` twins of ``DBOSClient``'s management methods."""

    def _me(self) -> DBOSClient:
        return cast("DBOSClient", self)

    async def list_workflows_async(
        self,
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
        """``list_workflows`` for asyncio code."""
        criteria = {k: v for k, v in locals().items() if k != "self"}
        return await off_loop(self._me(), self._me().list_workflows, **criteria)

    async def list_queued_workflows_async(
        self,
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
        criteria = {k: v for k, v in locals().items() if k != "self"}
        return await off_loop(self._me(), self._me().list_queued_workflows, **criteria)

    async def list_workflow_steps_async(
        self, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepInfo]:
        """``list_workflow_steps`` for asyncio code."""
        client = self._me()
        return await off_loop(client, client.list_workflow_steps, workflow_id, load_output=load_output, limit=limit, offset=offset)

    async def cancel_workflow_async(self, workflow_id: str, *, cancel_children: bool = False) -> None:
        """``cancel_workflow`` for asyncio code."""
        await off_loop(self._me(), self._me().cancel_workflows, [workflow_id], cancel_children=cancel_children)

    async def cancel_workflows_async(self, workflow_ids: list[str], *, cancel_children: bool = False) -> None:
        """``cancel_workflows`` for asyncio code."""
        await off_loop(self._me(), self._me().cancel_workflows, workflow_ids, cancel_children=cancel_children)

    async def resume_workflow_async(self, workflow_id: str, *, queue_name: str | None = None) -> WorkflowHandleAsync[Any]:
        """``resume_workflow`` for asyncio code; an async handle."""
        return (await self.resume_workflows_async([workflow_id], queue_name=queue_name))[0]

    async def resume_workflows_async(
        self, workflow_ids: list[str], *, queue_name: str | None = None
    ) -> list[WorkflowHandleAsync[Any]]:
        """``resume_workflows`` for asyncio code; an async handle for each."""
        handles = await off_loop(self._me(), self._me().resume_workflows, workflow_ids, queue_name=queue_name)
        return [WorkflowHandleAsync.of(h) for h in handles]

    async def delete_workflow_async(self, workflow_id: str, *, delete_children: bool = False) -> None:
        """``delete_workflow`` for asyncio code."""
        await off_loop(self._me(), self._me().delete_workflows, [workflow_id], delete_children=delete_children)

    async def delete_workflows_async(self, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        """``delete_workflows`` for asyncio code."""
        await off_loop(self._me(), self._me().delete_workflows, workflow_ids, delete_children=delete_children)

    async def set_workflow_delay_async(
        self, workflow_id: str, *, delay_seconds: float | None = None, delay_until_epoch_ms: int | None = None
    ) -> None:
        """``set_workflow_delay`` for asyncio code."""
        client = self._me()
        await off_loop(
            client, client.set_workflow_delay, workflow_id, delay_seconds=delay_seconds, delay_until_epoch_ms=delay_until_epoch_ms
        )

    async def update_workflow_attributes_async(self, workflow_id: str, attributes: dict[str, Any] | None) -> None:
        """``update_workflow_attributes`` for asyncio code."""
        await off_loop(self._me(), self._me().update_workflow_attributes, workflow_id, attributes)

    async def fork_workflow_async(
        self,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandleAsync[Any]:
        """``fork_workflow`` for asyncio code (a ``SetWorkflowID`` around it names the fork)."""
        client = self._me()
        handle = await off_loop(
            client, client.fork_workflow, workflow_id, start_step, application_version=application_version,
            queue_name=queue_name, queue_partition_key=queue_partition_key,
            replacement_children=replacement_children, timeout_seconds=timeout_seconds,
        )
        return WorkflowHandleAsync.of(handle)

    # -- database-backed queues --------------------------------------------------------------

    async def register_queue_async(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        limiter: QueueRateLimit | None = None,
        worker_concurrency: int | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        polling_interval_sec: float = 1.0,
        on_conflict: QueueConflictResolution = "always_update",
        application_name: str | None = None,
    ) -> Queue:
        """``register_queue`` for asyncio code."""
        settings = {k: v for k, v in locals().items() if k not in ("self", "name")}
        return await off_loop(self._me(), self._me().register_queue, name, **settings)

    async def retrieve_queue_async(self, name: str) -> Queue | None:
        """``retrieve_queue`` for asyncio code."""
        return await off_loop(self._me(), self._me().retrieve_queue, name)

    async def delete_queue_async(self, name: str) -> None:
        """``delete_queue`` for asyncio code."""
        await off_loop(self._me(), self._me().delete_queue, name)

    async def list_queues_async(self, *, application_name: str | list[str] | None = None) -> list[Queue]:
        """``list_queues`` for asyncio code."""
        return await off_loop(self._me(), self._me().list_queues, application_name=application_name)

    # -- schedules ---------------------------------------------------------------------------

    async def create_schedule_async(
        self,
        *,
        schedule_name: str,
        workflow_name: str,
        schedule: str,
        context: Any = None,
        workflow_class_name: str | None = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
        application_name: str | None = None,
    ) -> None:
        """``create_schedule`` for asyncio code."""
        fields = {k: v for k, v in locals().items() if k != "self"}
        await off_loop(self._me(), self._me().create_schedule, **fields)

    async def list_schedules_async(
        self,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """``list_schedules`` for asyncio code."""
        filters = {k: v for k, v in locals().items() if k != "self"}
        return await off_loop(self._me(), self._me().list_schedules, **filters)

    async def get_schedule_async(self, name: str) -> WorkflowSchedule | None:
        """``get_schedule`` for asyncio code."""
        return await off_loop(self._me(), self._me().get_schedule, name)

    async def delete_schedule_async(self, name: str) -> None:
        """``delete_schedule`` for asyncio code."""
        await off_loop(self._me(), self._me().delete_schedule, name)

    async def apply_schedules_async(self, schedules: list[ClientScheduleInput]) -> None:
        """``apply_schedules`` for asyncio code (one transaction)."""
        await off_loop(self._me(), self._me().apply_schedules, schedules)

    # -- application versions and names ------------------------------------------------------

    async def list_application_versions_async(self) -> list[VersionInfo]:
        """``list_application_versions`` for asyncio code."""
        return await off_loop(self._me(), self._me().list_application_versions)

    async def get_latest_application_version_async(self) -> VersionInfo:
        """``get_latest_application_version`` for asyncio code."""
        return await off_loop(self._me(), self._me().get_latest_application_version)

    async def set_latest_application_version_async(self, version_name: str, *, application_name: str | None = None) -> None:
        """``set_latest_application_version`` for asyncio code."""
        await off_loop(self._me(), self._me().set_latest_application_version, version_name, application_name=application_name)

    async def rename_application_async(
        self,
        old_name: str | None,
        new_name: str,
        *,
        batch_size: int | None = DEFAULT_RENAME_BATCH_SIZE,
        adopt_unclaimed_rows: bool = False,
    ) -> ApplicationRowCounts:
        """``rename_application`` for asyncio code (run it while the renamed application is stopped)."""
        client = self._me()
        return await off_loop(
            client, client.rename_application, old_name, new_name, batch_size=batch_size, adopt_unclaimed_rows=adopt_unclaimed_rows
        )
