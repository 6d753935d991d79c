"""The ``_async`` twins of ``DBOS``'s database-backed queues, enqueueing by name, schedules and
application versions (a mixin of :class:`runtime.dbos.DBOS`).

Each runs its sync method in the executor's worker threads. Inside a workflow body, the
twins DBOS records take their step position on the loop first: an enqueue (the child's
position; a ``SetWorkflowID`` it consumes is consumed on the loop too) and the schedule calls.
Queue and version calls are never recorded, as in DBOS, and take none. A new schedule is
checked before its position is taken (a bad one takes none, as in DBOS).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from .aio import in_thread
from .api_async_admin import facade, off_loop
from .api_schedules import check_queue, queue_declared_here, record_schedule, schedule_row
from .current import executor_for
from .handles import WorkflowHandleAsync
from .queue_admin import VersionInfo
from .queues import Queue, QueueConflictResolution, QueueRateLimit
from .schedules import ScheduleInput, WorkflowSchedule, check_cron

__all__ = ["AsyncQueuesAPI"]

P = ParamSpec("P")
R = TypeVar("R")


class AsyncQueuesAPI:
    """Database-backed queues, enqueueing, schedules and versions for asyncio code."""

    @classmethod
    async def register_queue_async(
        cls,
        name: str,
        *,
        worker_concurrency: int | None = None,
        concurrency: int | None = None,
        limiter: QueueRateLimit | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        polling_interval_sec: float = 1.0,
        on_conflict: QueueConflictResolution = "update_if_latest_version",
    ) -> Queue:
        """``register_queue`` for asyncio code."""
        queue: Queue = await off_loop(
            "DBOS.register_queue_async", 0, facade().register_queue, name, worker_concurrency=worker_concurrency,
            concurrency=concurrency, limiter=limiter, priority_enabled=priority_enabled, partition_queue=partition_queue,
            polling_interval_sec=polling_interval_sec, on_conflict=on_conflict,
        )
        return queue

    @classmethod
    async def retrieve_queue_async(cls, name: str) -> Queue | None:
        """``retrieve_queue`` for asyncio code."""
        queue: Queue | None = await off_loop("DBOS.retrieve_queue_async", 0, facade().retrieve_queue, name)
        return queue

    @classmethod
    async def delete_queue_async(cls, name: str) -> None:
        """``delete_queue`` for asyncio code."""
        await off_loop("DBOS.delete_queue_async", 0, facade().delete_queue, name)

    @classmethod
    async def list_queues_async(cls, *, application_name: str | list[str] | None = None) -> list[Queue]:
        """``list_queues`` for asyncio code."""
        queues: list[Queue] = await off_loop("DBOS.list_queues_async", 0, facade().list_queues, application_name=application_name)
        return queues

    @classmethod
    async def enqueue_workflow_async(
        cls, queue_name: str, func: Callable[P, Coroutine[Any, Any, R]], *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandleAsync[R]:
        """``enqueue_workflow`` for asyncio code: an async handle on the enqueued workflow."""
        return await Queue(queue_name, database_backed_queue=True).enqueue_async(func, *args, **kwargs)

    @classmethod
    async def enqueue_workflow_with_options_async(cls, options: Any, *args: Any, **kwargs: Any) -> WorkflowHandleAsync[Any]:
        """``enqueue_workflow_with_options`` for asyncio code (inside a workflow, a checkpointed child)."""
        handle = await off_loop(
            "DBOS.enqueue_workflow_with_options_async", 1, facade().enqueue_workflow_with_options, options, *args, **kwargs
        )
        return WorkflowHandleAsync.of(handle)

    # -- schedules ---------------------------------------------------------------------------

    @classmethod
    async def create_schedule_async(
        cls,
        *,
        schedule_name: str,
        workflow_fn: Any,
        schedule: str,
        context: Any = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
    ) -> None:
        """``create_schedule`` for asyncio code."""
        check_cron(schedule)
        executor = executor_for("DBOS.create_schedule_async")
        entry = {
            "schedule_name": schedule_name, "workflow_fn": workflow_fn, "schedule": schedule, "context": context,
            "automatic_backfill": automatic_backfill, "cron_timezone": cron_timezone, "queue_name": queue_name,
        }
        if queue_declared_here(executor, queue_name):
            row = schedule_row(executor, entry)  # in memory: checked on the loop, before the position
        else:  # a queue declared elsewhere in the fleet: looked up first (DBOS's order of checks)
            await in_thread(executor.async_work, check_queue, executor, queue_name)
            row = await in_thread(executor.async_work, schedule_row, executor, entry)
        await in_thread(executor.async_work, record_schedule, executor, row, positions=1)

    @classmethod
    async def list_schedules_async(
        cls,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """``list_schedules`` for asyncio code."""
        schedules: list[WorkflowSchedule] = await off_loop(
            "DBOS.list_schedules_async", 1, facade().list_schedules, status=status, workflow_name=workflow_name,
            schedule_name_prefix=schedule_name_prefix, application_name=application_name,
        )
        return schedules

    @classmethod
    async def get_schedule_async(cls, name: str) -> WorkflowSchedule | None:
        """``get_schedule`` for asyncio code."""
        schedule: WorkflowSchedule | None = await off_loop("DBOS.get_schedule_async", 1, facade().get_schedule, name)
        return schedule

    @classmethod
    async def delete_schedule_async(cls, name: str) -> None:
        """``delete_schedule`` for asyncio code."""
        await off_loop("DBOS.delete_schedule_async", 1, facade().delete_schedule, name)

    @classmethod
    async def apply_schedules_async(cls, schedules: list[ScheduleInput]) -> None:
        """``apply_schedules`` for asyncio code (refused inside a workflow, as in DBOS)."""
        await off_loop("DBOS.apply_schedules_async", 1, facade().apply_schedules, schedules)

    # -- application versions ----------------------------------------------------------------

    @classmethod
    async def list_application_versions_async(cls) -> list[VersionInfo]:
        """``list_application_versions`` for asyncio code."""
        versions: list[VersionInfo] = await off_loop("DBOS.list_application_versions_async", 0, facade().list_application_versions)
        return versions

    @classmethod
    async def get_latest_application_version_async(cls) -> VersionInfo:
        """``get_latest_application_version`` for asyncio code."""
        latest: VersionInfo = await off_loop(
            "DBOS.get_latest_application_version_async", 0, facade().get_latest_application_version
        )
        return latest

    @classmethod
    async def set_latest_application_version_async(cls, version_name: str, *, application_name: str | None = None) -> None:
        """``set_latest_application_version`` for asyncio code."""
        await off_loop(
            "DBOS.set_latest_application_version_async", 0, facade().set_latest_application_version, version_name,
            application_name=application_name,
        )
