"""The workflow list (filters, keyset paging) and one workflow's page (inputs, outcome, status
and ownership history, steps as a timeline, events, streams, messages)."""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sysdb.console_reads import TakeoverView
from sysdb.steps import StepRow
from sysdb.workflow_pages import BadCursorError, PageCursor, WorkflowFilter
from sysdb.workflow_rows import WorkflowRow

from .render import decoded, decoded_error, decoded_input, error_page, ms_time, page
from .state import Console, console_of

__all__ = ["workflow_list", "workflow_detail", "STATUSES", "FINISHED", "RESUMABLE", "BadRequest"]

STATUSES = ("PENDING", "ENQUEUED", "DELAYED", "SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
FINISHED = ("SUCCESS", "ERROR")
# The statuses `pgfleet workflow resume` sends back to work (its _RESUMABLE).
RESUMABLE = ("CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_TEXT_FILTERS = ("name", "queue", "executor")


class BadRequest(ValueError):
    """A query parameter the console cannot use; its message names it."""


def _values(request: Request, key: str, *, upper: bool = False) -> tuple[str, ...]:
    """A filter's values: the parameter may repeat and each may be comma-separated."""
    items = [v.strip() for raw in request.query_params.getlist(key) for v in raw.split(",") if v.strip()]
    return tuple(v.upper() for v in items) if upper else tuple(items)


def _time_ms(request: Request, key: str) -> int | None:
    text = request.query_params.get(key, "").strip()
    if not text:
        return None
    try:
        stamp = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{key}={text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00+00:00)") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)  # a time without a zone is UTC
    return int(stamp.timestamp() * 1000)


def _limit(request: Request) -> int:
    text = request.query_params.get("limit", "").strip()
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit={text!r}: a page holds 1 to {MAX_LIMIT} workflows")
    return int(text)


def parse_list_request(request: Request) -> tuple[WorkflowFilter, PageCursor | None, int]:
    """The list's filter, cursor and page size from the query string; raises :class:`BadRequest`."""
    statuses = _values(request, "status", upper=True)
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise BadRequest(f"unknown status {', '.join(unknown)} (one of {', '.join(STATUSES)})")
    after_text = request.query_params.get("after", "").strip()
    try:
        after = PageCursor.decode(after_text) if after_text else None
    except BadCursorError as exc:
        raise BadRequest(str(exc)) from None
    where = WorkflowFilter(
        statuses=statuses, names=_values(request, "name"), queues=_values(request, "queue"),
        executors=_values(request, "executor"), since_ms=_time_ms(request, "since"), until_ms=_time_ms(request, "until"),
        prefix=request.query_params.get("prefix", "").strip() or None,
    )
    return where, after, _limit(request)


def workflow_list(request: Request) -> Response:
    """GET /workflows: the filtered list, newest first, a page at a time."""
    console = console_of(request)
    try:
        where, after, limit = parse_list_request(request)
    except BadRequest as exc:
        return error_page(str(exc), 400)
    result = console.pages.page(where, after, limit)
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "after" and v]
    next_url = None
    if result.next_cursor is not None:
        next_url = "/workflows?" + urllib.parse.urlencode(kept + [("after", result.next_cursor.encode())])
    form: dict[str, Any] = {key: request.query_params.get(key, "") for key in ("name", "queue", "executor", "since", "until", "prefix")}
    form["status"] = list(where.statuses)
    form["limit"] = str(limit)
    return page("workflows.html", console.context(
        rows=result.rows, statuses=STATUSES, form=form, next_url=next_url,
        first_url=("/workflows?" + urllib.parse.urlencode(kept)) if after is not None else None,
    ))


def _owner(executor_id: str | None, epoch: int | None) -> str:
    return f"{executor_id}@{epoch}" if executor_id and epoch is not None else (executor_id or "-")


def _history(row: WorkflowRow, takeovers: Sequence[TakeoverView]) -> list[dict[str, str]]:
    """The workflow's life as the database can tell it: created, dequeued, each takeover (from
    whom, to whom, by whom), and where it is now or how it finished."""
    first_owner = _owner(takeovers[0].from_executor_id, takeovers[0].from_epoch) if takeovers else _owner(row.executor_id, row.owner_epoch)
    events: list[tuple[int, str, str]] = []
    placed = f"enqueued on {row.queue_name}" if row.queue_name else "started"
    events.append((row.created_at or 0, f"created, {placed}", "-" if row.queue_name and not row.started_at_epoch_ms else first_owner))
    if row.started_at_epoch_ms:
        events.append((row.started_at_epoch_ms, "dequeued (PENDING)", first_owner))
    for t in takeovers:
        at = int(t.at.timestamp() * 1000)
        lost = f"taken over from {_owner(t.from_executor_id, t.from_epoch)} by {t.by_executor_id}"
        if t.leader_term is not None:
            lost += f" (leader term {t.leader_term})"
        if t.silent_sec is not None:
            lost += f", its owner silent for {t.silent_sec:.1f}s"
        to = _owner(t.to_executor_id, t.to_epoch) if t.to_executor_id else f"back to queue {t.requeued_to}"
        events.append((at, lost, to))
    if row.completed_at:
        events.append((row.completed_at, f"finished {row.status}", _owner(row.executor_id, row.owner_epoch)))
    else:
        events.append((row.updated_at or 0, f"now {row.status} (last update)", _owner(row.executor_id, row.owner_epoch)))
    events.sort(key=lambda e: e[0])
    return [{"at": ms_time(at), "what": what, "owner": owner} for at, what, owner in events]


def _steps(console: Console, workflow_id: str, rows: Sequence[StepRow]) -> list[dict[str, Any]]:
    """Each step with its outcome, duration, attempts (from the attempt ledger, when it is on)
    and its place on the workflow's timeline (percent offset and width)."""
    attempts: dict[int, int] = {}
    for attempt in console.db.attempts.list_for(workflow_id):
        attempts[attempt.function_id] = attempts.get(attempt.function_id, 0) + 1
    starts = [r.started_at_epoch_ms for r in rows if r.started_at_epoch_ms is not None]
    ends = [r.completed_at_epoch_ms or r.started_at_epoch_ms for r in rows if r.started_at_epoch_ms is not None]
    origin, span = (min(starts), max(max(ends) - min(starts), 1)) if starts else (0, 1)
    steps = []
    for r in rows:
        start, end = r.started_at_epoch_ms, r.completed_at_epoch_ms
        known = start is not None and end is not None
        steps.append({
            "function_id": r.function_id, "function_name": r.function_name, "child_workflow_id": r.child_workflow_id,
            "started_at_epoch_ms": start,
            "duration": f"{end - start} ms" if start is not None and end is not None else "-",
            "offset_pct": round(100 * ((start or origin) - origin) / span, 1),
            "width_pct": max(round(100 * ((end or start or origin) - (start or origin)) / span, 1), 0.5) if known else 0.5,
            "attempts": attempts.get(r.function_id, "-"),
            "output": decoded(r.output, r.serialization, hide=console.hide_values),
            "error": decoded_error(r.error, r.serialization, hide=console.hide_values),
        })
    return steps


def workflow_detail(request: Request) -> Response:
    """GET /workflows/{id}: everything the database recorded about one workflow."""
    console = console_of(request)
    workflow_id = request.path_params["workflow_id"]
    row = console.db.workflows.status(workflow_id)
    if row is None:
        return error_page(f"no workflow {workflow_id!r}", 404)
    hide, fmt = console.hide_values, row.serialization
    events = [{"key": key, "value": decoded(v.value, v.serialization, hide=hide)} for key, v in sorted(console.db.events.all(workflow_id).items())]
    streams = [{**vars(s), "value": decoded(s.value, s.serialization, hide=hide)} for s in console.reads.streams(workflow_id)]
    messages = [{**vars(m), "message": decoded(m.message, m.serialization, hide=hide)} for m in console.reads.messages(workflow_id)]
    return page("workflow.html", console.context(
        w=row,
        input=decoded_input(row.inputs, fmt, hide=hide),
        output=decoded(row.output, fmt, hide=hide),
        error=decoded_error(row.error, fmt, hide=hide),
        history=_history(row, console.reads.workflow_takeovers(workflow_id)),
        steps=_steps(console, workflow_id, console.db.steps.list_recorded(workflow_id)),
        events=events, streams=streams, messages=messages,
        can_cancel=row.status not in FINISHED and row.status != "CANCELLED",
        can_resume=row.status in RESUMABLE,
    ))
