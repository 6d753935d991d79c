"""psycopg's ``AsyncConnectionPool`` for the hot writes of async workflows, one per event loop.

The step checkpoint and the finish of an ``async def`` workflow are awaited on the workflow's
own loop through an async pool (``ops/bench/RESULTS.md``, "Hot path on the async pool": at 8
concurrent tasks it is well ahead of a hop to a worker thread); everything else stays on the
sync pool. An async pool is bound to the loop that opened it, and pgfleet runs async workflows
on its callers' loops and on its own background loop, so there is one pool per loop, opened
lazily by the first statement from that loop, with the sync pool's connection settings
(``SystemDatabase._connect_kwargs``, the session timeouts) and at most as many connections.

A pool whose loop has closed (an ``asyncio.run`` that ended) cannot be closed the async way: it
is dropped, its idle connections' sockets closed synchronously through libpq
(``pgconn.finish()``), when the next pool is opened and at :meth:`AsyncPools.close`. A pool
whose loop still runs is closed on that loop (``run_coroutine_threadsafe``, bounded wait).

Retries follow :meth:`SystemDatabase.with_retries`: the same failures retried, the same waits
and time budget, the same :class:`DatabaseUnavailableError` once it is spent, and ``on_retried``
after a success that needed a retry.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_exponential, wait_random

from .errors import DatabaseUnavailableError
from .logs import get_logger
from .urls import describe_url

if TYPE_CHECKING:
    from .database import SystemDatabase

__all__ = ["AsyncPools", "AsyncDictConnection"]

log = get_logger("pgfleet.sysdb")

T = TypeVar("T")
AsyncDictConnection = psycopg.AsyncConnection[DictRow]
_Pool = AsyncConnectionPool[AsyncDictConnection]
# How long close() waits for a pool to close on its (still running) loop.
CLOSE_WAIT_SEC = 5.0


class AsyncPools:
    """The async pools of one :class:`SystemDatabase`, by event loop."""

    def __init__(self, db: SystemDatabase, size: int) -> None:
        self._db = db
        self._size = size
        self._lock = threading.Lock()
        self._pools: dict[asyncio.AbstractEventLoop, _Pool] = {}
        self._closed = False

    def _here(self) -> _Pool:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise PoolClosed("the system database is closed")
            pool = self._pools.get(loop)
            if pool is not None:
                return pool
            dead = [(lp, p) for lp, p in self._pools.items() if lp.is_closed()]
            for lp, _ in dead:
                del self._pools[lp]
            pool = AsyncConnectionPool(
                self._db.url,
                min_size=min(1, self._size),
                max_size=self._size,
                kwargs=self._db._connect_kwargs,
                open=False,
                name="pgfleet-sysdb-async",
                timeout=self._db.retry_timeout_sec,
                reconnect_timeout=self._db.retry_timeout_sec,
                configure=self._configure,
            )
            self._pools[loop] = pool
        for _, old in dead:
            _drop(old)
        return pool

    async def _configure(self, conn: AsyncDictConnection) -> None:
        # Once per new connection, as the sync pool's configure hook does.
        limits = self._db._session_limits()
        if limits is not None:
            await conn.execute(self._db._timeouts_statement(), limits)

    async def count_once(self, sql: str, params: Mapping[str, Any]) -> int:
        """Run one statement once on this loop's pool (the caller retries): rows it changed."""
        pool = self._here()
        if pool.closed:  # never opened yet: the first use opens it, on this loop
            await pool.open(wait=False)
        async with pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return cur.rowcount

    async def with_retries(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()``, again on a connection failure for up to ``retry_timeout_sec``: the
        policy of :meth:`SystemDatabase.with_retries`, sleeping with ``asyncio.sleep``."""
        try:
            return await fn()
        except (psycopg.Error, PoolTimeout) as exc:
            if not _is_connection_failure(exc):
                raise
            log.warning("system database unreachable; retrying", error=str(exc))
        result = await self._retry(fn)
        if self._db.on_retried is not None:
            self._db.on_retried()
        return result

    async def _retry(self, fn: Callable[[], Awaitable[T]]) -> T:
        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("system database unreachable; retrying", attempt=state.attempt_number, error=str(exc))

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_is_connection_failure),
                wait=wait_exponential(multiplier=0.05, max=2.0) + wait_random(0, 0.05),
                stop=stop_after_delay(self._db.retry_timeout_sec),
                before_sleep=log_retry,
                reraise=True,
            ):
                with attempt:
                    return await fn()
        except (psycopg.Error, PoolTimeout) as exc:
            if not _is_connection_failure(exc):
                raise
            raise DatabaseUnavailableError(
                f"the system database at {describe_url(self._db.url)} did not answer for "
                f"{self._db.retry_timeout_sec:.0f}s: {exc}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def stats(self) -> dict[str, int]:
        """How many pools are open, and the connections they hold in all (``pool_size``)."""
        with self._lock:
            pools = list(self._pools.values())
        return {"pools": len(pools), "pool_size": sum(p.get_stats().get("pool_size", 0) for p in pools)}

    async def close_here(self) -> None:
        """Close the pool of the running loop, if it has one (a loop about to stop)."""
        with self._lock:
            pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close(timeout=CLOSE_WAIT_SEC)

    def close(self) -> None:
        """Close every pool: on its loop while that loop runs, else drop it (sockets closed)."""
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.items()), {}
        for loop, pool in pools:
            if loop.is_closed() or not loop.is_running():
                _drop(pool)
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:  # closing from the pool's own loop: it cannot wait for itself
                _drop(pool)
                continue
            future = asyncio.run_coroutine_threadsafe(pool.close(timeout=CLOSE_WAIT_SEC), loop)
            try:
                future.result(CLOSE_WAIT_SEC + 1.0)
            except (concurrent.futures.TimeoutError, RuntimeError):
                future.cancel()
                _drop(pool)


def _drop(pool: _Pool) -> None:
    """Forget a pool that cannot be closed on its loop, closing its idle connections' sockets
    synchronously (libpq's ``PQfinish``; psycopg's async close needs the loop)."""
    pool._closed = True  # its workers died with their loop; psycopg's __del__ then leaves it be
    for conn in list(pool._pool):
        conn.pgconn.finish()
    pool._pool.clear()


def _is_connection_failure(exc: BaseException) -> bool:
    from .database import is_connection_failure

    return is_connection_failure(exc)
