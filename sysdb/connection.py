"""The connections pgfleet opens to the system database: psycopg's, with dict rows, plus one
cursor kept for pgfleet's own named statements.

``Connection.execute`` makes a new cursor for every statement, and a new cursor copies the
connection's adapters map; on the hot path (five statements per 3-step workflow) that copy and
the cursor set-up were about a fifth of psycopg's client time per statement (issue #14,
``ops/bench/RESULTS.md``). :meth:`DictConnection.run` runs a statement on a cursor made once per
connection instead. That is safe because a connection is used by one thread at a time (the
pool's rule) and every caller reads its statement's rows or row count before the next
statement on the connection; a cursor whose statement failed runs the next one as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import DictRow

__all__ = ["DictConnection"]


class DictConnection(psycopg.Connection[DictRow]):
    """A system-database connection (``row_factory=dict_row``, autocommit unless inside a
    ``conn.transaction()`` block)."""

    _statement_cursor: psycopg.Cursor[DictRow] | None = None

    def run(self, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> psycopg.Cursor[DictRow]:
        """Run one of pgfleet's named statements on this connection's kept cursor; read its
        rows or row count before running the next statement here."""
        cur = self._statement_cursor
        if cur is None or cur.closed:
            cur = self._statement_cursor = self.cursor()
        return cur.execute(query, params)
