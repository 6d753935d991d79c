"""The system database: a connection pool, retries, transactions, and the typed doors.

``SystemDatabase`` is the only way to Postgres for ``runtime`` and ``cluster``. Its statements
are reached through one door per concept, set up by ``sysdb/doors.py`` (``db.workflows``,
``db.steps``, ``db.messages`` ...; see :mod:`sysdb.door`): methods with typed arguments that
return typed rows and speak in plain values (ids, epochs, serialized text), knowing nothing of
Python functions. The runners that take a statement's name (``_execute`` and friends) are for
the doors alone; ``tests/test_structure.py`` checks that each statement has exactly one door.
Every write that belongs to a running workflow is *fenced*: it names the owner executor and the
ownership epoch, and succeeds only while the workflow row still names both (see
``OwnershipLostError`` and :mod:`sysdb.fencing`).

Connection failures are retried with exponential backoff (tenacity) for up to
``retry_timeout_sec``; nothing pings a connection before using it, so the happy path of a step
checkpoint is exactly one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from .checkout import PooledCheckout
from .clock import Clock, DatabaseClock, SystemClock
from .connection import DictConnection
from .doors import Doors, open_doors
from .errors import DatabaseUnavailableError
from .links import SessionTimeouts, dead_link_settings
from .listener import NotificationConnection
from .logs import get_logger
from .migrate import ensure_application_schema, ensure_database_exists, migrate
from .recent_first_pool import RecentFirstPool
from .session_names import with_purpose
from .sql_sessions import SessionBinder
from .statements import statement
from .timestamps import now_ms
from .urls import describe_url

__all__ = ["SystemDatabase", "Row", "DictConnection", "now_ms", "is_connection_failure"]

log = get_logger("pgfleet.sysdb")

Row = dict[str, Any]
T = TypeVar("T")

# How long a statement keeps being retried while the database is unreachable.
DEFAULT_RETRY_TIMEOUT_SEC = 60.0
# A connection whose link has been silent this long fails (TCP keepalives / user timeout).
DEFAULT_DEAD_LINK_TIMEOUT_SEC = 10.0
# Server-side limits of pgfleet's sessions (sysdb/links.py). Our statements are short: the
# statement timeout is only a backstop for one stuck behind a lock; our transactions never
# sit idle, so a session idle in one is a paused or cut-off client whose locks must go.
# @DBOS.transaction bodies (user code) get no statement limit and a generous idle one.
DEFAULT_TIMEOUTS = SessionTimeouts(
    statement_timeout_sec=120.0,
    idle_in_transaction_timeout_sec=5.0,
    user_statement_timeout_sec=None,
    user_idle_in_transaction_timeout_sec=60.0,
)


def _call(fn: Callable[[], T]) -> T:
    """``fn()``: the first contact of an open that does not wait for the server."""
    return fn()


def is_connection_failure(exc: BaseException) -> bool:
    """True for an error that says the connection (or the pool) failed, not the statement:
    such a statement may be retried on a fresh connection."""
    # OperationalError covers a refused connect, a dropped socket and an admin shutdown;
    # PoolTimeout means the pool could not hand out a working connection in time; a session
    # ended for idling in a transaction is gone as well (its client was paused).
    # A closed pool is our own shutdown, not an outage: retrying it would only delay the end.
    # A cancelled statement or a lock wait that timed out is the statement's own outcome.
    if isinstance(exc, psycopg.errors.IdleInTransactionSessionTimeout):
        return True
    return isinstance(exc, (psycopg.OperationalError, PoolTimeout)) and not isinstance(
        exc, (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable, PoolClosed)
    )


class SystemDatabase(Doors):
    """A pool of connections to the system database, and the doors to its statements.

    ``open()`` creates the database if it does not exist, migrates it and opens the pool.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 16,
        application_name: str = "pgfleet",
        connect_timeout_sec: int = 10,
        retry_timeout_sec: float = DEFAULT_RETRY_TIMEOUT_SEC,
        prepare_statements: bool = True,
        dead_link_timeout_sec: float = DEFAULT_DEAD_LINK_TIMEOUT_SEC,
        timeouts: SessionTimeouts = DEFAULT_TIMEOUTS,
    ) -> None:
        """``dead_link_timeout_sec`` and ``timeouts`` bound every connection of this database
        (pooled, LISTEN and dedicated ones): see :mod:`sysdb.links`."""
        self.url = url
        self.application_name = application_name  # its dedicated sessions add their purpose
        self.retry_timeout_sec = retry_timeout_sec
        # The server's clock as estimated here: synced at open, refreshed by every heartbeat.
        self.clock = DatabaseClock()
        self.timeouts = timeouts
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "application_name": application_name,
            "connect_timeout": connect_timeout_sec,
            # Server-side prepared statements break behind poolers in transaction mode.
            "prepare_threshold": 5 if prepare_statements else None,
            **dead_link_settings(dead_link_timeout_sec),
        }
        self._pool: ConnectionPool[DictConnection] = RecentFirstPool(
            url,
            connection_class=DictConnection,
            min_size=min(2, pool_size),
            max_size=pool_size,
            kwargs=self._connect_kwargs,
            open=False,
            name="pgfleet-sysdb",
            timeout=retry_timeout_sec,
            reconnect_timeout=retry_timeout_sec,
            configure=self._bound_session,
        )
        # Called after a statement succeeded only on a retry: a write that hands out ownership
        # may have committed unseen meanwhile (lost reply), so its orphan should be looked for.
        self.on_retried: Callable[[], None] | None = None

        # The time coordination runs on (liveness statements' "now", the local lease clocks):
        # the real clocks unless a test sets a FakeClock before building coordination objects.
        self.coordination_clock: Clock = SystemClock()
        # DBOS.sql_session: SQLAlchemy Sessions inside this database's transactions (below).
        self.sessions = SessionBinder()
        open_doors(self)

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, *, run_migrations: bool = True, application_schema: bool = False, wait_for_server: bool = True) -> None:
        """Create and migrate the database if needed, then open the pool.

        With ``application_schema`` this is an application database: only the table of
        ``@DBOS.transaction`` outputs is created in it. ``wait_for_server`` keeps trying a
        server that does not answer yet for ``retry_timeout_sec`` (an executor started while
        Postgres restarts); without it an unreachable server fails the open at once (a client,
        as DBOS's does: its caller is a person or a script waiting for an answer).
        """
        first_contact: Callable[[Callable[[], object]], object] = self.with_retries if wait_for_server else _call
        try:
            if run_migrations or application_schema:
                first_contact(lambda: ensure_database_exists(self.url))
                with self.connect(bounded=False) as conn:  # a migration may run long
                    if application_schema:
                        ensure_application_schema(conn)
                    else:
                        migrate(conn)
            self._pool.open(wait=True, timeout=self.retry_timeout_sec if wait_for_server else self._connect_kwargs["connect_timeout"])
            self.sync_clock()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailableError(
                f"cannot reach the system database at {describe_url(self.url)}: {exc}"
            ) from exc

    def sync_clock(self) -> None:
        """Observe the server's clock once (see :class:`DatabaseClock`)."""
        sent = self.clock.monotonic()
        rows = self._execute("database_clock")
        self.clock.observe(rows[0]["now_ms"], sent, self.clock.monotonic())

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()

    def connect(self, *, bounded: bool = True, **overrides: Any) -> DictConnection:
        """A new dedicated connection (not from the pool), for listeners, locks and heartbeats;
        with the session timeouts of pooled ones unless ``bounded`` is False."""
        kwargs = {**self._connect_kwargs, **overrides}
        conn = DictConnection.connect(self.url, **kwargs)
        if bounded:
            try:
                self._bound_session(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    def _bound_session(self, conn: DictConnection) -> None:
        # Once per new connection (the pool's configure hook), not per statement.
        if self.timeouts.enabled():
            self._set_timeouts(conn, self.timeouts.params())

    @staticmethod
    def _set_timeouts(conn: DictConnection, limits: Mapping[str, Any]) -> None:
        conn.execute(statement("set_session_timeouts"), limits)

    def listen(self, *channels: str) -> NotificationConnection:
        """A new dedicated connection subscribed to ``channels``."""
        return NotificationConnection(self.connect(application_name=with_purpose(self.application_name, "listener")), channels)

    # -- plumbing ----------------------------------------------------------------------------

    def with_retries(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` (statements on connections it takes from the pool), calling it again on a
        connection failure for up to ``retry_timeout_sec``; ``on_retried`` runs after a success
        that needed a retry. Raises :class:`DatabaseUnavailableError` when the time is up."""
        # The happy path pays for no retry machinery: build it only after a failure.
        try:
            return fn()
        except (psycopg.Error, PoolTimeout) as exc:
            if not is_connection_failure(exc):
                raise
            log.warning("system database unreachable; retrying", error=str(exc))
        result = self._retry(fn)
        if self.on_retried is not None:
            self.on_retried()
        return result

    def _retry(self, fn: Callable[[], T]) -> T:
        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "system database unreachable; retrying",
                attempt=state.attempt_number,
                error=str(exc),
            )

        try:
            for attempt in Retrying(
                retry=retry_if_exception(is_connection_failure),
                wait=wait_exponential(multiplier=0.05, max=2.0) + wait_random(0, 0.05),
                stop=stop_after_delay(self.retry_timeout_sec),
                before_sleep=log_retry,
                reraise=True,
            ):
                with attempt:
                    return fn()
        except (psycopg.Error, PoolTimeout) as exc:
            if not is_connection_failure(exc):
                raise
            raise DatabaseUnavailableError(
                f"the system database at {describe_url(self.url)} did not answer for "
                f"{self.retry_timeout_sec:.0f}s: {exc}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _execute(self, name: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> list[Row]:
        """Run the named statement with retries and return its rows (empty for none)."""

        def run() -> list[Row]:
            with PooledCheckout(self._pool) as conn:
                return conn.run_named(name, params).rows

        return self.with_retries(run)

    @staticmethod
    def _execute_on(conn: DictConnection, name: str, params: Mapping[str, Any]) -> list[Row]:
        """Run a named statement on a connection the caller holds (inside its transaction)."""
        return conn.run_named(name, params).rows

    @staticmethod
    def _execute_on_count(conn: DictConnection, name: str, params: Mapping[str, Any]) -> int:
        """Run a named statement on a connection the caller holds; how many rows it changed."""
        return conn.run_named(name, params).rowcount

    def pooled(self) -> AbstractContextManager[DictConnection]:
        """A connection from the pool for a few statements (a door's transaction), returned to
        the pool on exit. Not retried: wrap the whole use in :meth:`with_retries`."""
        return PooledCheckout(self._pool)

    def _execute_once(self, name: str, params: Mapping[str, Any]) -> list[Row]:
        """Run the named statement once on a pooled connection (the caller retries)."""
        with PooledCheckout(self._pool) as conn:
            return conn.run_named(name, params).rows

    def _execute_count_once(self, name: str, params: Mapping[str, Any]) -> int:
        """Run the named statement once on a pooled connection (the caller retries); how many
        rows it changed."""
        with PooledCheckout(self._pool) as conn:
            return conn.run_named(name, params).rowcount

    def _execute_count(self, name: str, params: Mapping[str, Any]) -> int:
        """Run the named statement with retries and return how many rows it changed."""

        def run() -> int:
            with PooledCheckout(self._pool) as conn:
                return conn.run_named(name, params).rowcount

        return self.with_retries(run)

    def _query(self, query: sql.Composed, params: Mapping[str, Any] | Sequence[Any]) -> list[Row]:
        """Run a composed (still parameterised) query with retries; for filtered listings."""

        def run() -> list[Row]:
            with PooledCheckout(self._pool) as conn:
                return conn.execute(query, params).fetchall()

        return self.with_retries(run)

    @contextmanager
    def transaction(self, isolation_level: str | None = None, *, before: Callable[[DictConnection], None] | None = None) -> Iterator[DictConnection]:
        """A pooled connection inside one transaction (``@DBOS.transaction`` bodies, whose
        ``DBOS.sql_session`` is ``self.sessions.session(conn)``: a SQLAlchemy Session inside
        this same transaction, which only this block commits). ``before(conn)`` runs on it
        first, autocommitted: what it writes stays even if the transaction rolls back."""
        with PooledCheckout(self._pool) as conn:
            if before is not None:
                before(conn)
            with conn.transaction():
                if isolation_level:
                    conn.execute(
                        sql.SQL("SET TRANSACTION ISOLATION LEVEL {}").format(sql.SQL(isolation_level))
                    )
                # User code runs here: it gets its own limits, not those of our short statements.
                user_limits = self.timeouts.for_user_transactions()
                if user_limits is not None:
                    self._set_timeouts(conn, user_limits)
                yield conn

    # -- queues (claims and wake-ups) -----------------------------------------------------

    def notify(self, channel: str, payload: str) -> None:
        """Send a NOTIFY (a wake-up hint; never the source of truth)."""
        self.with_retries(lambda: self._notify(channel, payload))

    def _notify(self, channel: str, payload: str) -> None:
        with PooledCheckout(self._pool) as conn:
            self.notify_on(conn, channel, payload)

    @staticmethod
    def notify_on(conn: DictConnection, channel: str, payload: str) -> None:
        """Send a NOTIFY in the caller's transaction: it is delivered when that commits."""
        conn.execute(statement("notify"), {"channel": channel, "payload": payload})
