"""The ``pgfleet`` command.

    pgfleet db start|stop|status|url [--data-dir DIR] [--json]   the embedded Postgres
    pgfleet migrate [--database-url URL]                          create and migrate the system database

Exit codes: 0 success, 1 the operation failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from sysdb import SystemDatabase, SystemDatabaseError, describe_url, resolve_system_database_url
from sysdb.embedded import DEFAULT_BASE_DIR, EmbeddedPostgres, EmbeddedPostgresError
from sysdb.urls import DEFAULT_DATABASE_NAME

__all__ = ["main"]


def _print(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    print(json.dumps(payload, default=str) if args.json else text)


def _db(args: argparse.Namespace) -> int:
    server = EmbeddedPostgres(args.data_dir)
    if args.action == "start":
        server.ensure_running()
        url = server.url(DEFAULT_DATABASE_NAME)
        _print(args, {"running": True, "url": url}, f"embedded Postgres running: {url}")
    elif args.action == "stop":
        was_running = server.stop()
        _print(args, {"stopped": was_running}, "stopped" if was_running else "was not running")
    elif args.action == "status":
        status = server.status()
        payload = dataclasses.asdict(status)
        if status.running:
            payload["url"] = server.url(DEFAULT_DATABASE_NAME)
        _print(args, payload, f"running (pid {status.pid}, {payload['url']})" if status.running else "not running")
        return 0 if status.running else 3
    elif args.action == "url":
        status = server.status()
        if not status.running:
            print("embedded Postgres is not running (start it with: pgfleet db start)", file=sys.stderr)
            return 3
        _print(args, {"url": server.url(DEFAULT_DATABASE_NAME)}, server.url(DEFAULT_DATABASE_NAME))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    url = resolve_system_database_url(args.database_url, args.data_dir)
    db = SystemDatabase(url, pool_size=1)
    db.open()
    db.close()
    _print(args, {"migrated": True, "url": describe_url(url)}, f"system database at {describe_url(url)} is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgfleet", description="pgfleet: durable Python workflows on PostgreSQL")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="manage the embedded Postgres of this host")
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    db.add_argument("--data-dir", default=str(DEFAULT_BASE_DIR), help="where the embedded server lives (default: ./.pgfleet)")
    db.add_argument("--json", action="store_true", help="print JSON")
    db.set_defaults(handler=_db)

    migrate = commands.add_parser("migrate", help="create and migrate the system database")
    migrate.add_argument("--database-url", default=None, help="system database URL (default: environment, else embedded)")
    migrate.add_argument("--data-dir", default=None, help="embedded server directory when no URL is given")
    migrate.add_argument("--json", action="store_true", help="print JSON")
    migrate.set_defaults(handler=_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pgfleet`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (SystemDatabaseError, EmbeddedPostgresError) as exc:
        print(f"pgfleet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
