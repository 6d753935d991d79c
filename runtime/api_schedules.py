"""``DBOS``'s database-backed schedules: ``create_schedule``, ``list_schedules``, ``get_schedule``,
``pause_schedule``, ``resume_schedule``, ``delete_schedule``, ``apply_schedules``,
``backfill_schedule`` and ``trigger_schedule``, with DBOS 2.30's signatures and errors.

Inside a workflow, creating, reading, pausing, resuming and deleting are checkpointed operations
(DBOS's ``DBOS.createSchedule`` ... steps); a change commits with the workflow's fenced
checkpoint. Applying, backfilling and triggering are refused there, as in DBOS. The fleet's
leader fires the ticks (:mod:`runtime.scheduler`).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from .context import current_workflow
from .current import executor_for
from .errors import DBOSException
from .handles import WorkflowHandle
from .queues import INTERNAL_QUEUE_NAME
from .schedules import (
    ScheduleInput,
    WorkflowSchedule,
    apply_schedules,
    as_schedule,
    backfill_schedule,
    check_cron,
    check_timezone,
    create_schedule,
    list_schedules,
    new_schedule,
    trigger_schedule,
    workflow_target,
)

if TYPE_CHECKING:
    from sysdb.workflow_schedules import WorkflowScheduleRow

    from .executor import Executor

__all__ = ["SchedulesAPI", "check_queue", "queue_declared_here", "record_schedule", "schedule_row"]


def _not_in_workflow(what: str) -> None:
    ctx = current_workflow()
    if ctx is not None and not ctx.in_step:
        ctx.next_function_id()  # DBOS takes a step position for the call before refusing it
        raise DBOSException(f"DBOS.{what} cannot be called from within a workflow")


def queue_declared_here(executor: Executor, queue_name: str | None) -> bool:
    """Whether a schedule's queue is known without asking the database (none, the internal
    queue, or one this program declares)."""
    return queue_name is None or queue_name == INTERNAL_QUEUE_NAME or executor.registry.queue(queue_name) is not None


def check_queue(executor: Executor, queue_name: str | None) -> None:
    """A schedule's queue must be declared: here, or by a live member of the fleet."""
    if queue_declared_here(executor, queue_name):
        return
    if any(q.name == queue_name for q in executor.db.claims.definitions()):
        return
    raise DBOSException(f"Queue '{queue_name}' is not declared. Please create the queue before using it in a schedule.")


def schedule_row(executor: Executor, entry: ScheduleInput | dict[str, Any]) -> WorkflowScheduleRow:
    """A validated schedule of this program's (DBOS's checks, in DBOS's order)."""
    check_cron(entry["schedule"])
    check_timezone(entry.get("cron_timezone"))
    workflow_name, class_name = workflow_target(executor.registry, entry["workflow_fn"])
    check_queue(executor, entry.get("queue_name"))
    return new_schedule(
        schedule_name=entry["schedule_name"],
        workflow_name=workflow_name,
        workflow_class_name=class_name,
        schedule=entry["schedule"],
        context=entry.get("context"),
        automatic_backfill=entry.get("automatic_backfill", False),
        cron_timezone=entry.get("cron_timezone"),
        queue_name=entry.get("queue_name"),
        application_name=executor.config.name,
    )


def record_schedule(executor: Executor, row: WorkflowScheduleRow) -> None:
    """Create the schedule ``row`` (a checkpointed ``DBOS.createSchedule`` inside a workflow)."""
    executor.recorded_effect("DBOS.createSchedule", lambda conn: create_schedule(executor.db, row, conn))


