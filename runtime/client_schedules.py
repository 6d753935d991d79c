"""``DBOSClient``'s database-backed schedules, with DBOS 2.30's signatures and errors.

A client names a schedule's workflow by its registered name (it runs no workflow code, so it
cannot check that an executor has it, and DBOS's client does not either): the fleet's leader
fires the ticks, and an executor that registered the function runs them.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from .errors import DBOSException
from .handles import WorkflowHandle
from .schedules import (
    ClientScheduleInput,
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
)

if TYPE_CHECKING:
    from sysdb import SystemDatabase

__all__ = ["ClientSchedulesAPI"]


class ClientSchedulesAPI:
    """The schedule methods of ``DBOSClient`` (a mixin: the client provides ``db`` and the
    application it acts for)."""

    _application_name: str | None

    @property
    def db(self) -> SystemDatabase:
        raise NotImplementedError

    def create_schedule(
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
        """Create a cron schedule running workflow ``workflow_name`` with ``(tick time,
        context)``, owned by ``application_name`` (default: the client's; neither: every
        application's). Raises DBOSException for a bad cron or timezone or a taken name."""
        check_cron(schedule)
        check_timezone(cron_timezone)
        create_schedule(self.db, new_schedule(
            schedule_name=schedule_name, workflow_name=workflow_name, workflow_class_name=workflow_class_name,
            schedule=schedule, context=context, automatic_backfill=automatic_backfill, cron_timezone=cron_timezone,
            queue_name=queue_name,
            application_name=application_name if application_name is not None else self._application_name,
        ))

    def list_schedules(
        self,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """The schedules matching the filters; by default the client's application's (all of
        them for a client that names none)."""
        return list_schedules(
            self.db, self._application_name, status=status, workflow_name=workflow_name,
            schedule_name_prefix=schedule_name_prefix, application_name=application_name,
        )

    def get_schedule(self, name: str) -> WorkflowSchedule | None:
        """The schedule named ``name``, or None."""
        row = self.db.workflow_schedules.get(name)
        return as_schedule(row) if row is not None else None

    def delete_schedule(self, name: str) -> None:
        """Delete the schedule named ``name`` (nothing if there is none)."""
        self.db.workflow_schedules.delete(name)

    def pause_schedule(self, name: str) -> None:
        """Pause a schedule: no tick fires until it is resumed."""
        self.db.workflow_schedules.set_status(name, "PAUSED")

    def resume_schedule(self, name: str) -> None:
        """Resume a paused schedule."""
        self.db.workflow_schedules.set_status(name, "ACTIVE")

    def apply_schedules(self, schedules: list[ClientScheduleInput]) -> None:
        """Create or replace each schedule of ``schedules`` in one transaction."""
        rows = []
        for i, entry in enumerate(schedules):
            for required in ("schedule_name", "workflow_name", "schedule"):
                if required not in entry:
                    raise DBOSException(f"Schedule entry {i} is missing required field '{required}'")
            check_cron(entry["schedule"])
            check_timezone(entry.get("cron_timezone"))
            rows.append(new_schedule(
                schedule_name=entry["schedule_name"], workflow_name=entry["workflow_name"],
                workflow_class_name=entry.get("workflow_class_name"), schedule=entry["schedule"],
                context=entry.get("context"), automatic_backfill=entry.get("automatic_backfill", False),
                cron_timezone=entry.get("cron_timezone"), queue_name=entry.get("queue_name"),
                application_name=entry.get("application_name", self._application_name),
            ))
        apply_schedules(self.db, rows)

    def backfill_schedule(self, schedule_name: str, start: datetime.datetime, end: datetime.datetime) -> list[WorkflowHandle[None]]:
        """Enqueue the runs of every tick strictly between ``start`` and ``end`` that did not
        run yet; handles on all of them."""
        ids = backfill_schedule(self.db, schedule_name, start, end, self._application_name)
        return [WorkflowHandle(workflow_id, source=self) for workflow_id in ids]  # type: ignore[arg-type]  # the client is a ResultSource

    def trigger_schedule(self, schedule_name: str) -> WorkflowHandle[None]:
        """Enqueue a run of the schedule now; its handle."""
        return WorkflowHandle(trigger_schedule(self.db, schedule_name, self._application_name), source=self)  # type: ignore[arg-type]
