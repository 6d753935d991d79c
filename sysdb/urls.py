"""Finding and checking the system database URL.

The URL comes from the config (``system_database_url``), else ``PGFLEET_SYSTEM_DATABASE_URL``,
else ``DBOS_SYSTEM_DATABASE_URL``; with none of them, the embedded Postgres of this host is
started (or joined) and its URL used.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .embedded import DEFAULT_BASE_DIR, EmbeddedPostgres
from .errors import InvalidDatabaseUrlError

__all__ = [
    "URL_ENVIRONMENT_VARIABLES",
    "DEFAULT_DATABASE_NAME",
    "describe_url",
    "validate_url",
    "resolve_system_database_url",
]

URL_ENVIRONMENT_VARIABLES = ("PGFLEET_SYSTEM_DATABASE_URL", "DBOS_SYSTEM_DATABASE_URL")
# The database created on the embedded server for the system tables.
DEFAULT_DATABASE_NAME = "pgfleet"
# SQLAlchemy's dialect+driver URL forms, which DBOS's docs and most DBOS apps use
# (postgresql+psycopg://...). The driver part names a Python driver, which means nothing to
# libpq: the rest of the URL is a libpq URL as it stands.
_SQLALCHEMY_SCHEME = re.compile(r"^postgres(?:ql)?\+(?:psycopg|psycopg2|psycopg2cffi|pg8000|asyncpg|psycopg_async)://")


def describe_url(url: str) -> str:
    """The URL with any password masked, safe to log and to put in error messages."""
    try:
        params = conninfo_to_dict(_SQLALCHEMY_SCHEME.sub("postgresql://", url.strip(), count=1))
    except psycopg.ProgrammingError:
        return "<unparseable URL>"
    if "password" in params:
        params["password"] = "***"
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    return f"postgresql://{params.get('user', '')}@{host}:{port}/{params.get('dbname', '')}"


def validate_url(url: str) -> str:
    """Check that ``url`` parses and names a database; returns it as a libpq URL
    (a SQLAlchemy ``postgresql+psycopg://`` form becomes ``postgresql://``).

    Raises :class:`InvalidDatabaseUrlError` naming the problem.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidDatabaseUrlError("the system database URL is empty")
    url = _SQLALCHEMY_SCHEME.sub("postgresql://", url.strip(), count=1)
    if not url.startswith(("postgresql://", "postgres://")) and "=" not in url:
        raise InvalidDatabaseUrlError(
            f"the system database URL {url!r} is not a PostgreSQL URL "
            "(expected postgresql://user:password@host:port/database, or postgresql+psycopg://...)"
        )
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise InvalidDatabaseUrlError(f"the system database URL cannot be parsed: {exc}") from None
    if not params.get("dbname"):
        raise InvalidDatabaseUrlError(
            f"the system database URL {describe_url(url)} names no database (add /<name> at the end)"
        )
    return url


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(url, dbname=dbname)


def resolve_system_database_url(configured: str | None, embedded_dir: str | os.PathLike[str] | None = None) -> str:
    """The URL to use: the configured one, an environment variable's, or the embedded server's."""
    if configured:
        return validate_url(configured)
    for name in URL_ENVIRONMENT_VARIABLES:
        value = os.environ.get(name)
        if value:
            return validate_url(value)
    server = EmbeddedPostgres(Path(embedded_dir) if embedded_dir else Path(DEFAULT_BASE_DIR))
    server.ensure_running()
    return server.url(DEFAULT_DATABASE_NAME)
