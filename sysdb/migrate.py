"""Schema migrations for the system database.

Migrations are the numbered files in ``sysdb/migrations`` (``0001_name.sql`` ...), applied in
order, each in its own transaction, and recorded in ``dbos.pgfleet_migrations``. Many processes
launch at once in a fleet, so the whole run holds a session advisory lock: the first process
migrates, the others wait and then find nothing to do. A database migrated by a newer pgfleet
is refused with a clear error rather than used with a schema this code does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import SchemaTooNewError
from .logs import get_logger

__all__ = ["Migration", "MIGRATIONS", "LATEST_VERSION", "migrate", "ensure_database_exists", "ensure_application_schema"]

log = get_logger("pgfleet.sysdb")

# An arbitrary constant: the key of the session advisory lock that serialises migrations.
MIGRATION_LOCK_KEY = 0x7067_666C_6D69  # "pgflmi"

# The DBOS Transact migration number whose layout migration 1 reproduces (DBOS 2.30).
DBOS_LAYOUT_VERSION = 107

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered schema change."""

    version: int
    name: str
    sql: str


def _load_migrations() -> tuple[Migration, ...]:
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"sysdb/migrations must be numbered 1..n without gaps, found {versions}")
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = _load_migrations()
LATEST_VERSION: int = MIGRATIONS[-1].version


def ensure_database_exists(conninfo: str) -> bool:
    """Create the database named in ``conninfo`` if it does not exist. Returns True if created.

    Connects to the server's ``postgres`` database to do so. Two processes racing to create it
    is fine: the loser sees ``duplicate_database`` and carries on.
    """
    params = conninfo_to_dict(conninfo)
    dbname = str(params.get("dbname") or "")  # parsed conninfo values are strings (the dict type allows int)
    if not dbname or dbname == "postgres":
        return False
    admin = make_conninfo(conninfo, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            return False
    log.info("created system database", database=dbname)
    return True


def _first(row: dict[str, Any] | tuple[Any, ...] | None) -> Any:
    if row is None:
        return 0
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


# Migrations read their few rows through _first, so they run on a connection of either row
# factory (the system database's dict rows, or psycopg's default tuples).
AnyRowConnection = psycopg.Connection[Any]


def _dbos_layout_version(conn: AnyRowConnection) -> int:
    exists = conn.execute("SELECT to_regclass('dbos.dbos_migrations') IS NOT NULL AS e").fetchone()
    if not _first(exists):
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) AS v FROM dbos.dbos_migrations").fetchone()
    return int(_first(row))


def migrate(conn: AnyRowConnection) -> list[int]:
    """Apply every pending migration on ``conn`` (autocommit). Returns the versions applied.

    Raises :class:`SchemaTooNewError` when the database records a version this code lacks.
    """
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS dbos")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS dbos.pgfleet_migrations (
                   version INTEGER PRIMARY KEY,
                   name TEXT NOT NULL,
                   applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
        )
        row = conn.execute("SELECT coalesce(max(version), 0) AS v FROM dbos.pgfleet_migrations").fetchone()
        current = int(_first(row))
        if current == 0 and _dbos_layout_version(conn) >= DBOS_LAYOUT_VERSION:
            # DBOS itself created this database: its tables are already the layout that
            # migration 1 writes, so adopt them and apply only pgfleet's own migrations.
            conn.execute(
                "INSERT INTO dbos.pgfleet_migrations (version, name) VALUES (1, %s)",
                (MIGRATIONS[0].name + " (adopted from DBOS)",),
            )
            current = 1
        if current > LATEST_VERSION:
            raise SchemaTooNewError(
                f"the system database schema is at version {current}, but this pgfleet knows "
                f"versions up to {LATEST_VERSION}: upgrade pgfleet before using this database"
            )
        applied = []
        for migration in MIGRATIONS[current:]:
            with conn.transaction():
                conn.execute(migration.sql.encode())  # several statements, no parameters
                conn.execute(
                    "INSERT INTO dbos.pgfleet_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied.append(migration.version)
            log.info("applied migration", version=migration.version, name=migration.name)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


def ensure_application_schema(conn: AnyRowConnection) -> None:
    """Create ``dbos.transaction_outputs`` in an application database (idempotent; serialised
    by a transaction-scoped advisory lock so simultaneous launches do not collide)."""
    text = resources.files(__package__).joinpath("app_migrations").joinpath("transaction_outputs.sql").read_text("utf-8")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(text.encode())
