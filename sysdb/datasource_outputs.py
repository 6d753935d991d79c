"""The door to a ``SQLAlchemyDatasource``'s ``<schema>.datasource_outputs`` table (DBOS 2.22+).

A datasource is a database of the application's, reached through a SQLAlchemy engine (the
application's own, or one made from its URL), not a :class:`~sysdb.SystemDatabase`: its
statements run on a SQLAlchemy ``Connection`` the caller holds inside its transaction
(``exec_driver_sql``, so any PostgreSQL driver's ``%(name)s`` parameters work), or on an
``AsyncConnection`` for an ``AsyncSQLAlchemyDatasource`` (the ``_async`` twins). The schema
is the datasource's own, so it is the one part of these statements not fixed in their text: it
is put in as a quoted identifier (``psycopg.sql.Identifier``), never as a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from psycopg import sql

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

from .statements import statement

__all__ = ["DatasourceOutputs", "DatasourceOutputRow"]

# A statement's text and its parameters.
_Call = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class DatasourceOutputRow:
    """A datasource step's recorded outcome (serialized text, in ``serialization``'s format)."""

    output: str | None
    error: str | None
    serialization: str | None


class DatasourceOutputs:
    """The statements of one datasource's outputs table, in its schema."""

    def __init__(self, schema: str) -> None:
        if not schema:
            raise ValueError("a datasource's schema name must not be empty")
        self.schema = schema
        self._texts: dict[str, str] = {}

    def _text(self, name: str) -> str:
        text = self._texts.get(name)
        if text is None:
            text = sql.SQL(statement(name)).format(schema=sql.Identifier(self.schema)).as_string()
            self._texts[name] = text
        return text

    @staticmethod
    def _run(conn: sa.Connection, text: str, params: dict[str, Any] | None = None) -> list[Any]:
        result = conn.exec_driver_sql(text, params)
        return list(result.all()) if result.returns_rows else []

    @staticmethod
    async def _run_async(conn: AsyncConnection, text: str, params: dict[str, Any] | None = None) -> list[Any]:
        result = await conn.exec_driver_sql(text, params)
        return list(result.all()) if result.returns_rows else []

    # Each statement is named once, below: the sync and the async doors run the same texts.

    def _creation(self) -> tuple[str, ...]:
        return (self._text("lock_datasource_migration"), self._text("create_datasource_schema"), self._text("create_datasource_outputs"))

    def _recording(self, workflow_id: str, step_id: int, output: str | None, error: str | None, serialization: str | None) -> _Call:
        params = {"workflow_id": workflow_id, "step_id": step_id, "output": output, "error": error, "serialization": serialization}
        return self._text("record_datasource_output"), params

    def _lookup(self, workflow_id: str, step_id: int) -> _Call:
        return self._text("get_datasource_output"), {"workflow_id": workflow_id, "step_id": step_id}

    def create(self, conn: sa.Connection) -> None:
        """Create the schema and the table if they do not exist (inside ``conn``'s transaction,
        serialised against other executors creating them at the same moment)."""
        for text in self._creation():
            self._run(conn, text)

    async def create_async(self, conn: AsyncConnection) -> None:
        """:meth:`create` on an asyncio connection."""
        for text in self._creation():
            await self._run_async(conn, text)

    def record(
        self, conn: sa.Connection, *, workflow_id: str, step_id: int, output: str | None, error: str | None, serialization: str | None
    ) -> bool:
        """Record a step's outcome in ``conn``'s transaction; False if it was already recorded."""
        return bool(self._run(conn, *self._recording(workflow_id, step_id, output, error, serialization)))

    async def record_async(
        self, conn: AsyncConnection, *, workflow_id: str, step_id: int, output: str | None, error: str | None, serialization: str | None
    ) -> bool:
        """:meth:`record` on an asyncio connection."""
        return bool(await self._run_async(conn, *self._recording(workflow_id, step_id, output, error, serialization)))

    def get(self, conn: sa.Connection, workflow_id: str, step_id: int) -> DatasourceOutputRow | None:
        """The outcome recorded for a step, if any."""
        return _row(self._run(conn, *self._lookup(workflow_id, step_id)))

    async def get_async(self, conn: AsyncConnection, workflow_id: str, step_id: int) -> DatasourceOutputRow | None:
        """:meth:`get` on an asyncio connection."""
        return _row(await self._run_async(conn, *self._lookup(workflow_id, step_id)))


def _row(rows: list[Any]) -> DatasourceOutputRow | None:
    if not rows:
        return None
    output, error, serialization = rows[0]
    return DatasourceOutputRow(output=output, error=error, serialization=serialization)