class SchedulesAPI:
    """The schedule methods of ``DBOS`` (a mixin of class methods)."""

    @classmethod
    def create_schedule(
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
        """Create a cron schedule (5 fields, or 6 with seconds first) that runs ``workflow_fn``
        with ``(tick time, context)`` once per tick across the fleet, on ``queue_name`` (by
        default the internal queue), in ``cron_timezone`` (default UTC). With
        ``automatic_backfill`` ticks missed while it could not fire are run when it can again.
        Raises DBOSException for a bad cron or timezone, an unregistered workflow, an
        undeclared queue, or a name that is taken."""
        check_cron(schedule)
        executor = executor_for("DBOS.create_schedule")
        check_queue(executor, queue_name)
        row = schedule_row(executor, {
            "schedule_name": schedule_name, "workflow_fn": workflow_fn, "schedule": schedule, "context": context,
            "automatic_backfill": automatic_backfill, "cron_timezone": cron_timezone, "queue_name": queue_name,
        })
        record_schedule(executor, row)

    @classmethod
    def list_schedules(
        cls,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """The schedules matching the filters (each a value or a list); by default only this
        application's (and those no application owns)."""
        executor = executor_for("DBOS.list_schedules")
        return executor.recorded_call("DBOS.listSchedules", lambda: list_schedules(
            executor.db, executor.config.name, status=status, workflow_name=workflow_name,
            schedule_name_prefix=schedule_name_prefix, application_name=application_name,
        ))

    @classmethod
    def get_schedule(cls, name: str) -> WorkflowSchedule | None:
        """The schedule named ``name``, or None."""
        executor = executor_for("DBOS.get_schedule")

        def read() -> WorkflowSchedule | None:
            row = executor.db.workflow_schedules.get(name)
            return as_schedule(row) if row is not None else None

        return executor.recorded_call("DBOS.getSchedule", read)

    @classmethod
    def delete_schedule(cls, name: str) -> None:
        """Delete the schedule named ``name`` (nothing if there is none); its runs stay."""
        executor = executor_for("DBOS.delete_schedule")
        executor.recorded_effect("DBOS.deleteSchedule", lambda conn: executor.db.workflow_schedules.delete(name, connection=conn))

    @classmethod
    def pause_schedule(cls, name: str) -> None:
        """Pause a schedule: no tick fires until it is resumed."""
        executor = executor_for("DBOS.pause_schedule")
        executor.recorded_effect(
            "DBOS.pauseSchedule", lambda conn: executor.db.workflow_schedules.set_status(name, "PAUSED", connection=conn)
        )

    @classmethod
    def resume_schedule(cls, name: str) -> None:
        """Resume a paused schedule: it fires from its next tick on."""
        executor = executor_for("DBOS.resume_schedule")
        executor.recorded_effect(
            "DBOS.resumeSchedule", lambda conn: executor.db.workflow_schedules.set_status(name, "ACTIVE", connection=conn)
        )

    @classmethod
    def apply_schedules(cls, schedules: list[ScheduleInput]) -> None:
        """Create or replace each schedule of ``schedules`` in one transaction (a replaced one
        keeps its status and last tick); the others are left as they are."""
        _not_in_workflow("apply_schedules")
        executor = executor_for("DBOS.apply_schedules")
        rows = []
        for i, entry in enumerate(schedules):
            for required in ("schedule_name", "workflow_fn", "schedule"):
                if required not in entry:
                    raise DBOSException(f"Schedule entry {i} is missing required field '{required}'")
            rows.append(schedule_row(executor, entry))
        apply_schedules(executor.db, rows)

    @classmethod
    def backfill_schedule(cls, schedule_name: str, start: datetime.datetime, end: datetime.datetime) -> list[WorkflowHandle[None]]:
        """Enqueue the runs of every tick strictly between ``start`` and ``end`` (naive times
        are UTC) that did not run yet; handles on all of them."""
        _not_in_workflow("backfill_schedule")
        executor = executor_for("DBOS.backfill_schedule")
        ids = backfill_schedule(executor.db, schedule_name, start, end, executor.config.name)
        return [WorkflowHandle(workflow_id, source=executor) for workflow_id in ids]

    @classmethod
    def trigger_schedule(cls, schedule_name: str) -> WorkflowHandle[None]:
        """Enqueue a run of the schedule now; its handle."""
        _not_in_workflow("trigger_schedule")
        executor = executor_for("DBOS.trigger_schedule")
        return WorkflowHandle(trigger_schedule(executor.db, schedule_name, executor.config.name), source=executor)
