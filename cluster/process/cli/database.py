"""Finding and opening the system database for the read commands (status, workflow, queue).

The order: ``--database-url``, the ``--config`` file's ``system_database_url``, the URL environment
variables, else the embedded server in ``--data-dir`` if it is running (never started here).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator, Mapping

import psycopg

from sysdb import SystemDatabase, describe_url, validate_url
from sysdb.embedded import DEFAULT_BASE_DIR, EmbeddedPostgres
from sysdb.urls import DEFAULT_DATABASE_NAME, URL_ENVIRONMENT_VARIABLES

from ..settings import load_settings
from .errors import CliError
from .output import _first_line


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


def _connect_db(url: str, source: str, timeout: float, *, pool_size: int = 1, application_name: str = "pgfleet-cli",
                what: str = "system database") -> SystemDatabase:
    """A pool on the ``what`` (the system database, or an application database) at ``url``
    (found in ``source``), opened without migrating it; a refused connection is a CliError at
    once, not after ``timeout`` of retries."""
    db = SystemDatabase(
        url,
        pool_size=pool_size,
        application_name=application_name,
        connect_timeout_sec=max(2, int(timeout)),
        retry_timeout_sec=timeout,
    )
    try:
        db.connect().close()  # one attempt first: a refused connection fails now, not after retries
    except psycopg.OperationalError as exc:
        raise CliError(f"cannot reach the {what} at {describe_url(url)} ({source}): {_first_line(exc)}") from None
    db.open(run_migrations=False)
    return db


@contextlib.contextmanager
def _open_db(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Iterator[SystemDatabase]:
    """A small pool on the system database, opened without migrating it."""
    url, source = _read_url(args, os.environ if environ is None else environ)
    db = _connect_db(url, source, float(args.timeout))
    try:
        yield db
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedColumn) as exc:
        raise CliError(
            f"the database at {describe_url(url)} ({source}) does not have pgfleet's current system tables "
            f"({_first_line(exc)}); is it the system database? `pgfleet migrate` creates them"
        ) from None
    finally:
        db.close()
