"""``pgfleet workflow prune``: delete finished workflows older than a cutoff (issue #13).

What goes with a workflow, and what never goes, is :mod:`sysdb.retention`'s (DBOS's
``garbage_collect`` rules: by ``created_at``, finished workflows only). The deletion runs in
batches of ``--batch`` workflows, each one short statement committed on its own, so an
interrupted prune has kept what it did and the fleet's claimers never wait long on it.

``@DBOS.transaction`` outputs live in the application database, which has no foreign key to the
system database's workflows: with ``--app-database-url`` (or the ``--config`` file's
``application_database_url``) each batch's outputs are deleted there too, after the batch, as the
leader's retention does. Without one they stay, and the summary says so.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg

from sysdb import SystemDatabase, describe_url, validate_url
from sysdb.retention import DEFAULT_PRUNE_BATCH_SIZE, PRUNABLE_STATUSES, PruneBatch, check_prune_statuses

from ..settings import load_settings
from .arg_types import int_at_least
from .database import _connect_db, _open_db
from .errors import EXIT_OK, EXIT_USAGE, CliError
from .output import _emit

__all__ = ["add_prune_arguments", "parse_duration"]

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms])\s*$")
_COUNTED = ("steps", "events", "streams", "messages", "attempts")


def parse_duration(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m`` or ``45s``; ValueError naming the problem."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (a number and a unit d, h, m or s, e.g. 30d, 12h, 90m)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"the duration must be more than 0: {text!r}")
    return seconds


def _duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_prune_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``workflow prune`` (the caller adds the database options)."""
    parser.add_argument("--older-than", required=True, type=_duration_arg, metavar="AGE",
                        help="only workflows created more than AGE ago (30d, 12h, 90m, 45s)")
    parser.add_argument("--status", action="append", metavar="S1,S2",
                        help=f"only these finished statuses (default: all of {', '.join(PRUNABLE_STATUSES)})")
    parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    parser.add_argument("--batch", type=int_at_least(1), default=DEFAULT_PRUNE_BATCH_SIZE, metavar="N",
                        help=f"workflows per batch, each its own short transaction (default {DEFAULT_PRUNE_BATCH_SIZE})")
    parser.add_argument("--app-database-url", default=None, metavar="URL",
                        help="the application database of @DBOS.transaction steps: delete the pruned workflows' "
                             "transaction outputs there too (default: the --config file's application_database_url)")
    parser.set_defaults(handler=_workflow_prune)


def _app_url(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The application database to prune transaction outputs from, and where it came from."""
    if args.app_database_url:
        return validate_url(args.app_database_url), "--app-database-url"
    if getattr(args, "config", None):
        settings = load_settings(args.config, {}, environ)
        for key in ("application_database_url", "database_url"):
            url = settings["worker_config"].get(key)
            if url:
                return url, settings["sources"].get(key, args.config)
    return None


@contextlib.contextmanager
def _open_app_db(args: argparse.Namespace) -> Iterator[tuple[SystemDatabase, str] | None]:
    """The application database and its description, checked to hold the transaction outputs'
    table before anything is deleted; None without one."""
    found = _app_url(args, os.environ)
    if found is None:
        yield None
        return
    url, source = found
    app_db = _connect_db(url, source, float(args.timeout), what="application database")
    try:
        try:
            app_db.admin.delete_transaction_outputs([])  # deletes nothing: fails now if the table is missing
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            raise CliError(
                f"the application database at {describe_url(url)} ({source}) has no dbos.transaction_outputs "
                "table; is it the database of the app's @DBOS.transaction steps? Nothing was deleted"
            ) from None
        yield app_db, describe_url(url)
    finally:
        app_db.close()


def _statuses(values: list[str] | None) -> tuple[str, ...]:
    if not values:
        return PRUNABLE_STATUSES
    items = [v for value in values for v in value.split(",") if v.strip()]
    try:
        return check_prune_statuses(items)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _add(total: dict[str, Any], batch: PruneBatch) -> None:
    total["batches"] += 1
    total["workflows"] += batch.workflows
    for status, count in batch.by_status.items():
        total["by_status"][status] = total["by_status"].get(status, 0) + count
    for name in _COUNTED:
        total[name] += getattr(batch, name)


def _workflow_prune(args: argparse.Namespace) -> int:
    statuses = _statuses(args.status)
    older_than_ms = int(args.older_than * 1000)
    head = {"older_than_sec": args.older_than, "statuses": list(statuses), "dry_run": args.dry_run, "batch_size": args.batch}
    with _open_db(args) as db, _open_app_db(args) as app:
        head["application_database"] = app[1] if app else None
        if args.dry_run:
            by_status = db.retention.count_prunable(older_than_ms, statuses)
            payload = {**head, "workflows": sum(by_status.values()), "by_status": by_status}
            _emit(args, payload, _dry_run_text(payload))
            return EXIT_OK
        total: dict[str, Any] = {**head, "batches": 0, "workflows": 0, "by_status": {}, **{n: 0 for n in _COUNTED},
                                 "transaction_outputs": 0 if app else None}
        after_ms = 0
        while True:
            batch = db.retention.prune_batch(older_than_ms, statuses, args.batch, after_ms)
            _add(total, batch)
            if app and batch.workflow_ids:
                total["transaction_outputs"] += app[0].admin.delete_transaction_outputs(list(batch.workflow_ids))
            if not args.json and batch.workflows:
                print(f"batch {total['batches']}: deleted {batch.workflows} workflows, {batch.steps} steps")
            if batch.workflows < args.batch or batch.last_created_at is None:
                break
            after_ms = batch.last_created_at
    _emit(args, total, _done_text(total))
    return EXIT_OK


def _by_status_text(by_status: dict[str, int]) -> str:
    return ", ".join(f"{status} {count}" for status, count in sorted(by_status.items())) or "none"


def _app_text(payload: dict[str, Any]) -> str:
    """What becomes of the transaction outputs in the application database."""
    where = payload["application_database"]
    if where is None:
        return ("; @DBOS.transaction outputs in an application database are not touched "
                "(--app-database-url or --config names it)")
    if payload["dry_run"]:
        return f"; their transaction outputs in {where} would go too"
    return f"; and {payload['transaction_outputs']} transaction outputs in {where}"


def _dry_run_text(payload: dict[str, Any]) -> str:
    return (
        f"dry run: would delete {payload['workflows']} workflows created more than "
        f"{payload['older_than_sec']:g}s ago ({_by_status_text(payload['by_status'])}){_app_text(payload)}; nothing was deleted"
    )


def _done_text(total: dict[str, Any]) -> str:
    counted = ", ".join(f"{total[name]} {name}" for name in _COUNTED)
    return (
        f"deleted {total['workflows']} workflows in {total['batches']} batches "
        f"({_by_status_text(total['by_status'])}) with {counted}{_app_text(total)}"
    )
