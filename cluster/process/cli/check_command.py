"""``pgfleet check``: validate the settings and reach the system database, starting nothing."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sysdb import LATEST_VERSION, SystemDatabase, describe_url
from sysdb.embedded import DEFAULT_BASE_DIR, EmbeddedPostgres
from sysdb.urls import DEFAULT_DATABASE_NAME

from ..settings import SettingsError, load_settings
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .output import _cell, _emit, _first_line


def _masked(worker_config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: describe_url(value) if key.endswith("database_url") and isinstance(value, str) else value
        for key, value in worker_config.items()
    }


def _probe(url: str, timeout: float) -> dict[str, Any]:
    """Connect once, ``SELECT 1``, and read the schema version; never migrates."""
    db = SystemDatabase(url, pool_size=1, application_name="pgfleet-check", connect_timeout_sec=max(2, int(timeout)))
    try:
        probe = db.probe.schema()
    except psycopg.OperationalError as exc:
        missing = _database_missing(url, timeout)
        if missing:
            return {"reachable": True, "database_exists": False, "schema_version": 0, "latest_schema_version": LATEST_VERSION}
        return {"reachable": False, "error": _first_line(exc)}
    return {
        "reachable": True,
        "database_exists": True,
        "latency_ms": probe.latency_ms,
        "server_version": probe.server_version,
        "schema_version": probe.schema_version,
        "latest_schema_version": LATEST_VERSION,
    }


def _database_missing(url: str, timeout: float) -> bool:
    """True when the server answers but has no database of that name (launch creates it)."""
    dbname = conninfo_to_dict(url).get("dbname")
    if not dbname or dbname == "postgres":
        return False
    admin = SystemDatabase(make_conninfo(url, dbname="postgres"), pool_size=1, connect_timeout_sec=max(2, int(timeout)))
    try:
        return not admin.probe.has_database(str(dbname))
    except psycopg.Error:
        return False


_SETTING_KEYS = ("app", "workers", "name", "queues", "grace", "metrics_port", "boot_deadline")


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
        "settings": {k: settings[k] for k in _SETTING_KEYS},
        "worker_config": _masked(worker_config),
        "sources": settings["sources"],
    }
    lines = _settings_lines(settings)
    database, line, exit_code = _check_database(settings, float(args.timeout))
    lines.append(line)
    result["database"] = database
    result["ok"] = exit_code == EXIT_OK
    _emit(args, result, "\n".join(lines))
    return exit_code


def _settings_lines(settings: Mapping[str, Any]) -> list[str]:
    """The settings as `pgfleet check` prints them, each with where it came from."""
    lines = [f"config: ok ({settings['config_file'] or 'no config file'})"]
    for key in _SETTING_KEYS:
        value = settings[key]
        shown = "all declared" if key == "queues" and value is None else ",".join(value) if key == "queues" else value
        lines.append(f"  {key:<22}{_cell(shown):<30}  ({settings['sources'].get(key, 'default')})")
    for key, value in _masked(settings["worker_config"]).items():
        lines.append(f"  {key:<22}{_cell(value):<30}  ({settings['sources'].get(key, '?')})")
    return lines


def _check_database(settings: Mapping[str, Any], timeout: float) -> tuple[dict[str, Any], str, int]:
    """Where the system database is and what one probe of it found: (report, line, exit code)."""
    worker_config = settings["worker_config"]
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
    if not url:
        return database, (
            f"database: no URL configured: the embedded server in {database['data_dir']} would be used; "
            "it is not running (workers start it at launch, or run `pgfleet db start`)"
        ), EXIT_OK
    database.update(_probe(url, timeout))
    line, exit_code = _probe_line(database)
    return database, line, exit_code


def _probe_line(database: dict[str, Any]) -> tuple[str, int]:
    """The line that says what the probe found (adding the error of a too-new schema)."""
    where = database["url"] + (" (the embedded server)" if database["embedded"] else f" (from {database['source']})")
    if not database["reachable"]:
        return f"database: UNREACHABLE: {where}: {database['error']}", EXIT_FAILED
    if not database["database_exists"]:
        return f"database: ok: {where}; the database does not exist yet (the first worker or `pgfleet migrate` creates it)", EXIT_OK
    version = database["schema_version"]
    if version > LATEST_VERSION:
        database["error"] = (
            f"the schema is at version {version}, newer than this pgfleet knows ({LATEST_VERSION}): upgrade pgfleet"
        )
        return f"database: TOO NEW: {where}: {database['error']}", EXIT_FAILED
    schema = (
        f"schema version {version} (up to date)" if version == LATEST_VERSION
        else f"schema version {version} of {LATEST_VERSION} (workers migrate it at launch, or run `pgfleet migrate`)"
    )
    return f"database: ok: {where}, {database['latency_ms']} ms, {schema}", EXIT_OK
