"""The door to a ``SQLAlchemyDatasource``'s ``<schema>.datasource_outputs`` table (DBOS 2.22+).

A datasource is a database of the application's, reached through a SQLAlchemy engine (the
application's own, or one made from its URL), not a :class:`~sysdb.SystemDatabase`: its
statements run on a SQLAlchemy ``Connection`` the caller holds inside its transaction
(``exec_driver_sql``, so any PostgreSQL driver's ``%(name)s`` parameters work). The schema is
the datasource's own, so it is the one part of these statements not fixed in their text: it is
put in as a quoted identifier (``psycopg.sql.Identifier``), never as a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from psycopg import sql

from .statements import statement

__all__ = ["DatasourceOutputs", "DatasourceOutputRow"]


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

    def _run(self, conn: sa.Connection, name: str, params: dict[str, Any] | None = None) -> list[Any]:
        result = conn.exec_driver_sql(self._text(name), params)
        return list(result.all()) if result.returns_rows else []

    def create(self, conn: sa.Connection) -> None:
        """Create the schema and the table if they do not exist (inside ``conn``'s transaction,
        serialised against other executors creating them at the same moment)."""
        self._run(conn, "lock_datasource_migration")
        self._run(conn, "create_datasource_schema")
        self._run(conn, "create_datasource_outputs")

    def record(
        self, conn: sa.Connection, *, workflow_id: str, step_id: int, output: str | None, error: str | None, serialization: str | None
    ) -> bool:
        """Record a step's outcome in ``conn``'s transaction; False if it was already recorded."""
        rows = self._run(conn, "record_datasource_output", {
            "workflow_id": workflow_id, "step_id": step_id, "output": output, "error": error, "serialization": serialization,
        })
        return bool(rows)

    def get(self, conn: sa.Connection, workflow_id: str, step_id: int) -> DatasourceOutputRow | None:
        """The outcome recorded for a step, if any."""
        rows = self._run(conn, "get_datasource_output", {"workflow_id": workflow_id, "step_id": step_id})
        if not rows:
            return None
        output, error, serialization = rows[0]
        return DatasourceOutputRow(output=output, error=error, serialization=serialization)
