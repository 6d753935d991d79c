"""Listing, cancelling and resuming workflows (``DBOS.list_workflows`` and friends).

The filtered listing composes its WHERE clause from fixed column names with
``psycopg.sql``; every value stays a bound parameter.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql

from sysdb import SystemDatabase, now_ms

from .errors import DBOSException, DBOSNonExistentWorkflowError
from .status import WorkflowStatus, status_from_row

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["list_workflows", "cancel_workflow", "resume_workflow", "fork_workflow"]

_COLUMNS = (
    "workflow_uuid, status, name, class_name, config_name, authenticated_user, assumed_role, "
    "authenticated_roles, executor_id, owner_epoch, created_at, updated_at, application_version, "
    "application_id, application_name, recovery_attempts, queue_name, workflow_timeout_ms, "
    "workflow_deadline_epoch_ms, started_at_epoch_ms, deduplication_id, priority, "
    "queue_partition_key, forked_from, was_forked_from, parent_workflow_id, serialization, "
    "delay_until_epoch_ms, completed_at, attributes, schedule_name"
)

# Filter keyword → (column, operator). Lists become "= ANY".
_FILTERS = {
    "workflow_ids": ("workflow_uuid", "any"),
    "status": ("status", "any"),
    "name": ("name", "any"),
    "app_version": ("application_version", "any"),
    "executor_id": ("executor_id", "any"),
    "queue_name": ("queue_name", "any"),
    "parent_workflow_id": ("parent_workflow_id", "any"),
    "forked_from": ("forked_from", "any"),
    "user": ("authenticated_user", "any"),
    "deduplication_id": ("deduplication_id", "any"),
}


def _epoch_ms(value: Any) -> int:
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, str):
        return int(datetime.datetime.fromisoformat(value).timestamp() * 1000)
    return int(value)


def list_workflows(
    db: SystemDatabase,
    *,
    start_time: Any = None,
    end_time: Any = None,
    workflow_id_prefix: str | None = None,
    queues_only: bool = False,
    limit: int | None = None,
    offset: int | None = None,
    sort_desc: bool = False,
    load_input: bool = True,
    load_output: bool = True,
    **filters: Any,
) -> list[WorkflowStatus]:
    """Workflows matching DBOS's ``list_workflows`` filters, oldest first unless ``sort_desc``."""
    unknown = set(filters) - set(_FILTERS)
    if unknown:
        raise DBOSException(f"unknown list_workflows filter(s): {', '.join(sorted(unknown))}")
    clauses: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        column, _ = _FILTERS[key]
        params[key] = list(value) if isinstance(value, (list, tuple, set)) else [value]
        clauses.append(sql.SQL("{} = ANY(%({})s)").format(sql.Identifier(column), sql.SQL(key)))
    if start_time is not None:
        params["start_time"] = _epoch_ms(start_time)
        clauses.append(sql.SQL("created_at >= %(start_time)s"))
    if end_time is not None:
        params["end_time"] = _epoch_ms(end_time)
        clauses.append(sql.SQL("created_at <= %(end_time)s"))
    if workflow_id_prefix:
        params["prefix"] = workflow_id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(sql.SQL("workflow_uuid LIKE %(prefix)s"))
    if queues_only:
        clauses.append(sql.SQL("queue_name IS NOT NULL AND status IN ('ENQUEUED', 'PENDING', 'DELAYED')"))
    columns = _COLUMNS + (", inputs" if load_input else "") + (", output, error" if load_output else "")
    query = sql.SQL("SELECT {} FROM dbos.workflow_status").format(sql.SQL(columns))
    if clauses:
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(" AND ").join(clauses))
    query = sql.SQL("{} ORDER BY created_at {}, workflow_uuid").format(query, sql.SQL("DESC" if sort_desc else "ASC"))
    if limit is not None:
        params["limit"] = int(limit)
        query = sql.SQL("{} LIMIT %(limit)s").format(query)
    if offset is not None:
        params["offset"] = int(offset)
        query = sql.SQL("{} OFFSET %(offset)s").format(query)
    rows = db.query(query, params)
    return [status_from_row(r, load_input=load_input, load_output=load_output) for r in rows]


def cancel_workflow(db: SystemDatabase, workflow_id: str) -> None:
    """Mark a workflow CANCELLED unless it has finished; its owner stops at its next write."""
    changed = db.execute_count("cancel_workflow", {"workflow_id": workflow_id, "now_ms": now_ms()})
    if changed == 0 and db.get_workflow_status(workflow_id) is None:
        raise DBOSNonExistentWorkflowError(workflow_id)


def resume_workflow(executor: "Executor", workflow_id: str) -> None:
    """Make a workflow PENDING under this executor with a fresh epoch and replay it here."""
    from .recovery import resume_owned

    rows = executor.db.execute("resume_workflow", {"workflow_id": workflow_id, "executor_id": executor.executor_id, "now_ms": now_ms()})
    if not rows:
        row = executor.db.get_workflow_status(workflow_id)
        if row is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        return  # it finished: nothing to resume
    resume_owned(executor, workflow_id, rows[0]["owner_epoch"])


def fork_workflow(
    db: SystemDatabase,
    workflow_id: str,
    start_step: int,
    *,
    new_workflow_id: str | None = None,
    application_version: str | None = None,
) -> str:
    """Start a copy of a workflow that reuses its recorded steps before ``start_step`` and runs
    the rest again (on any executor, through the internal queue). Returns the new id."""
    import uuid

    from cluster.claimer import QUEUE_CHANNEL

    from .queues import INTERNAL_QUEUE_NAME

    if not isinstance(start_step, int) or start_step < 1:
        raise DBOSException(f"start_step must be a step number >= 1, got {start_step!r}")
    new_id = new_workflow_id or str(uuid.uuid4())
    rows = db.execute(
        "fork_workflow",
        {
            "workflow_id": workflow_id,
            "new_workflow_id": new_id,
            "start_step": start_step,
            "queue_name": INTERNAL_QUEUE_NAME,
            "application_version": application_version,
            "now_ms": now_ms(),
        },
    )
    if not rows:
        if db.get_workflow_status(workflow_id) is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        raise DBOSException(f"cannot fork {workflow_id!r} as {new_id!r}: a workflow with that id exists")
    db.notify(QUEUE_CHANNEL, INTERNAL_QUEUE_NAME)
    return new_id
