"""The caller's own transaction, for ``DBOSClient.send_in_transaction``,
``send_bulk_in_transaction`` and ``enqueue_in_transaction``.

DBOS takes a SQLAlchemy ``Connection`` or ORM ``Session`` on the system database, inside a
transaction the caller begins and ends; pgfleet takes those too (with either psycopg or
psycopg2 underneath: the statements are run through SQLAlchemy's ``exec_driver_sql``, so
SQLAlchemy's own transaction bookkeeping stays right), and also a plain psycopg connection.
Nothing here begins, commits or rolls back anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from sysdb.caller import CallerTransaction

from .errors import DBOSException

__all__ = ["caller_transaction"]


class _SQLAlchemyConnection:
    """Statements on a SQLAlchemy ``Connection`` (a ``Session``'s, for a session)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def run(self, query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        result = self._connection.exec_driver_sql(query, dict(params))
        if not result.returns_rows:
            return []
        return [dict(row._mapping) for row in result]


class _DriverConnection:
    """Statements on a DB-API connection whose cursors take ``%(name)s`` parameters (psycopg)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def run(self, query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(query, params)
            if cursor.description is None:
                return []
            columns = [column[0] for column in cursor.description]
            return [row if isinstance(row, dict) else dict(zip(columns, row)) for row in cursor.fetchall()]
        finally:
            cursor.close()


def _from_package(value: Any, package: str) -> bool:
    """Whether ``value``'s class (or one it derives from, for a subclass of the caller's) is
    ``package``'s."""
    return any(klass.__module__.split(".")[0] == package for klass in type(value).__mro__)


def _sqlalchemy_connection(conn_or_session: Any) -> Any | None:
    """The SQLAlchemy ``Connection`` behind a Connection or Session (None: neither)."""
    if not _from_package(conn_or_session, "sqlalchemy"):
        return None  # SQLAlchemy is not imported here unless the caller uses it
    orm = importlib.import_module("sqlalchemy.orm")
    engine = importlib.import_module("sqlalchemy.engine")
    if isinstance(conn_or_session, orm.Session):
        return conn_or_session.connection()  # begins the session's transaction if it has none yet
    if isinstance(conn_or_session, engine.Connection):
        return conn_or_session
    return None


def caller_transaction(conn_or_session: Any, what: str) -> CallerTransaction:
    """The caller's transaction behind ``conn_or_session``, for ``what`` (the method's name)."""
    connection = _sqlalchemy_connection(conn_or_session)
    if connection is not None:
        return _SQLAlchemyConnection(connection)
    if _from_package(conn_or_session, "psycopg") and callable(getattr(conn_or_session, "cursor", None)):
        return _DriverConnection(conn_or_session)
    raise DBOSException(
        f"{what} takes a SQLAlchemy Connection or Session (or a psycopg connection) on the system database, "
        f"got {type(conn_or_session).__name__}"
    )
