"""Database-backed schedules (DBOS 2.30's ``DBOS.create_schedule`` family): what ``DBOS`` and
``DBOSClient`` share.

A schedule is a row of ``dbos.workflow_schedules`` naming a workflow by its registered name, a
cron expression (5 fields, or 6 with seconds first), a context passed to every run, and a
status (ACTIVE or PAUSED). Its runs are ENQUEUED workflows called with ``(tick time, context)``
whose ids come from the schedule and the tick (DBOS's ``sched-<schedule>-<tick ISO time>``), so
a tick is run once however often it is fired: by the fleet's leader (:mod:`runtime.scheduler`),
by a backfill, or by both. Validation and message texts are DBOS's.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from croniter import croniter

from sysdb import SystemDatabase
from sysdb.logs import get_logger
from sysdb.workflow_schedules import (
    ScheduleExistsError,
    ScheduleFilter,
    ScheduleOwnedElsewhereError,
    ScheduleRun,
    WorkflowScheduleRow,
)

from .errors import DBOSException, DBOSWorkflowFunctionNotFoundError
from .queues import INTERNAL_QUEUE_NAME
from .registry import CLASS_METHOD, INSTANCE_METHOD, TEMP_WORKFLOW_PREFIX, RegisteredWorkflow, Registry
from .serialization import deserialize, serialize

__all__ = [
    "ScheduleInput",
    "ClientScheduleInput",
    "WorkflowSchedule",
    "check_cron",
    "check_timezone",
    "workflow_target",
    "new_schedule",
    "as_schedule",
    "create_schedule",
    "apply_schedules",
    "list_schedules",
    "run_of",
    "tick_workflow_id",
    "ticks_after",
    "tick_zone",
    "trigger_schedule",
    "backfill_schedule",
]

log = get_logger("pgfleet.runtime")


class ScheduleInput(TypedDict, total=False):
    """One entry of ``DBOS.apply_schedules``: ``schedule_name``, ``workflow_fn`` and
    ``schedule`` are required."""

    schedule_name: str
    workflow_fn: Callable[[datetime.datetime, Any], Any]
    schedule: str
    context: Any
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None


class ClientScheduleInput(TypedDict, total=False):
    """One entry of ``DBOSClient.apply_schedules``: the workflow is named, not passed."""

    schedule_name: str
    workflow_name: str
    workflow_class_name: str | None
    schedule: str
    context: Any
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    application_name: str | None


class WorkflowSchedule(TypedDict):
    """A schedule as ``list_schedules``/``get_schedule`` return it (``context`` deserialized)."""

    schedule_id: str
    schedule_name: str
    workflow_name: str
    workflow_class_name: str | None
    schedule: str
    status: str
    context: Any
    last_fired_at: str | None
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    application_name: str | None


# -- validation ----------------------------------------------------------------------------------


def check_cron(cron: str) -> None:
    """DBOS's check: a cron expression croniter accepts, a 6-field one with seconds first."""
    if not isinstance(cron, str) or not croniter.is_valid(cron, second_at_beginning=True):
        raise DBOSException(f"Invalid cron schedule: '{cron}'")


def check_timezone(cron_timezone: str | None) -> None:
    if cron_timezone is None:
        return
    try:
        ZoneInfo(cron_timezone)
    except Exception:
        raise DBOSException(f"Invalid timezone: '{cron_timezone}'") from None


def workflow_target(registry: Registry, workflow_fn: Any) -> tuple[str, str | None]:
    """The registered name of a schedule's workflow function, and its class for a classmethod
    (DBOS's checks and messages: an undecorated function, a step, an instance method)."""
    entry = getattr(workflow_fn, "__pgfleet_workflow__", None)
    if not isinstance(entry, RegisteredWorkflow):
        name = getattr(workflow_fn, "__name__", repr(workflow_fn))
        raise DBOSWorkflowFunctionNotFoundError("<NONE>", f"{name} is not a registered workflow function")
    if entry.name.startswith(TEMP_WORKFLOW_PREFIX) or registry.workflow(entry.name) is None:
        # A step or transaction is registered under its own name, which names no workflow.
        raise DBOSException(f"Workflow function '{entry.name.removeprefix(TEMP_WORKFLOW_PREFIX)}' is not registered")
    if entry.kind == INSTANCE_METHOD:
        raise DBOSException("Configured instance methods cannot be used as scheduled workflows")
    return entry.name, entry.class_name if entry.kind == CLASS_METHOD else None


def new_schedule(
    *,
    schedule_name: str,
    workflow_name: str,
    workflow_class_name: str | None,
    schedule: str,
    context: Any,
    automatic_backfill: bool,
    cron_timezone: str | None,
    queue_name: str | None,
    application_name: str | None,
) -> WorkflowScheduleRow:
    """The row of a new schedule (ACTIVE, never fired, a fresh id)."""
    return WorkflowScheduleRow(
        schedule_id=str(uuid.uuid4()),
        schedule_name=schedule_name,
        workflow_name=workflow_name,
        workflow_class_name=workflow_class_name,
        schedule=schedule,
        status="ACTIVE",
        context=serialize(context, what=f"the context of schedule {schedule_name!r}"),
        last_fired_at=None,
        automatic_backfill=bool(automatic_backfill),
        cron_timezone=cron_timezone,
        queue_name=queue_name,
        application_name=application_name,
    )


def as_schedule(row: WorkflowScheduleRow) -> WorkflowSchedule:
    """The dict DBOS returns; a context this program cannot deserialize stays text (with a
    warning), as in DBOS, so that listing never fails on one bad row."""
    try:
        context = deserialize(row.context, what="schedule context")
    except Exception as exc:
        log.warning(
            f"Warning: context object could not be deserialized for schedule {row.schedule_name}, returning as string: {exc}"
        )
        context = row.context
    schedule: WorkflowSchedule = {**vars(row), "context": context}  # type: ignore[typeddict-item]
    return schedule


