"""What every door of ``sysdb`` shares: the database it opens onto, where its statements run, and
how a row becomes a typed value.

A door is one concept's typed interface over its named statements (River's driver over its
queries, Procrastinate's ``JobManager`` over ``queries.sql``): its methods take typed arguments,
build the statement's parameters, and return frozen dataclasses. Nothing outside ``sysdb``
names a statement, writes a parameter key or reads a column.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .database import Row, SystemDatabase

__all__ = ["Door", "StatementRunner", "row_to"]

T = TypeVar("T")
D = TypeVar("D", bound="Door")


class StatementRunner(Protocol):
    """Where a door's statements run: the pool (``SystemDatabase``, with retries) or a
    ``DedicatedSession`` (one connection of a background loop, no retries)."""

    def _execute(self, name: str, params: dict[str, Any] | None = None) -> list[Row]: ...


class Door:
    """A door onto one concept; statements run on the pool unless bound to a session (:meth:`on`)."""

    def __init__(self, db: SystemDatabase, runner: StatementRunner | None = None) -> None:
        self._db = db
        self._run: StatementRunner = runner if runner is not None else db

    def on(self: D, session: StatementRunner) -> D:
        """This door with its statements run on ``session`` (a heartbeat's or the leader's own
        connection: a session advisory lock lives exactly as long as that connection)."""
        return type(self)(self._db, session)

    def _execute(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        return self._run._execute(name, params)

    def _now(self) -> datetime.datetime | None:
        """The "now" of liveness statements (``coalesce(%(now)s, now())``): None in production."""
        return self._db.coordination_clock.database_now()


def row_to(cls: type[T], row: Mapping[str, Any]) -> T:
    """A dataclass from a row whose columns are named as its fields (a field with a default may
    be absent from the row; an extra column is ignored)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return cls(**{f.name: row[f.name] for f in fields if f.name in row})
