"""The web console's workflow list (issue #13): filtered, newest first, paged by a keyset
cursor ``(created_at, workflow_uuid)`` instead of an offset, so page N costs what page 1 costs
on a table of a million finished workflows.

The WHERE clause depends on which filters are given, so the query is composed with
``psycopg.sql`` from fixed column names as :mod:`sysdb.listing` does; every value stays a bound
parameter. Every list walks DBOS's created_at index (or its status index) in order; a name,
queue or executor filter filters that walk (migration 0011 dropped the indexes 0009 gave them:
each cost every workflow a tenth of its time), which stays a few ms on a million rows unless
the filter matches nothing at all. :func:`workflow_page_query` is public so a test and
``ops/bench/console.py`` can EXPLAIN it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from .door import Door, row_to

__all__ = ["WorkflowPages", "WorkflowFilter", "PageCursor", "WorkflowSummary", "WorkflowPage", "workflow_page_query", "BadCursorError"]

MAX_PAGE = 500


class BadCursorError(ValueError):
    """A paging cursor that is not one this module wrote."""


@dataclass(frozen=True)
class WorkflowFilter:
    """Which workflows a list shows: each tuple matches any of its values (empty: no filter);
    ``since_ms``/``until_ms`` bound ``created_at`` (epoch ms, both included); ``prefix`` is a
    start of the workflow id."""

    statuses: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    executors: tuple[str, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None
    prefix: str | None = None


@dataclass(frozen=True)
class PageCursor:
    """Where the next page starts: after the row with this ``created_at`` and id (newest first)."""

    created_at: int
    workflow_uuid: str

    def encode(self) -> str:
        """The cursor as text for a URL (``<created_at>.<id>``; ids may hold any character)."""
        return f"{self.created_at}.{self.workflow_uuid}"

    @classmethod
    def decode(cls, text: str) -> PageCursor:
        """The cursor :meth:`encode` wrote; raises :class:`BadCursorError` for anything else."""
        created, sep, workflow_uuid = text.partition(".")
        if not sep or not workflow_uuid or not created.isdigit():
            raise BadCursorError(f"not a page cursor: {text!r} (expected <created_at ms>.<workflow id>, as the next-page link gives)")
        return cls(int(created), workflow_uuid)


@dataclass(frozen=True)
class WorkflowSummary:
    """A list row: a workflow's identity, status and placement (no inputs or outputs)."""

    workflow_uuid: str
    status: str
    name: str
    queue_name: str | None
    executor_id: str | None
    owner_epoch: int | None
    created_at: int
    updated_at: int | None
    recovery_attempts: int | None
    parent_workflow_id: str | None
    forked_from: str | None
    application_version: str | None


@dataclass(frozen=True)
class WorkflowPage:
    """One page of the list, and the cursor of the next (None on the last page)."""

    rows: list[WorkflowSummary]
    next_cursor: PageCursor | None


_COLUMNS = (
    "workflow_uuid, status, name, queue_name, executor_id, owner_epoch, created_at, updated_at, "
    "recovery_attempts, parent_workflow_id, forked_from, application_version"
)

# Filter field -> column; each matches "= ANY(values)".
_ANY_FILTERS = (("statuses", "status"), ("names", "name"), ("queues", "queue_name"), ("executors", "executor_id"))


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def workflow_page_query(where: WorkflowFilter, after: PageCursor | None, limit: int) -> tuple[sql.Composed, dict[str, Any]]:
    """The page's query and parameters: ``limit + 1`` rows, so the caller knows whether a next
    page exists. Raises ValueError for a limit outside 1..MAX_PAGE."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"a page holds 1 to {MAX_PAGE} workflows, not {limit}")
    clauses: list[sql.Composable] = []
    params: dict[str, Any] = {"limit": limit + 1}
    for field, column in _ANY_FILTERS:
        values = getattr(where, field)
        if len(values) == 1:
            # "= value", not "= ANY": the planner then reads the (column, created_at, id) index in order.
            params[field] = values[0]
            clauses.append(sql.SQL("{} = %({})s").format(sql.Identifier(column), sql.SQL(field)))
        elif values:
            params[field] = list(values)
            clauses.append(sql.SQL("{} = ANY(%({})s)").format(sql.Identifier(column), sql.SQL(field)))
    if where.since_ms is not None:
        params["since_ms"] = where.since_ms
        clauses.append(sql.SQL("created_at >= %(since_ms)s"))
    if where.until_ms is not None:
        params["until_ms"] = where.until_ms
        clauses.append(sql.SQL("created_at <= %(until_ms)s"))
    if where.prefix:
        params["prefix"] = _like_prefix(where.prefix)
        clauses.append(sql.SQL("workflow_uuid LIKE %(prefix)s"))
    if after is not None:
        # A row comparison: the index on (…, created_at, workflow_uuid) starts right after the cursor.
        params["after_created_at"], params["after_uuid"] = after.created_at, after.workflow_uuid
        clauses.append(sql.SQL("(created_at, workflow_uuid) < (%(after_created_at)s, %(after_uuid)s)"))
    query = sql.SQL("SELECT {} FROM dbos.workflow_status").format(sql.SQL(_COLUMNS))
    if clauses:
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(" AND ").join(clauses))
    query = sql.SQL("{} ORDER BY created_at DESC, workflow_uuid DESC LIMIT %(limit)s").format(query)
    return query, params


class WorkflowPages(Door):
    """Pages of the filtered workflow list, newest first."""

    def page(self, where: WorkflowFilter, after: PageCursor | None = None, limit: int = 50) -> WorkflowPage:
        """The ``limit`` newest workflows matching ``where`` that come after ``after``."""
        query, params = workflow_page_query(where, after, limit)
        rows = [row_to(WorkflowSummary, r) for r in self._db._query(query, params)]
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = PageCursor(rows[-1].created_at, rows[-1].workflow_uuid) if more else None
        return WorkflowPage(rows, cursor)
