"""The ``pgfleet`` command.

    pgfleet supervise [APP] [--workers N] [--name NODE] [--queues Q1,Q2] [--grace S]
                      [--metrics-port P] [--boot-deadline S] [--config FILE]   run a node's workers
    pgfleet status                                   members, the leader, queues, recent takeovers
    pgfleet workflow list|get|steps|cancel|resume    inspect and steer workflows
    pgfleet queue list                               queued and running work per queue
    pgfleet check [--config FILE]                    validate settings and reach the database
    pgfleet migrate [--database-url URL]             create and migrate the system database
    pgfleet db start|stop|status|url [--data-dir DIR]  the embedded Postgres of this host

Every command takes ``--json`` (one JSON document on stdout) and ``--help``.

Exit codes: 0 success; 1 the operation failed (database unreachable, workflow not found);
2 bad usage or configuration; 3 not running (``db status``, ``db url``).

Read commands (status, workflow, queue) find the system database in this order: ``--database-url``,
the ``--config`` file's ``system_database_url``, ``PGFLEET_SYSTEM_DATABASE_URL`` /
``DBOS_SYSTEM_DATABASE_URL``, else the embedded server in ``--data-dir`` if it is running
(they never start it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sysdb import (
    LATEST_VERSION,
    InvalidDatabaseUrlError,
    SystemDatabase,
    SystemDatabaseError,
    describe_url,
    resolve_system_database_url,
    validate_url,
)
from sysdb.embedded import DEFAULT_BASE_DIR, EmbeddedPostgres, EmbeddedPostgresError
from sysdb.statements import statement
from sysdb.urls import DEFAULT_DATABASE_NAME, URL_ENVIRONMENT_VARIABLES

from .settings import SettingsError, load_settings

__all__ = ["main", "build_parser", "build_supervisor_options", "supervisor_options_kwargs", "CliError"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3

DEFAULT_TIMEOUT_SEC = 10.0
DEFAULT_LIST_LIMIT = 50
# Statuses from which ``workflow resume`` sends a workflow back to work.
_RESUMABLE = ("CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
_STATUSES = ("PENDING", "ENQUEUED", "DELAYED", "SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


class CliError(Exception):
    """A failure to report in one line, with the exit code to return."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- output --------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """``value`` with every part JSON can hold kept and the rest made text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, BaseException):
        return _describe_exception(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def _emit(args: argparse.Namespace, payload: Any, text: str | None) -> None:
    if args.json:
        print(json.dumps(_jsonable(payload), default=str))
    elif text is not None:
        print(text)


def _describe_exception(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _ms_time(ms: Any) -> str:
    if ms is None:
        return "-"
    try:
        stamp = datetime.datetime.fromtimestamp(int(ms) / 1000, tz=datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ms)
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _dt_time(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S") + "Z"
    return "-" if value is None else str(value)


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


# -- finding and opening the system database -----------------------------------------------------


def _read_url(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str]:
    """The system database URL for a read command and where it came from. Never starts a server."""
    if args.database_url:
        return validate_url(args.database_url), "--database-url"
    data_dir = args.data_dir
    if getattr(args, "config", None):
        settings = load_settings(args.config, {}, environ)
        url = settings["worker_config"].get("system_database_url")
        if url:
            return url, settings["sources"]["system_database_url"]
        data_dir = data_dir or settings["worker_config"].get("embedded_data_dir")
    else:
        for name in URL_ENVIRONMENT_VARIABLES:
            if environ.get(name):
                return validate_url(environ[name]), f"environment variable {name}"
    server = EmbeddedPostgres(data_dir or DEFAULT_BASE_DIR)
    if server.status().running:
        return server.url(DEFAULT_DATABASE_NAME), f"the embedded server in {server.base_dir}"
    raise CliError(
        "no system database to read: pass --database-url, set PGFLEET_SYSTEM_DATABASE_URL, or start "
        f"the embedded server (pgfleet db start); the embedded server in {server.base_dir} is not running"
    )


@contextlib.contextmanager
def _open_db(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Iterator[SystemDatabase]:
    """A small pool on the system database, opened without migrating it."""
    url, source = _read_url(args, os.environ if environ is None else environ)
    timeout = float(args.timeout)
    db = SystemDatabase(
        url,
        pool_size=1,
        application_name="pgfleet-cli",
        connect_timeout_sec=max(2, int(timeout)),
        retry_timeout_sec=timeout,
    )
    try:
        db.connect().close()  # one attempt first: a refused connection fails now, not after retries
    except psycopg.OperationalError as exc:
        raise CliError(f"cannot reach the system database at {describe_url(url)} ({source}): {_first_line(exc)}") from None
    db.open(run_migrations=False)
    try:
        yield db
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedColumn) as exc:
        raise CliError(
            f"the database at {describe_url(url)} ({source}) does not have pgfleet's current system tables "
            f"({_first_line(exc)}); is it the system database? `pgfleet migrate` creates them"
        ) from None
    finally:
        db.close()


# -- pgfleet db / migrate ------------------------------------------------------------------------


def _db(args: argparse.Namespace) -> int:
    server = EmbeddedPostgres(args.data_dir)
    if args.action == "start":
        server.ensure_running()
        url = server.url(DEFAULT_DATABASE_NAME)
        _emit(args, {"running": True, "url": url}, f"embedded Postgres running: {url}")
    elif args.action == "stop":
        was_running = server.stop()
        _emit(args, {"stopped": was_running}, "stopped" if was_running else "was not running")
    elif args.action == "status":
        status = server.status()
        payload = dataclasses.asdict(status)
        if status.running:
            payload["url"] = server.url(DEFAULT_DATABASE_NAME)
        _emit(args, payload, f"running (pid {status.pid}, {payload['url']})" if status.running else "not running")
        return EXIT_OK if status.running else EXIT_NOT_RUNNING
    elif args.action == "url":
        status = server.status()
        if not status.running:
            if args.json:
                _emit(args, {"running": False, "url": None}, None)
            print("pgfleet: the embedded Postgres is not running (start it with: pgfleet db start)", file=sys.stderr)
            return EXIT_NOT_RUNNING
        _emit(args, {"url": server.url(DEFAULT_DATABASE_NAME)}, server.url(DEFAULT_DATABASE_NAME))
    return EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    url = resolve_system_database_url(args.database_url, args.data_dir)
    db = SystemDatabase(url, pool_size=1)
    db.open()
    db.close()
    _emit(args, {"migrated": True, "url": describe_url(url)}, f"system database at {describe_url(url)} is up to date")
    return EXIT_OK


# -- pgfleet status / queue list -----------------------------------------------------------------


def _node_slot(member: Mapping[str, Any]) -> tuple[str, str]:
    """A supervised worker's executor id is ``NODE-<slot>``; any other member is its host."""
    executor_id = str(member.get("executor_id") or "")
    if member.get("supervisor_id") and "-" in executor_id:
        node, slot = executor_id.rsplit("-", 1)
        if node and slot:
            return node, slot
    return str(member.get("host") or executor_id), "-"


_LIMIT_COLUMNS = ("concurrency", "worker_concurrency", "rate_limit_max", "rate_limit_period_sec", "priority_enabled", "partition_queue")


def _queues(counts: Sequence[Mapping[str, Any]], definitions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per queue: waiting and running counts, and its limits when ``dbos.queues`` records them
    (queues are declared in code, so ``limits`` is usually ``None``: unknown here)."""
    by_name: dict[str, dict[str, Any]] = {}
    for row in counts:
        by_name[row["queue_name"]] = {
            "queue_name": row["queue_name"],
            "enqueued": int(row["enqueued"]),
            "delayed": int(row["delayed"]),
            "running": int(row["running"]),
            "limits": None,
        }
    for row in definitions:
        entry = by_name.setdefault(
            row["name"], {"queue_name": row["name"], "enqueued": 0, "delayed": 0, "running": 0, "limits": None}
        )
        entry["limits"] = {key: row.get(key) for key in _LIMIT_COLUMNS}
    return [by_name[name] for name in sorted(by_name)]


def _limits_text(limits: Mapping[str, Any] | None) -> str:
    if limits is None:
        return "-"
    parts = []
    if limits.get("concurrency") is not None:
        parts.append(f"concurrency={limits['concurrency']}")
    if limits.get("worker_concurrency") is not None:
        parts.append(f"per-worker={limits['worker_concurrency']}")
    if limits.get("rate_limit_max") is not None:
        parts.append(f"rate={limits['rate_limit_max']}/{limits.get('rate_limit_period_sec') or '?'}s")
    if limits.get("priority_enabled"):
        parts.append("priority")
    if limits.get("partition_queue"):
        parts.append("partitioned")
    return " ".join(parts) or "none"


def _queues_table(queues: Sequence[Mapping[str, Any]]) -> str:
    if not queues:
        return "(no queued or running work)"
    return _table(
        ["QUEUE", "ENQUEUED", "DELAYED", "RUNNING", "LIMITS"],
        [[q["queue_name"], q["enqueued"], q["delayed"], q["running"], _limits_text(q["limits"])] for q in queues],
    )


def _read_queues(db: SystemDatabase) -> list[dict[str, Any]]:
    return _queues(db.execute("fleet_queue_counts"), db.execute("list_queue_definitions"))


def _status(args: argparse.Namespace) -> int:
    from .status import fleet_status

    with _open_db(args) as db:
        status = fleet_status(db, takeovers=args.takeovers)
        queues = _queues(status.queues, db.execute("list_queue_definitions"))
    members = []
    for member in status.members:
        node, slot = _node_slot(member)
        members.append({**member, "node": node, "slot": slot})
    payload = {
        "leader_term": status.leader_term,
        "leader": status.leader,
        "members": members,
        "queues": queues,
        "recent_takeovers": status.recent_takeovers,
        "supervisors": status.supervisors,
    }
    if args.json:
        _emit(args, payload, None)
        return EXIT_OK

    leader = status.leader
    if leader and leader["valid"]:
        lines = [f"leader: term {leader['term']}, executor {leader['executor_id']} (epoch {leader['executor_epoch']})"]
    elif leader:
        lines = [f"leader: none (the lease of term {leader['term']} held by {leader['executor_id']} expired at {_dt_time(leader['expires_at'])})"]
    else:
        lines = ["leader: none (no leader has been elected yet)"]
    active = sum(1 for m in members if m["status"] == "active")
    lines += ["", f"members: {len(members)} ({active} active)"]
    if members:
        lines.append(
            _table(
                ["NODE", "SLOT", "EXECUTOR", "PID", "HOST", "STATUS", "HEARTBEAT", "EPOCH", "LEADER", "RUNNING"],
                [
                    [
                        m["node"], m["slot"], m["executor_id"], m["pid"], m["host"], m["status"],
                        f"{m['heartbeat_age_sec']:.1f}s ago" if m.get("heartbeat_age_sec") is not None else "-",
                        m["epoch"], "*" if m["is_leader"] else "", m["running_workflows"],
                    ]
                    for m in members
                ],
            )
        )
    if status.supervisors:
        lines += ["", f"supervisors: {len(status.supervisors)}", _table(
            ["SUPERVISOR", "PID", "STATE", "LAST SEEN", "SLOTS"],
            [
                [
                    s["supervisor_id"], s["pid"], s["state"], f"{s['last_seen_age_sec']:.1f}s ago",
                    " ".join(f"{slot['slot']}:{slot['state']}" + (f"(restarts {slot['restarts']}, last {slot['last_exit']})" if slot["restarts"] else "")
                             for slot in s["slots"]),
                ]
                for s in status.supervisors
            ],
        )]
    lines += ["", "queues:", _queues_table(queues)]
    lines += ["", f"recent takeovers: {len(status.recent_takeovers)}"]
    if status.recent_takeovers:
        lines.append(
            _table(
                ["AT", "WORKFLOW", "FROM", "TO", "BY", "TERM"],
                [
                    [
                        _dt_time(t["at"]), t["workflow_uuid"], f"{t['from_executor_id']}@{t['from_epoch']}",
                        f"{t['to_executor_id']}@{t['to_epoch']}" if t["to_executor_id"] else f"queue {t['requeued_to']}",
                        t["by_executor_id"], t["leader_term"],
                    ]
                    for t in status.recent_takeovers
                ],
            )
        )
    print("\n".join(lines))
    return EXIT_OK


def _queue_list(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        queues = _read_queues(db)
    _emit(
        args,
        queues,
        _queues_table(queues) + ("\n(limits are declared in code; shown only when recorded in dbos.queues)" if queues else ""),
    )
    return EXIT_OK


# -- pgfleet workflow ... ------------------------------------------------------------------------


def _decode(field: str, raw: Any, decode: Any, errors: dict[str, str]) -> Any:
    """``decode()``; when it fails (say, a class this process cannot import), the raw text."""
    if raw is None:
        return None
    try:
        return decode()
    except Exception as exc:
        errors[field] = _describe_exception(exc.__cause__ or exc)
        return raw


def _workflow_dict(row: Mapping[str, Any], *, raw: bool) -> dict[str, Any]:
    from runtime.serialization import deserialize, deserialize_args, deserialize_exception
    from runtime.status import status_from_row

    status = status_from_row(dict(row), load_input=False, load_output=False)
    info = {f.name: getattr(status, f.name) for f in dataclasses.fields(status)}
    fmt = row.get("serialization")
    info["serialization"] = fmt
    errors: dict[str, str] = {}
    if raw:
        info["input"], info["output"], info["error"] = row.get("inputs"), row.get("output"), row.get("error")
    else:

        def inputs() -> dict[str, Any]:
            args, kwargs = deserialize_args(row["inputs"], fmt)
            return {"args": list(args), "kwargs": kwargs}

        info["input"] = _decode("input", row.get("inputs"), inputs, errors)
        info["output"] = _decode("output", row.get("output"), lambda: deserialize(row["output"], fmt), errors)
        info["error"] = _decode("error", row.get("error"), lambda: _describe_exception(deserialize_exception(row["error"], fmt)), errors)
    if errors:
        info["undecoded"] = errors  # these fields hold the stored text as is
    return info


def _step_dict(row: Mapping[str, Any], *, raw: bool) -> dict[str, Any]:
    from runtime.serialization import deserialize, deserialize_exception

    fmt = row.get("serialization")
    errors: dict[str, str] = {}
    info = {
        "function_id": row["function_id"],
        "function_name": row["function_name"],
        "output": row.get("output"),
        "error": row.get("error"),
        "child_workflow_id": row.get("child_workflow_id"),
        "started_at_epoch_ms": row.get("started_at_epoch_ms"),
        "completed_at_epoch_ms": row.get("completed_at_epoch_ms"),
    }
    if not raw:
        info["output"] = _decode("output", row.get("output"), lambda: deserialize(row["output"], fmt), errors)
        info["error"] = _decode("error", row.get("error"), lambda: _describe_exception(deserialize_exception(row["error"], fmt)), errors)
    if errors:
        info["undecoded"] = errors
    return info


def _csv(values: Sequence[str] | None, *, upper: bool = False) -> list[str] | None:
    if not values:
        return None
    items = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return [v.upper() for v in items] if upper else items


def _workflow_list(args: argparse.Namespace) -> int:
    from runtime.workflows_admin import list_workflows

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
        row = db.get_workflow_status(args.workflow_id)
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
        rows = db.list_workflow_steps(args.workflow_id)
        if not rows and db.get_workflow_status(args.workflow_id) is None:
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
    from runtime.client import DBOSClient
    from runtime.errors import DBOSException

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
        before = db.get_workflow_status(args.workflow_id)
        if before is None:
            raise _not_found(args.workflow_id)
        with _client(db) as client:
            client.cancel_workflow(args.workflow_id)
        after = db.get_workflow_status(args.workflow_id)
    status = after["status"] if after else None
    changed = before["status"] != status and status == "CANCELLED"
    payload = {"workflow_id": args.workflow_id, "previous_status": before["status"], "status": status, "cancelled": changed}
    if changed:
        text = f"cancelled workflow {args.workflow_id!r} (was {before['status']})"
    else:
        text = f"workflow {args.workflow_id!r} is {status}: nothing to cancel"
    _emit(args, payload, text)
    return EXIT_OK


def _workflow_resume(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        before = db.get_workflow_status(args.workflow_id)
        if before is None:
            raise _not_found(args.workflow_id)
        if before["status"] in _RESUMABLE:
            with _client(db) as client:
                client.resume_workflow(args.workflow_id)
        after = db.get_workflow_status(args.workflow_id)
    status = after["status"] if after else None
    changed = before["status"] in _RESUMABLE and status not in _RESUMABLE
    payload = {
        "workflow_id": args.workflow_id,
        "previous_status": before["status"],
        "status": status,
        "queue_name": after.get("queue_name") if after else None,
        "resumed": changed,
    }
    if changed:
        text = (
            f"resumed workflow {args.workflow_id!r} (was {before['status']}): {status} on queue "
            f"{payload['queue_name']}; an executor serving it runs it from its first unfinished step"
        )
    elif before["status"] in _RESUMABLE:
        text = f"workflow {args.workflow_id!r} is {status}: it changed while being resumed"
    else:
        text = (
            f"workflow {args.workflow_id!r} is {status}: nothing to resume "
            f"(only {' and '.join(_RESUMABLE)} workflows are resumed)"
        )
    _emit(args, payload, text)
    return EXIT_OK


# -- pgfleet check -------------------------------------------------------------------------------


def _masked(worker_config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: describe_url(value) if key.endswith("database_url") and isinstance(value, str) else value
        for key, value in worker_config.items()
    }


def _probe(url: str, timeout: float) -> dict[str, Any]:
    """Connect once, ``SELECT 1``, and read the schema version; never migrates."""
    db = SystemDatabase(url, pool_size=1, application_name="pgfleet-check", connect_timeout_sec=max(2, int(timeout)))
    started = time.monotonic()
    try:
        with db.connect() as conn:
            conn.execute(statement("ping")).fetchone()
            latency_ms = round((time.monotonic() - started) * 1000, 1)
            present = conn.execute(statement("schema_migrations_present")).fetchone()["present"]
            version = conn.execute(statement("schema_version")).fetchone()["version"] if present else 0
            server_version = conn.info.server_version
    except psycopg.OperationalError as exc:
        missing = _database_missing(url, timeout)
        if missing:
            return {"reachable": True, "database_exists": False, "schema_version": 0, "latest_schema_version": LATEST_VERSION}
        return {"reachable": False, "error": _first_line(exc)}
    return {
        "reachable": True,
        "database_exists": True,
        "latency_ms": latency_ms,
        "server_version": server_version,
        "schema_version": int(version),
        "latest_schema_version": LATEST_VERSION,
    }


def _database_missing(url: str, timeout: float) -> bool:
    """True when the server answers but has no database of that name (launch creates it)."""
    dbname = conninfo_to_dict(url).get("dbname")
    if not dbname or dbname == "postgres":
        return False
    admin = SystemDatabase(make_conninfo(url, dbname="postgres"), pool_size=1, connect_timeout_sec=max(2, int(timeout)))
    try:
        with admin.connect() as conn:
            return not conn.execute(statement("database_exists"), {"dbname": dbname}).fetchone()["present"]
    except psycopg.Error:
        return False


def _check(args: argparse.Namespace) -> int:
    result: dict[str, Any] = {"ok": False, "config": {"ok": False, "file": args.config}, "database": None}
    try:
        settings = load_settings(args.config, {"system_database_url": args.database_url, "embedded_data_dir": args.data_dir}, os.environ)
    except SettingsError as exc:
        result["config"]["error"] = str(exc)
        _emit(args, result, None)
        print(f"pgfleet: bad config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    worker_config = settings["worker_config"]
    result["config"] = {
        "ok": True,
        "file": settings["config_file"],
        "settings": {k: settings[k] for k in ("app", "workers", "name", "queues", "grace", "metrics_port", "boot_deadline")},
        "worker_config": _masked(worker_config),
        "sources": settings["sources"],
    }
    lines = [f"config: ok ({settings['config_file'] or 'no config file'})"]
    for key in ("app", "workers", "name", "queues", "grace", "metrics_port", "boot_deadline"):
        value = settings[key]
        shown = "all declared" if key == "queues" and value is None else ",".join(value) if key == "queues" else value
        lines.append(f"  {key:<22}{_cell(shown):<30}  ({settings['sources'].get(key, 'default')})")
    for key, value in _masked(worker_config).items():
        lines.append(f"  {key:<22}{_cell(value):<30}  ({settings['sources'].get(key, '?')})")

    url = worker_config.get("system_database_url")
    database: dict[str, Any]
    if url:
        database = {"url": describe_url(url), "source": settings["sources"].get("system_database_url"), "embedded": False}
    else:
        server = EmbeddedPostgres(worker_config.get("embedded_data_dir") or DEFAULT_BASE_DIR)
        running = server.status().running
        database = {"embedded": True, "data_dir": str(server.base_dir), "running": running, "url": None}
        if running:
            url = server.url(DEFAULT_DATABASE_NAME)
            database["url"] = describe_url(url)
    exit_code = EXIT_OK
    if url:
        database.update(_probe(url, float(args.timeout)))
        where = database["url"] + (" (the embedded server)" if database["embedded"] else f" (from {database['source']})")
        if not database["reachable"]:
            lines.append(f"database: UNREACHABLE: {where}: {database['error']}")
            exit_code = EXIT_FAILED
        elif not database["database_exists"]:
            lines.append(f"database: ok: {where}; the database does not exist yet (the first worker or `pgfleet migrate` creates it)")
        elif database["schema_version"] > LATEST_VERSION:
            database["error"] = (
                f"the schema is at version {database['schema_version']}, newer than this pgfleet knows "
                f"({LATEST_VERSION}): upgrade pgfleet"
            )
            lines.append(f"database: TOO NEW: {where}: {database['error']}")
            exit_code = EXIT_FAILED
        else:
            version = database["schema_version"]
            schema = (
                f"schema version {version} (up to date)" if version == LATEST_VERSION
                else f"schema version {version} of {LATEST_VERSION} (workers migrate it at launch, or run `pgfleet migrate`)"
            )
            lines.append(f"database: ok: {where}, {database['latency_ms']} ms, {schema}")
    else:
        lines.append(
            f"database: no URL configured: the embedded server in {database['data_dir']} would be used; "
            "it is not running (workers start it at launch, or run `pgfleet db start`)"
        )
    result["database"] = database
    result["ok"] = exit_code == EXIT_OK
    _emit(args, result, "\n".join(lines))
    return exit_code


# -- pgfleet supervise ---------------------------------------------------------------------------


def supervisor_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """``load_settings`` with ``supervise``'s flags on top."""
    flags = {
        "app": args.app,
        "workers": args.workers,
        "name": args.name,
        "queues": args.queues,
        "grace": args.grace,
        "metrics_port": args.metrics_port,
        "boot_deadline": args.boot_deadline,
        "system_database_url": args.database_url,
        "embedded_data_dir": args.data_dir,
        "log_level": args.log_level,
    }
    return load_settings(args.config, flags, environ)


def supervisor_options_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``cluster.supervisor.SupervisorOptions`` for these settings."""
    if not settings.get("app"):
        raise SettingsError("nothing to supervise: pass APP or set 'app' in the config file (or PGFLEET_APP)")
    return {
        "app": settings["app"],
        "workers": settings["workers"],
        "name": settings["name"],
        "queues": settings["queues"],
        "grace_sec": float(settings["grace"]),
        "metrics_port": settings["metrics_port"],
        "worker_config": dict(settings["worker_config"]),
        "boot_deadline_sec": float(settings["boot_deadline"]),
    }


def build_supervisor_options(args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """``SupervisorOptions`` from flags > config file > environment. Raises ``SettingsError``."""
    kwargs = supervisor_options_kwargs(supervisor_settings(args, environ))
    try:
        from .supervisor import SupervisorOptions
    except ImportError as exc:
        raise CliError(f"the supervisor is not available in this installation: {exc}") from None
    return SupervisorOptions(**kwargs)


def _supervise(args: argparse.Namespace) -> int:
    options = build_supervisor_options(args, os.environ)
    from .supervisor import run_supervisor

    return int(run_supervisor(options))


# -- the parser ----------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _iso_time(text: str) -> str:
    try:
        datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2025-01-31T12:00:00+00:00)") from None
    return text


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _add_json(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a --json given before the subcommand is not reset by the subcommand's default.
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document on stdout")


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, metavar="URL", help="the system database (default: --config, then PGFLEET_SYSTEM_DATABASE_URL / DBOS_SYSTEM_DATABASE_URL, then the running embedded server)")
    parser.add_argument("--config", default=None, metavar="FILE", help="take system_database_url / embedded_data_dir from this TOML file")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help=f"the embedded server's directory when no URL is given (default: ./{DEFAULT_BASE_DIR})")
    parser.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT_SEC, metavar="SEC", help=f"give up on the database after this long (default: {DEFAULT_TIMEOUT_SEC:g})")
    _add_json(parser)


def _subparser(commands: Any, name: str, summary: str, description: str | None = None) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=summary, description=description or summary, formatter_class=_Formatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgfleet",
        description="pgfleet: durable Python workflows run by a fleet of executors sharing one PostgreSQL",
        epilog="exit codes: 0 ok, 1 operation failed, 2 bad usage or config, 3 not running (db status/url)",
        formatter_class=_Formatter,
    )
    parser.add_argument("--json", action="store_true", default=False, help="print one JSON document on stdout")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # supervise
    supervise = _subparser(
        commands, "supervise", "run and watch a node's worker processes",
        "Run N worker processes of APP on this node and restart them when they die. Worker slots are\n"
        "executors NODE-0..NODE-<N-1>. Settings: flags > --config FILE (TOML) > PGFLEET_* environment.",
    )
    supervise.add_argument("app", nargs="?", default=None, metavar="APP", help="the program to run (or 'app' in the config file)")
    supervise.add_argument("--workers", type=int, default=None, metavar="N", help="worker processes (default 1)")
    supervise.add_argument("--name", default=None, metavar="NODE", help="the node name; executor ids are NODE-<slot> (default: host name)")
    supervise.add_argument("--queues", action="append", default=None, metavar="Q1,Q2", help="serve only these queues (comma-separated, repeatable; default: every declared queue)")
    supervise.add_argument("--grace", type=float, default=None, metavar="SEC", help="how long stopping workers get to finish (default 30)")
    supervise.add_argument("--metrics-port", type=int, default=None, metavar="PORT", help="serve Prometheus metrics on this port")
    supervise.add_argument("--boot-deadline", type=float, default=None, metavar="SEC", help="how long a worker gets to launch (default 30)")
    supervise.add_argument("--config", default=None, metavar="FILE", help="a TOML file of settings (flags override it; it overrides the environment)")
    supervise.add_argument("--database-url", default=None, metavar="URL", help="the system database for every worker")
    supervise.add_argument("--data-dir", default=None, metavar="DIR", help="the embedded server's directory when no URL is configured")
    supervise.add_argument("--log-level", default=None, metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    _add_json(supervise)
    supervise.set_defaults(handler=_supervise)

    # status
    status = _subparser(
        commands, "status", "members, the leader, queues and recent takeovers",
        "Show the fleet: every member (node, slot, pid, heartbeat age, epoch, leader mark, running\n"
        "workflows), the leader's term, per-queue counts and the latest takeovers.",
    )
    _add_read_options(status)
    status.add_argument("--takeovers", type=_non_negative_int, default=20, metavar="N", help="how many recent takeovers to show (default 20)")
    status.set_defaults(handler=_status)

    # workflow ...
    workflow = _subparser(commands, "workflow", "list, inspect, cancel and resume workflows")
    actions = workflow.add_subparsers(dest="action", required=True, metavar="ACTION")
    wf_list = _subparser(
        actions, "list", "list workflows, newest first",
        "List workflows, newest first, filtered. Rows carry no inputs or outputs (`workflow get` shows them).",
    )
    wf_list.add_argument("--status", action="append", metavar="S1,S2", help=f"only these statuses ({', '.join(_STATUSES)})")
    wf_list.add_argument("--name", action="append", metavar="NAME", help="only workflows of these names")
    wf_list.add_argument("--queue", action="append", metavar="QUEUE", help="only workflows on these queues")
    wf_list.add_argument("--executor", action="append", metavar="ID", help="only workflows owned by these executors")
    wf_list.add_argument("--app-version", action="append", metavar="VERSION", help="only these application versions")
    wf_list.add_argument("--user", action="append", metavar="USER", help="only workflows of these authenticated users")
    wf_list.add_argument("--prefix", default=None, metavar="TEXT", help="only workflow ids starting with TEXT")
    wf_list.add_argument("--queued", action="store_true", help="only workflows waiting or running on a queue")
    wf_list.add_argument("--start-time", type=_iso_time, default=None, metavar="ISO", help="created at or after")
    wf_list.add_argument("--end-time", type=_iso_time, default=None, metavar="ISO", help="created at or before")
    wf_list.add_argument("--limit", type=_non_negative_int, default=DEFAULT_LIST_LIMIT, metavar="N", help=f"at most N (default {DEFAULT_LIST_LIMIT}; 0 for all)")
    wf_list.add_argument("--offset", type=_non_negative_int, default=0, metavar="N", help="skip the first N")
    wf_list.add_argument("--oldest-first", action="store_true", help="oldest first instead of newest first")
    _add_read_options(wf_list)
    wf_list.set_defaults(handler=_workflow_list)

    for name, summary, handler in (
        ("get", "one workflow's status, inputs and outcome", _workflow_get),
        ("steps", "one workflow's recorded steps", _workflow_steps),
    ):
        sub = _subparser(actions, name, summary)
        sub.add_argument("workflow_id", metavar="WORKFLOW_ID")
        sub.add_argument("--raw", action="store_true", help="show stored values as stored (base64 pickles), without decoding them")
        _add_read_options(sub)
        sub.set_defaults(handler=handler)

    cancel = _subparser(
        actions, "cancel", "cancel a workflow that has not finished",
        "Mark a workflow CANCELLED unless it has finished; its owner stops at its next checkpoint.",
    )
    cancel.add_argument("workflow_id", metavar="WORKFLOW_ID")
    _add_read_options(cancel)
    cancel.set_defaults(handler=_workflow_cancel)

    resume = _subparser(
        actions, "resume", "send a cancelled or dead-lettered workflow back to work",
        "Put a CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow on the internal queue; any executor\n"
        "runs it from its first unfinished step. Needs no running executor to succeed.",
    )
    resume.add_argument("workflow_id", metavar="WORKFLOW_ID")
    _add_read_options(resume)
    resume.set_defaults(handler=_workflow_resume)

    # queue list
    queue = _subparser(commands, "queue", "queues and their work")
    queue_actions = queue.add_subparsers(dest="action", required=True, metavar="ACTION")
    queue_list = _subparser(
        queue_actions, "list", "enqueued, delayed and running workflows per queue",
        "Per queue: workflows waiting (ENQUEUED, DELAYED) and running (PENDING). Queue limits are\n"
        "declared in code; they are shown only when dbos.queues records them.",
    )
    _add_read_options(queue_list)
    queue_list.set_defaults(handler=_queue_list)

    # check
    check = _subparser(
        commands, "check", "validate the settings and reach the database, starting nothing",
        "Validate the supervisor's settings (flags > --config FILE > environment) and connect once to\n"
        "the system database (SELECT 1; no migration). With no URL anywhere, report whether the\n"
        "embedded server that would be used is running.\n\n"
        "exit codes: 0 ok, 1 database unreachable, 2 bad config",
    )
    check.add_argument("--config", default=None, metavar="FILE", help="the TOML settings file to validate")
    check.add_argument("--database-url", default=None, metavar="URL", help="the system database (overrides the file and the environment)")
    check.add_argument("--data-dir", default=None, metavar="DIR", help="the embedded server's directory when no URL is configured")
    check.add_argument("--timeout", type=_positive_float, default=5.0, metavar="SEC", help="connect timeout (default 5)")
    _add_json(check)
    check.set_defaults(handler=_check)

    # migrate
    migrate = _subparser(
        commands, "migrate", "create and migrate the system database",
        "Create the system database if needed and apply pgfleet's migrations. With no URL, the\n"
        "embedded server is started.",
    )
    migrate.add_argument("--database-url", default=None, metavar="URL", help="system database URL (default: environment, else embedded)")
    migrate.add_argument("--data-dir", default=None, metavar="DIR", help="embedded server directory when no URL is given")
    _add_json(migrate)
    migrate.set_defaults(handler=_migrate)

    # db
    db = _subparser(
        commands, "db", "manage the embedded Postgres of this host",
        "start: start it (or find it running); stop: stop it (data stays); status: exit 0 if running,\n"
        "3 if not; url: print its URL (exit 3 if not running).",
    )
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    db.add_argument("--data-dir", default=str(DEFAULT_BASE_DIR), metavar="DIR", help="where the embedded server lives (default: ./.pgfleet)")
    _add_json(db)
    db.set_defaults(handler=_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pgfleet`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)

    def fail(message: str, code: int) -> int:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": message, "exit_code": code}))
        print(f"pgfleet: {message}", file=sys.stderr)
        return code

    try:
        return int(args.handler(args))
    except CliError as exc:
        return fail(str(exc), exc.exit_code)
    except SettingsError as exc:
        return fail(f"bad config: {exc}", EXIT_USAGE)
    except InvalidDatabaseUrlError as exc:
        return fail(str(exc), EXIT_USAGE)
    except (SystemDatabaseError, EmbeddedPostgresError) as exc:
        return fail(str(exc), EXIT_FAILED)
    except psycopg.Error as exc:
        return fail(f"database error: {_first_line(exc)}", EXIT_FAILED)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
