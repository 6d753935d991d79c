"""A pooled connection for a few autocommitted statements, without ``pool.connection()``'s cost.

psycopg_pool's ``connection()`` is a generator context manager that also enters the connection's
own context (``with conn:``, a ``commit()`` on the way out) and times the use for the pool's
statistics. pgfleet's pooled connections are in autocommit mode and every transaction on them
is a ``conn.transaction()`` block that ends itself, so that commit never has anything to do; and
pgfleet reads no pool statistics. That wrapping was more than half of an uncontended
checkout's cost (5.7 µs against 2.5 µs, five checkouts per 3-step workflow; issue #14,
``ops/bench/RESULTS.md``): this is ``getconn`` and ``putconn`` and nothing else.

``putconn`` still does what makes a checkout safe to hand back: a connection returned broken
or closed is discarded and replaced, and one left inside a transaction (which pgfleet never
does) is rolled back by the pool before anyone else gets it.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from .database import DictConnection

__all__ = ["PooledCheckout"]


class PooledCheckout:
    """``with PooledCheckout(pool) as conn``: a connection of ``pool``, given back on exit."""

    __slots__ = ("_pool", "_conn")

    def __init__(self, pool: ConnectionPool[DictConnection]) -> None:
        self._pool = pool
        self._conn: DictConnection | None = None

    def __enter__(self) -> DictConnection:
        self._conn = self._pool.getconn()
        return self._conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.putconn(conn)
