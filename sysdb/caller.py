"""A transaction that the caller owns: ``DBOSClient.send_in_transaction`` and friends write into
it, so their rows commit (or roll back) with the caller's own work.

The caller brings its connection (in ``runtime``: a SQLAlchemy ``Connection`` or ``Session``, or a
psycopg connection) wrapped as a :class:`CallerTransaction`; a door runs its named statements on
it and never begins, commits, rolls back or retries: all of that is the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .statements import statement

__all__ = ["CallerTransaction", "FOREIGN_KEY_VIOLATION", "is_foreign_key_violation", "violated_constraint"]

# SQLSTATE of a foreign key violation (a message to a workflow that does not exist).
FOREIGN_KEY_VIOLATION = "23503"


class CallerTransaction(Protocol):
    """Runs one statement (text and named parameters, psycopg's ``%(name)s`` style, which
    psycopg2 shares) inside the caller's open transaction and returns its rows as dicts (none
    for a statement that returns none). Errors are the driver's own (DB-API) exceptions."""

    def run(self, query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]: ...


def _driver_error(exc: BaseException) -> BaseException:
    # A SQLAlchemy error carries the driver's as ``orig``.
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def is_foreign_key_violation(exc: BaseException) -> bool:
    """Whether a driver error (psycopg's ``sqlstate``, psycopg2's ``pgcode``, either possibly
    wrapped by SQLAlchemy) is a foreign key violation."""
    error = _driver_error(exc)
    return (getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)) == FOREIGN_KEY_VIOLATION


def violated_constraint(exc: BaseException) -> str | None:
    """The constraint a driver error names (psycopg and psycopg2 both say it in ``diag``)."""
    diag = getattr(_driver_error(exc), "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name if isinstance(name, str) else None


def _run_in(caller: CallerTransaction, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run the named statement in the caller's transaction (for the doors alone)."""
    return caller.run(statement(name), params)
