"""SQLAlchemy sessions over pgfleet's own connections: ``DBOS.sql_session`` inside a
``@DBOS.transaction``.

DBOS hands a transaction body a ``sqlalchemy.orm.Session``. pgfleet's guarantees need that
session to run inside the very transaction pgfleet commits: the body's writes, the
``dbos.transaction_outputs`` row (separate application database) or the fenced checkpoint
(system database) commit or roll back together, on a connection of pgfleet's pool.

Two shapes were possible, and this is the second:

(a) a SQLAlchemy engine (its own pool, ``postgresql+psycopg``) over the application database,
    with pgfleet's statements run on its driver connection. But without an
    ``application_database_url`` transactions run on the *system* database, whose fenced
    checkpoint would then go through SQLAlchemy's pool too (the system database stays on
    psycopg), the pool would lose pgfleet's session bounds (dead-link keepalives, timeouts,
    application_name) unless duplicated, and SQLAlchemy would own the commit that fencing must
    control.
(b) a Session over a stand-in for the pooled psycopg connection pgfleet already holds inside
    its transaction (:class:`LentConnection`), through an engine whose pool never opens a
    connection of its own. One pool, one transaction, pgfleet's commit.

The hazards of (b), and how the stand-in answers them: SQLAlchemy ends transactions and
returns connections by calling ``commit``/``rollback``/``close`` on the DBAPI connection -- here
they do nothing, so only pgfleet's ``with conn.transaction()`` ends the transaction (a body's
own ``session.commit()`` still closes the Session's transaction, so DBOS's
``InvalidRequestError`` is raised when the body's context ends, and nothing is committed).
pgfleet's connections return dict rows; SQLAlchemy wants tuples, so the stand-in's cursors are
made with ``tuple_row``. SQLAlchemy's psycopg dialect registers adapters on the connections it
opens (json, hstore); the stand-in offers a private copy of the adapters, so nothing leaks into
pgfleet's pooled connections (native hstore is off: SQLAlchemy's HSTORE type parses the text).
Changing autocommit or the isolation level through SQLAlchemy is refused: the transaction is
already open, at the level ``@DBOS.transaction(isolation_level=...)`` set.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.adapt import AdaptersMap
from psycopg.rows import tuple_row

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from .database import DictConnection

__all__ = ["LentConnection", "SessionBinder", "driver_error", "is_serialization_conflict"]

# The connection being lent to SQLAlchemy in this thread (read by the engine's creator).
_lending: contextvars.ContextVar[LentConnection | None] = contextvars.ContextVar("pgfleet_lending", default=None)


def driver_error(exc: BaseException) -> BaseException:
    """The driver's error inside a SQLAlchemy one (``DBAPIError.orig``), else ``exc``.
    (Read by attribute: SQLAlchemy is imported only once a Session is made, and a process
    that never makes one should not pay for importing it.)"""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, psycopg.Error) else exc


def is_serialization_conflict(exc: BaseException) -> bool:
    """A serialization failure (40001) or a deadlock (40P01), raised by psycopg or wrapped by
    SQLAlchemy: the transaction may simply run again (DBOS retries both)."""
    return isinstance(driver_error(exc), (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected))


def _refuse(what: str) -> psycopg.ProgrammingError:
    return psycopg.ProgrammingError(
        f"cannot change {what} inside a DBOS transaction: pgfleet opened it (set the level with "
        "@DBOS.transaction(isolation_level=...))"
    )


class LentConnection:
    """A pooled psycopg connection, inside pgfleet's open transaction, as SQLAlchemy's DBAPI
    connection for one transaction body (see the module docstring)."""

    def __init__(self, conn: DictConnection) -> None:
        self._conn = conn
        self.adapters = AdaptersMap(conn.adapters)
        self._notice_handlers: list[Callable[[Any], None]] = []

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("row_factory", tuple_row)
        return self._conn.cursor(*args, **kwargs)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        """``psycopg.Connection.execute`` for code that reaches the driver connection."""
        return self.cursor().execute(query, params, **kwargs)

    def commit(self) -> None:
        """Nothing: pgfleet commits the transaction (with its checkpoint) after the body."""

    def rollback(self) -> None:
        """Nothing: a failing body's error reaches pgfleet's transaction, which rolls back."""

    def close(self) -> None:
        """Nothing: the connection goes back to pgfleet's pool when its transaction ends."""

    def add_notice_handler(self, handler: Callable[[Any], None]) -> None:
        self._notice_handlers.append(handler)
        self._conn.add_notice_handler(handler)

    def remove_notice_handler(self, handler: Callable[[Any], None]) -> None:
        self._notice_handlers.remove(handler)
        self._conn.remove_notice_handler(handler)

    def release(self) -> None:
        """Take back what SQLAlchemy attached to the pooled connection (its notice logger)."""
        for handler in self._notice_handlers:
            self._conn.remove_notice_handler(handler)
        self._notice_handlers.clear()

    @property
    def info(self) -> psycopg.ConnectionInfo:
        return self._conn.info

    @property
    def closed(self) -> bool:
        return self._conn.closed

    @property
    def broken(self) -> bool:
        return self._conn.broken

    @property
    def autocommit(self) -> bool:
        return False  # a transaction is open, as SQLAlchemy expects of a DBAPI connection

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        raise _refuse("autocommit")

    @property
    def isolation_level(self) -> Any:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        raise _refuse("the isolation level")

    @property
    def read_only(self) -> Any:
        return self._conn.read_only

    @read_only.setter
    def read_only(self, value: Any) -> None:
        raise _refuse("read_only")

    @property
    def deferrable(self) -> Any:
        return self._conn.deferrable

    @deferrable.setter
    def deferrable(self, value: Any) -> None:
        raise _refuse("deferrable")


def _lent_connection() -> LentConnection:
    """The engine's creator: the connection this thread is lending right now."""
    lent = _lending.get()
    if lent is None:
        raise psycopg.ProgrammingError("DBOS.sql_session is only usable inside the @DBOS.transaction that opened it")
    return lent


class SessionBinder:
    """Sessions over one database's pooled connections; its engine (one per database, as the
    dialect learns the server's version) is made on first use and never opens a connection."""

    def __init__(self) -> None:
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    def _engine_once(self) -> sa.Engine:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        with self._lock:
            if self._engine is None:
                self._engine = sa.create_engine(
                    "postgresql+psycopg://", creator=_lent_connection, poolclass=NullPool, use_native_hstore=False
                )
            return self._engine

    @contextmanager
    def session(self, conn: DictConnection) -> Iterator[Session]:
        """A Session inside ``conn``'s open transaction. Leaving the block flushes it (its
        errors, and DBOS's error for a body that committed itself, are raised here); the
        transaction stays open for the caller to finish."""
        from sqlalchemy.orm import Session

        lent = LentConnection(conn)
        try:
            token = _lending.set(lent)
            try:
                bound = self._engine_once().connect()  # calls the creator now, on this thread
            finally:
                _lending.reset(token)
            with bound, Session(bind=bound) as session, session.begin():
                yield session
        finally:
            lent.release()
