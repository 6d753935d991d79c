"""The door of ``pgfleet chaos`` to the server a run uses: its scratch database (created and
dropped), where its embedded server listens, and pgfleet's backends (ended on purpose, a fault).

Creating, dropping and ``ALTER SYSTEM`` cannot run in a transaction and take an identifier or a
literal where a parameter cannot go: those statements are composed (psycopg's ``sql`` module,
never string formatting) and run on a dedicated autocommit connection of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from .door import Door, row_to
from .statements import statement

__all__ = ["ChaosAdmin", "Backend"]


@dataclass(frozen=True)
class Backend:
    """One server process of a session on the database (``pg_stat_activity``)."""

    pid: int
    application_name: str


class ChaosAdmin(Door):
    """Server-level operations of a chaos run. Open it on a :class:`SystemDatabase` of the
    database to connect to; the create/drop/listen calls need no open pool."""

    def create_database(self, dbname: str) -> None:
        """``CREATE DATABASE dbname``. Raises ``psycopg.errors.InsufficientPrivilege`` when the
        role may not create databases, ``DuplicateDatabase`` when it exists."""
        self._run_composed(sql.SQL(statement("create_chaos_database")).format(dbname=sql.Identifier(dbname)))

    def drop_database(self, dbname: str) -> None:
        """``DROP DATABASE IF EXISTS dbname WITH (FORCE)``: its sessions are ended first."""
        self._run_composed(sql.SQL(statement("drop_chaos_database")).format(dbname=sql.Identifier(dbname)))

    def listen_on(self, addresses: Sequence[str]) -> None:
        """Make the server listen on ``addresses`` from its next start (``ALTER SYSTEM``)."""
        text = ",".join(addresses)
        self._run_composed(sql.SQL(statement("chaos_listen_addresses")).format(addresses=sql.Literal(text)))

    def backends(self, prefix: str = "pgfleet") -> list[Backend]:
        """Other sessions on this database whose application_name starts with ``prefix``."""
        return [row_to(Backend, r) for r in self._execute("list_pgfleet_backends", {"prefix": prefix})]

    def terminate(self, pids: Sequence[int]) -> list[int]:
        """``pg_terminate_backend`` each pid; the ones that were ended (a gone one is not)."""
        rows = self._execute("terminate_chaos_backends", {"pids": list(pids)})
        return [int(r["pid"]) for r in rows if r["terminated"]]

    def _run_composed(self, query: sql.Composed) -> None:
        with self._db.connect(bounded=False) as conn:
            conn.execute(query)
