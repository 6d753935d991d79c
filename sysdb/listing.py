"""The filtered workflow listing behind ``DBOS.list_workflows`` and ``pgfleet workflow list``.

Its WHERE clause depends on which filters are given, so it is composed with ``psycopg.sql`` from
fixed column names; every value stays a bound parameter.
"""

from __future__ import annotations

import datetime
import json
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
    "schedule_name": ("schedule_name", "any"),
    "application_name": ("application_name", "any"),
}

# Time-range keyword → (column, comparison), as DBOS compares them (bounds included).
_RANGES = {
    "start_time": ("created_at", ">="),
    "end_time": ("created_at", "<="),
    "completed_after": ("completed_at", ">="),
    "completed_before": ("completed_at", "<="),
    "dequeued_after": ("started_at_epoch_ms", ">="),
    "dequeued_before": ("started_at_epoch_ms", "<="),
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
    workflow_id_prefix: str | list[str] | None = None,
    was_forked_from: bool | None = None,
    has_parent: bool | None = None,
    queues_only: bool = False,
    limit: int | None = None,
    offset: int | None = None,
    sort_desc: bool = False,
    load_input: bool = True,
    load_output: bool = True,
    attributes: dict[str, Any] | None = None,
    **filters: Any,
) -> list[WorkflowRow]:
    """``workflow_status`` rows matching DBOS's ``list_workflows`` criteria, oldest first unless
    ``sort_desc``. Each filter takes a value or a list of values; as in DBOS an empty one (None,
    an empty list or string, a zero limit) filters nothing."""
    unknown = set(filters) - set(_FILTERS) - set(_RANGES)
    if unknown:
        raise UnknownFilterError(f"unknown list_workflows filter(s): {', '.join(sorted(unknown))}")
    clauses, params = _value_clauses(filters)
    prefixes = [workflow_id_prefix] if isinstance(workflow_id_prefix, str) else list(workflow_id_prefix or [])
    prefix_clauses = []
    for i, prefix in enumerate(p for p in prefixes if p):
        params[f"prefix_{i}"] = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        prefix_clauses.append(sql.SQL("workflow_uuid LIKE %({})s").format(sql.SQL(f"prefix_{i}")))
    if prefix_clauses:
        clauses.append(sql.SQL("({})").format(sql.SQL(" OR ").join(prefix_clauses)))
    if was_forked_from is not None:
        params["was_forked_from"] = bool(was_forked_from)
        clauses.append(sql.SQL("was_forked_from = %(was_forked_from)s"))
    if attributes:
        # Containment, as DBOS's filter: every given key has the given value (a GIN index serves it).
        params["attributes"] = json.dumps(attributes)
        clauses.append(sql.SQL("attributes @> %(attributes)s::jsonb"))
    if has_parent is not None:
        clauses.append(sql.SQL("parent_workflow_id IS NOT NULL" if has_parent else "parent_workflow_id IS NULL"))
    if queues_only:
        clauses.append(sql.SQL("queue_name IS NOT NULL AND status IN ('ENQUEUED', 'PENDING', 'DELAYED')"))
    columns = _COLUMNS + (", inputs" if load_input else "") + (", output, error" if load_output else "")
    query = sql.SQL("SELECT {} FROM dbos.workflow_status").format(sql.SQL(columns))
    if clauses:
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(" AND ").join(clauses))
    query = sql.SQL("{} ORDER BY created_at {}, workflow_uuid").format(query, sql.SQL("DESC" if sort_desc else "ASC"))
    if limit:
        params["limit"] = int(limit)
        query = sql.SQL("{} LIMIT %(limit)s").format(query)
    if offset:
        params["offset"] = int(offset)
        query = sql.SQL("{} OFFSET %(offset)s").format(query)
    return [WorkflowRow(**row) for row in db._query(query, params)]


def _value_clauses(filters: dict[str, Any]) -> tuple[list[sql.Composable], dict[str, Any]]:
    """The WHERE clauses (and their parameters) of the value and time-range filters given."""
    clauses: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None or value == "" or (isinstance(value, (list, tuple, set)) and not value):
            continue
        if key in _RANGES:
            column, comparison = _RANGES[key]
            params[key] = _epoch_ms(value)
            clauses.append(sql.SQL("{} {} %({})s").format(sql.Identifier(column), sql.SQL(comparison), sql.SQL(key)))
            continue
        column, _ = _FILTERS[key]
        params[key] = list(value) if isinstance(value, (list, tuple, set)) else [value]
        clauses.append(sql.SQL("{} = ANY(%({})s)").format(sql.Identifier(column), sql.SQL(key)))
    return clauses, params
