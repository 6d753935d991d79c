"""The connections pgfleet opens to the system database: psycopg's, with dict rows, plus one
cursor kept for pgfleet's own named statements.

``Connection.execute`` makes a new cursor for every statement, and a new cursor copies the
connection's adapters map; on the hot path (five statements per 3-step workflow) that copy and
the cursor set-up were about a fifth of psycopg's client time per statement (issue #14,
``ops/bench/RESULTS.md``). :meth:`DictConnection.run` runs a statement on a cursor made once per
connection instead. That is safe because a connection is used by one thread at a time (the
pool's rule) and every caller reads its statement's rows or row count before the next
statement on the connection; a cursor whose statement failed runs the next one as usual.

:meth:`DictConnection.run_named` goes further for the hot path's statements: those of
:mod:`sysdb.direct` skip the cursor and go through libpq on this same connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import DictRow

from .direct import StatementResult, direct_statement, run_direct, usable_on
from .statements import statement

__all__ = ["DictConnection"]


class DictConnection(psycopg.Connection[DictRow]):
    """A system-database connection (``row_factory=dict_row``, autocommit unless inside a
    ``conn.transaction()`` block)."""

    _statement_cursor: psycopg.Cursor[DictRow] | None = None
    # Direct statements prepared on this session (sysdb.direct), by name.
    _direct_prepared: set[str] | None = None

    @property
    def direct_prepared(self) -> set[str]:
        """The direct statements prepared on this session so far."""
        if self._direct_prepared is None:
            self._direct_prepared = set()
        return self._direct_prepared

    def run(self, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> psycopg.Cursor[DictRow]:
        """Run one of pgfleet's named statements on this connection's kept cursor; read its
        rows or row count before running the next statement here."""
        cur = self._statement_cursor
        if cur is None or cur.closed:
            cur = self._statement_cursor = self.cursor()
        return cur.execute(query, params)

    def run_named(self, name: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> StatementResult:
        """Run the statement ``sysdb/sql/<name>.sql``: directly through libpq when it is one of
        :data:`sysdb.direct.DIRECT_STATEMENTS` and this connection can, else on the kept cursor."""
        direct = direct_statement(name)
        # Asked each time: user code in a transaction may SET client_encoding or a pipeline.
        # (A dict, not any Mapping: the ABC's isinstance showed in the hot path's profile.)
        if direct is not None and isinstance(params, dict) and usable_on(self):
            return run_direct(self, direct, params)
        cur = self.run(statement(name), params)
        return StatementResult(cur.fetchall() if cur.description else [], cur.rowcount)
