"""The system database's connection pool: psycopg_pool's, handing out the most recently returned
connection first.

psycopg_pool keeps its idle connections in a deque and hands out the one that has waited
longest (first in, first out). Every statement of pgfleet's is a checkout of its own, so under
FIFO one caller's consecutive statements rotate over every idle backend in the pool, each woken
cold (its process off the CPU, its caches gone): once a burst has grown the pool, a quiet
minute still touches every connection. Handing out the most recently returned connection
instead (what SQLAlchemy calls ``pool_use_lifo``) keeps each caller on the few warm backends
that the current load needs.

Measured (issue #14, ``ops/bench/RESULTS.md``, "The pool's order, and shares measured in
paired rounds"; ``ops/bench/pool_order.py``: both orders alternating in one process, a pool of
16 grown by a burst, two runs of 8 pairs): 3-step workflows took 18-20 % less wall time with one
thread and 20-31 % less with eight, faster in 7 or 8 of the 8 pairs. Bare psycopg rotating a
workflow's 5 statements over 12 connections took 2,373 µs against 1,796 on one connection; over
2 or 4 it made no difference, so a pool no bigger than its load gains nothing.

psycopg_pool has no option for the order, so this overrides the one private method that picks
the connection (``_get_ready_connection``, called under the pool's lock), keeping all of its
checks: it only moves the newest idle connection to the end the method takes from.
``tests/test_pool_order.py`` fails if a psycopg_pool release changes that method or the deque,
and the pool then silently falls back to FIFO, which is only slower.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from psycopg_pool import ConnectionPool

from .connection import DictConnection

__all__ = ["RecentFirstPool"]


class RecentFirstPool(ConnectionPool[DictConnection]):
    """A ``psycopg_pool.ConnectionPool`` that hands out its most recently returned connection."""

    def _get_ready_connection(self, timeout: float | None) -> Any:
        # Returned connections go on the right; the parent takes from the left.
        idle = getattr(self, "_pool", None)
        if isinstance(idle, deque) and len(idle) > 1:
            idle.rotate(1)
        return super()._get_ready_connection(timeout)