def _owned_elsewhere(exc: ScheduleOwnedElsewhereError) -> DBOSException:
    return DBOSException(
        f"Schedule '{exc.schedule_name}' is already registered by application '{exc.current}' in this system "
        "database. Schedule names must be unique across applications sharing a system database. Either give "
        f"'{exc.owner}' a different schedule name, or, if '{exc.current}' was renamed to '{exc.owner}', re-own its "
        "rows first with dbos rename-application"
    )


def create_schedule(db: SystemDatabase, row: WorkflowScheduleRow, conn: Any = None) -> None:
    try:
        db.workflow_schedules.create(row, connection=conn)
    except ScheduleExistsError:
        raise DBOSException(f"Schedule '{row.schedule_name}' already exists") from None
    except ScheduleOwnedElsewhereError as exc:
        raise _owned_elsewhere(exc) from None


def apply_schedules(db: SystemDatabase, rows: list[WorkflowScheduleRow]) -> None:
    try:
        db.workflow_schedules.apply(rows)
    except ScheduleOwnedElsewhereError as exc:
        raise _owned_elsewhere(exc) from None


def _names(value: str | list[str] | None) -> list[str] | None:
    return None if value is None else [value] if isinstance(value, str) else list(value)


def list_schedules(
    db: SystemDatabase,
    own_application: str | None,
    *,
    status: str | list[str] | None,
    workflow_name: str | list[str] | None,
    schedule_name_prefix: str | list[str] | None,
    application_name: str | list[str] | None,
    conn: Any = None,
) -> list[WorkflowSchedule]:
    """DBOS's filters; by default only ``own_application``'s schedules (and unowned ones)."""
    apps = _names(application_name if application_name is not None else own_application)
    selection = ScheduleFilter(
        statuses=_names(status),
        workflow_names=_names(workflow_name),
        prefixes=_names(schedule_name_prefix),
        application_names=apps or None,  # an empty filter, or no application: every schedule
    )
    return [as_schedule(r) for r in db.workflow_schedules.list(selection, connection=conn)]


# -- runs ----------------------------------------------------------------------------------------


def tick_zone(row: WorkflowScheduleRow) -> datetime.tzinfo:
    return ZoneInfo(row.cron_timezone) if row.cron_timezone else datetime.timezone.utc


def tick_workflow_id(schedule_name: str, tick: datetime.datetime) -> str:
    """DBOS's id of a tick's run: the tick in the schedule's time zone, ISO with its offset."""
    return f"sched-{schedule_name}-{tick.isoformat()}"


def ticks_after(row: WorkflowScheduleRow, after: datetime.datetime) -> Iterator[datetime.datetime]:
    """The schedule's ticks strictly after ``after``, in its time zone, without end."""
    start = after if after.tzinfo is not None else after.replace(tzinfo=datetime.timezone.utc)
    iterator = croniter(row.schedule, start.astimezone(tick_zone(row)), second_at_beginning=True)
    while True:
        yield iterator.get_next(datetime.datetime)


def run_of(row: WorkflowScheduleRow, workflow_id: str, tick: datetime.datetime, firing_application: str | None) -> ScheduleRun:
    """The run of ``row`` at ``tick``: called with ``(tick, context)``. It belongs to the
    schedule's owner, or to whoever fires an unowned schedule."""
    context = deserialize(row.context, what=f"the context of schedule {row.schedule_name!r}")
    return ScheduleRun(
        workflow_id=workflow_id,
        schedule_name=row.schedule_name,
        workflow_name=row.workflow_name,
        class_name=row.workflow_class_name,
        queue_name=row.queue_name or INTERNAL_QUEUE_NAME,
        inputs=serialize({"args": (tick, context), "kwargs": {}}, what=f"the inputs of schedule {row.schedule_name!r}"),
        application_name=row.application_name if row.application_name is not None else firing_application,
    )


def _existing(db: SystemDatabase, schedule_name: str) -> WorkflowScheduleRow:
    row = db.workflow_schedules.get(schedule_name)
    if row is None:
        raise DBOSException(f"Schedule '{schedule_name}' does not exist")
    return row


def trigger_schedule(db: SystemDatabase, schedule_name: str, firing_application: str | None) -> str:
    """Enqueue a run of the schedule now (id ``sched-<name>-trigger-<now>``); its workflow id."""
    row = _existing(db, schedule_name)
    now = datetime.datetime.now(datetime.timezone.utc)
    run = run_of(row, f"sched-{schedule_name}-trigger-{now.isoformat()}", now, firing_application)
    db.workflow_schedules.enqueue_run(run)
    db.claims.wake_queue(run.queue_name)
    return run.workflow_id


def backfill_schedule(
    db: SystemDatabase, schedule_name: str, start: datetime.datetime, end: datetime.datetime, firing_application: str | None
) -> list[str]:
    """Enqueue every tick strictly between ``start`` and ``end`` (naive times are UTC) that has
    no run yet; the ids of all of them, run before or not."""
    row = _existing(db, schedule_name)
    end = end if end.tzinfo is not None else end.replace(tzinfo=datetime.timezone.utc)
    workflow_ids: list[str] = []
    queues: set[str] = set()
    for tick in ticks_after(row, start):
        if tick >= end:
            break
        run = run_of(row, tick_workflow_id(schedule_name, tick), tick, firing_application)
        if db.workflow_schedules.enqueue_run(run):
            queues.add(run.queue_name)
        workflow_ids.append(run.workflow_id)
    for queue_name in queues:
        db.claims.wake_queue(queue_name)
    return workflow_ids
