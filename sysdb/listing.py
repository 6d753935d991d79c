"""The filtered workflow listing behind ``DBOS.list_workflows`` and ``pgfleet workflow list``.

Its WHERE clause depends on which filters are given, so it is composed with ``psycopg.sql`` from
fixed column names; every value stays a bound parameter.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql

from .workflow_rows import WorkflowRow

if TYPE_CHECKING:
    from .database import SystemDatabase

__all__ = ["select_workflows", "UnknownFilterError"]


class UnknownFilterError(ValueError):
    """A listing filter this module does not know."""


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


def select_workflows(
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
) -> list[WorkflowRow]:
    """``workflow_status`` rows matching DBOS's ``list_workflows`` criteria, oldest first unless
    ``sort_desc``. Each filter takes a value or a list of values."""
    unknown = set(filters) - set(_FILTERS)
    if unknown:
        raise UnknownFilterError(f"unknown list_workflows filter(s): {', '.join(sorted(unknown))}")
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
    return [WorkflowRow(**row) for row in db._query(query, params)]
