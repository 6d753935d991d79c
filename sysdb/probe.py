"""Probing a system database without changing it (``pgfleet check``): does it answer, how fast,
which schema version it is at, and, when it refuses, whether the server has it at all."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .door import Door

if TYPE_CHECKING:
    from .database import DictConnection, Row

__all__ = ["Probe", "SchemaProbe"]


@dataclass(frozen=True)
class SchemaProbe:
    """What one connection to the system database found."""

    latency_ms: float  # connect and SELECT 1
    server_version: int
    schema_version: int  # 0: pgfleet never migrated it


class Probe(Door):
    """Read-only checks, each on a dedicated connection of its own (never the pool, never migrating)."""

    def schema(self) -> SchemaProbe:
        """Connect once, ``SELECT 1``, and read the schema version. Raises
        ``psycopg.OperationalError`` when the database cannot be reached."""
        started = time.monotonic()
        with self._db.connect() as conn:
            self._one_row(conn, "ping")
            latency_ms = round((time.monotonic() - started) * 1000, 1)
            present = self._one_row(conn, "schema_migrations_present")["present"]
            version = self._one_row(conn, "schema_version")["version"] if present else 0
            return SchemaProbe(latency_ms=latency_ms, server_version=conn.info.server_version, schema_version=int(version))

    def has_database(self, dbname: str) -> bool:
        """Whether the server has a database named ``dbname`` (ask on its ``postgres`` database)."""
        with self._db.connect() as conn:
            return bool(self._one_row(conn, "database_exists", {"dbname": dbname})["present"])

    def _one_row(self, conn: DictConnection, name: str, params: Mapping[str, Any] | None = None) -> Row:
        """The row of a probe statement (each selects exactly one)."""
        rows = self._db._execute_on(conn, name, params or {})
        if not rows:
            raise RuntimeError(f"sysdb/sql/{name}.sql returned no row")
        return rows[0]
