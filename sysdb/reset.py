"""Destroying or emptying a system database (``DBOS.reset_system_database``, for tests).

As DBOS does, ``truncate=False`` drops the whole database and ``truncate=True`` deletes every
row of the system schema's tables but the migration records (far faster, and the schema stays
migrated). pgfleet adds one guard: a database that live fleet members still heartbeat into is
refused, since emptying it under them would strand their running workflows.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import SystemDatabaseError
from .statements import statement

__all__ = ["reset_system_database", "LiveMembersError"]

# The tables whose rows record which migrations ran: emptying them would run them again.
_KEPT_TABLES = frozenset({"dbos_migrations", "pgfleet_migrations"})


class LiveMembersError(SystemDatabaseError):
    """Live executors still use the database a reset was asked to destroy."""


def reset_system_database(url: str, *, truncate: bool, schema: str = "dbos", member_timeout_sec: float = 30.0) -> None:
    """Drop the database ``url`` names (``truncate=False``) or empty its ``schema``'s tables."""
    dbname = str(conninfo_to_dict(url).get("dbname") or "")
    if not dbname:
        raise ValueError(f"System database name not found in URL {url}")
    _refuse_if_live(url, schema, member_timeout_sec)
    if truncate:
        _empty(url, schema)
        return
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def _refuse_if_live(url: str, schema: str, member_timeout_sec: float) -> None:
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError:
        return  # no such database (yet): nothing to protect, and a drop is a no-op
    with conn:
        if schema != "dbos" or "pgfleet_executors" not in _tables(conn, schema):
            return
        row = conn.execute(statement("count_live_members"), {"member_timeout_sec": member_timeout_sec}).fetchone()
    if row and row[0]:
        raise LiveMembersError(
            f"cannot reset the system database: {row[0]} live executor(s) still use it; stop the fleet first"
        )


def _tables(conn: psycopg.Connection[tuple[str]], schema: str) -> list[str]:
    return [r[0] for r in conn.execute(statement("list_system_tables"), {"schema": schema}).fetchall()]


def _empty(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        try:
            conn.execute(statement("evict_database_sessions"))
        except psycopg.Error:
            pass  # best effort, as DBOS's: a role may not signal other sessions
        tables = _tables(conn, schema)
        with conn.transaction():
            for table in tables:
                if table not in _KEPT_TABLES:
                    conn.execute(sql.SQL("DELETE FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
