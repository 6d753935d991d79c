"""``pgfleet db start|stop|status|url`` (the embedded Postgres of this host) and ``pgfleet migrate``."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from sysdb import SystemDatabase, describe_url, resolve_system_database_url
from sysdb.embedded import EmbeddedPostgres
from sysdb.urls import DEFAULT_DATABASE_NAME

from .errors import EXIT_NOT_RUNNING, EXIT_OK
from .output import _emit


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
