"""``pgfleet workflow list|get|steps|cancel|resume``: inspect and steer workflows."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from runtime.client import DBOSClient
from runtime.errors import DBOSException
from runtime.serialization import deserialize, deserialize_args, deserialize_exception
from runtime.status import status_from_row
from runtime.workflows_admin import list_workflows
from sysdb import SystemDatabase
from sysdb.steps import StepRow
from sysdb.workflow_rows import WorkflowRow

from .database import _open_db
from .errors import EXIT_OK, EXIT_USAGE, CliError
from .output import _describe_exception, _emit, _ms_time, _short, _table

# Statuses from which ``workflow resume`` sends a workflow back to work.
_RESUMABLE = ("CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
_STATUSES = ("PENDING", "ENQUEUED", "DELAYED", "SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


def _decode(field: str, raw: str | None, decode: Callable[[str], Any], errors: dict[str, str]) -> Any:
    """``decode(raw)``; when it fails (say, a class this process cannot import), the raw text."""
    if raw is None:
        return None
    try:
        return decode(raw)
    except Exception as exc:
        errors[field] = _describe_exception(exc.__cause__ or exc)
        return raw


def _workflow_dict(row: WorkflowRow, *, raw: bool) -> dict[str, Any]:
    status = status_from_row(row, load_input=False, load_output=False)
    info = {f.name: getattr(status, f.name) for f in dataclasses.fields(status)}
    fmt = row.serialization
    info["serialization"] = fmt
    errors: dict[str, str] = {}
    if raw:
        info["input"], info["output"], info["error"] = row.inputs, row.output, row.error
    else:

        def inputs(text: str) -> dict[str, Any]:
            args, kwargs = deserialize_args(text, fmt)
            return {"args": list(args), "kwargs": kwargs}

        info["input"] = _decode("input", row.inputs, inputs, errors)
        info["output"] = _decode("output", row.output, lambda text: deserialize(text, fmt), errors)
        info["error"] = _decode("error", row.error, lambda text: _describe_exception(deserialize_exception(text, fmt)), errors)
    if errors:
        info["undecoded"] = errors  # these fields hold the stored text as is
    return info


def _step_dict(row: StepRow, *, raw: bool) -> dict[str, Any]:
    fmt = row.serialization
    errors: dict[str, str] = {}
    info: dict[str, Any] = {
        "function_id": row.function_id,
        "function_name": row.function_name,
        "output": row.output,
        "error": row.error,
        "child_workflow_id": row.child_workflow_id,
        "started_at_epoch_ms": row.started_at_epoch_ms,
        "completed_at_epoch_ms": row.completed_at_epoch_ms,
    }
    if not raw:
        info["output"] = _decode("output", row.output, lambda text: deserialize(text, fmt), errors)
        info["error"] = _decode("error", row.error, lambda text: _describe_exception(deserialize_exception(text, fmt)), errors)
    if errors:
        info["undecoded"] = errors
    return info


def _csv(values: Sequence[str] | None, *, upper: bool = False) -> list[str] | None:
    if not values:
        return None
    items = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return [v.upper() for v in items] if upper else items


def _workflow_list(args: argparse.Namespace) -> int:
    statuses = _csv(args.status, upper=True)
    unknown = sorted(set(statuses or ()) - set(_STATUSES))
    if unknown:
        raise CliError(f"unknown status {', '.join(unknown)} (one of {', '.join(_STATUSES)})", EXIT_USAGE)
    filters = {
        "status": statuses,
        "name": _csv(args.name),
        "queue_name": _csv(args.queue),
        "executor_id": _csv(args.executor),
        "app_version": _csv(args.app_version),
        "user": _csv(args.user),
    }
    with _open_db(args) as db:
        workflows = list_workflows(
            db,
            start_time=args.start_time,
            end_time=args.end_time,
            workflow_id_prefix=args.prefix,
            queues_only=args.queued,
            limit=args.limit or None,
            offset=args.offset or None,
            sort_desc=not args.oldest_first,
            load_input=False,
            load_output=False,
            **filters,
        )
    rows = []
    for w in workflows:
        info = {f.name: getattr(w, f.name) for f in dataclasses.fields(w) if f.name not in ("input", "output", "error")}
        rows.append(info)
    if args.json:
        _emit(args, rows, None)
        return EXIT_OK
    if not rows:
        print("(no workflows match)")
        return EXIT_OK
    print(
        _table(
            ["WORKFLOW_ID", "STATUS", "NAME", "QUEUE", "EXECUTOR", "CREATED", "UPDATED"],
            [
                [r["workflow_id"], r["status"], r["name"], r["queue_name"], r["executor_id"], _ms_time(r["created_at"]), _ms_time(r["updated_at"])]
                for r in rows
            ],
        )
    )
    if args.limit and len(rows) == args.limit:
        print(f"(the first {args.limit}; --limit N for more, --limit 0 for all)")
    return EXIT_OK


_GET_ALWAYS = ("workflow_id", "status", "name", "executor_id", "queue_name", "created_at", "updated_at", "output", "error")
_MS_FIELDS = ("created_at", "updated_at", "dequeued_at", "completed_at", "workflow_deadline_epoch_ms", "delay_until_epoch_ms")


def _not_found(workflow_id: str) -> CliError:
    return CliError(f"workflow {workflow_id!r} not found")


def _workflow_get(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        row = db.workflows.status(args.workflow_id)
    if row is None:
        raise _not_found(args.workflow_id)
    info = _workflow_dict(row, raw=args.raw)
    if args.json:
        _emit(args, info, None)
        return EXIT_OK
    lines = []
    for key, value in info.items():
        if key == "undecoded" or (key not in _GET_ALWAYS and (value is None or value is False or value == "")):
            continue
        if key in _MS_FIELDS:
            text = _ms_time(value) if value is not None else "-"
        elif key == "input" and isinstance(value, dict) and not args.raw and "input" not in info.get("undecoded", {}):
            text = ", ".join([repr(a) for a in value["args"]] + [f"{k}={v!r}" for k, v in value["kwargs"].items()]) or "(none)"
        elif value is None:
            text = "-"
        elif key in ("output",) and not args.raw and "output" not in info.get("undecoded", {}):
            text = repr(value)
        else:
            text = str(value)
        if key in info.get("undecoded", {}):
            text += f"   (stored text; not decodable here: {info['undecoded'][key]})"
        lines.append(f"{key + ':':<28}{text}")
    print("\n".join(lines))
    return EXIT_OK


def _workflow_steps(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        rows = db.steps.list_recorded(args.workflow_id)
        if not rows and db.workflows.status(args.workflow_id) is None:
            raise _not_found(args.workflow_id)
    steps = [_step_dict(r, raw=args.raw) for r in rows]
    if args.json:
        _emit(args, steps, None)
        return EXIT_OK
    if not steps:
        print("(no steps recorded)")
        return EXIT_OK

    def outcome(step: Mapping[str, Any]) -> str:
        if step["error"] is not None:
            return "error: " + _short(step["error"] if isinstance(step["error"], str) else repr(step["error"]))
        if step["output"] is None and step["child_workflow_id"]:
            return ""
        undecoded = "output" in step.get("undecoded", {}) or args.raw
        return _short(step["output"] if undecoded else repr(step["output"]))

    def duration(step: Mapping[str, Any]) -> str:
        start, end = step["started_at_epoch_ms"], step["completed_at_epoch_ms"]
        return f"{end - start} ms" if start is not None and end is not None else "-"

    print(
        _table(
            ["ID", "NAME", "OUTPUT", "CHILD", "DURATION"],
            [[s["function_id"], s["function_name"], outcome(s), s["child_workflow_id"], duration(s)] for s in steps],
        )
    )
    return EXIT_OK


@contextlib.contextmanager
def _client(db: SystemDatabase) -> Iterator[Any]:
    try:
        client = DBOSClient(system_database_url=db.url, system_database_pool_size=1, application_name="pgfleet-cli")
    except DBOSException as exc:
        raise CliError(str(exc)) from None
    try:
        yield client
    except DBOSException as exc:
        raise CliError(str(exc)) from None
    finally:
        client.destroy()


def _workflow_cancel(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        before = db.workflows.status(args.workflow_id)
        if before is None:
            raise _not_found(args.workflow_id)
        with _client(db) as client:
            client.cancel_workflow(args.workflow_id)
        after = db.workflows.status(args.workflow_id)
    status = after.status if after else None
    changed = before.status != status and status == "CANCELLED"
    payload = {"workflow_id": args.workflow_id, "previous_status": before.status, "status": status, "cancelled": changed}
    if changed:
        text = f"cancelled workflow {args.workflow_id!r} (was {before.status})"
    else:
        text = f"workflow {args.workflow_id!r} is {status}: nothing to cancel"
    _emit(args, payload, text)
    return EXIT_OK


def _workflow_resume(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        before = db.workflows.status(args.workflow_id)
        if before is None:
            raise _not_found(args.workflow_id)
        if before.status in _RESUMABLE:
            with _client(db) as client:
                client.resume_workflow(args.workflow_id)
        after = db.workflows.status(args.workflow_id)
    status = after.status if after else None
    changed = before.status in _RESUMABLE and status not in _RESUMABLE
    payload = {
        "workflow_id": args.workflow_id,
        "previous_status": before.status,
        "status": status,
        "queue_name": after.queue_name if after else None,
        "resumed": changed,
    }
    if changed:
        text = (
            f"resumed workflow {args.workflow_id!r} (was {before.status}): {status} on queue "
            f"{payload['queue_name']}; an executor serving it runs it from its first unfinished step"
        )
    elif before.status in _RESUMABLE:
        text = f"workflow {args.workflow_id!r} is {status}: it changed while being resumed"
    else:
        text = (
            f"workflow {args.workflow_id!r} is {status}: nothing to resume "
            f"(only {' and '.join(_RESUMABLE)} workflows are resumed)"
        )
    _emit(args, payload, text)
    return EXIT_OK
