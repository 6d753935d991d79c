"""The hot path's statements, sent straight through libpq on psycopg's connection.

A 3-step workflow sends five statements: its start (``insert_workflow``), one checkpoint per
step (``record_step_output``) and its finish (``finish_workflow``). Through a psycopg cursor each
pays for the cursor's Python set-up: the query converted again, every parameter dumped through
the adapters map, the prepared-statement cache consulted and the result wrapped. Measured on
the bench machine that was about 30 µs of client CPU per statement, a sixth of a 3-step
workflow's client CPU (``ops/bench/RESULTS.md``, "Direct statements", issue #14).

The statements in :data:`DIRECT_STATEMENTS` skip it. Each is converted once to ``$n``
placeholders, prepared once per connection under a ``pgfleet_`` name (psycopg's own
auto-prepared statements are ``_pg3_*``), and run with ``PQsendQueryPrepared`` through the same
waiting generator a cursor uses (``psycopg.generators.execute`` under ``Connection.wait``), so
Ctrl-C cancellation, a dead link and the connection's lock behave exactly as on the cursor path,
and a server error is raised as psycopg's own class for its SQLSTATE. With prepared statements
off (a pooler in transaction mode), and inside a transaction, the text is sent unnamed instead
(parsed each time, still without the cursor's set-up).

What the shortcut accepts is deliberately narrow. Parameters are ``None``, ``str``, ``int`` or
``float``, sent as untyped text for the server to type from the statement; another type (what
these statements' callers never pass) is refused with a ``TypeError`` naming the parameter.
Result columns are integers, booleans or text. A connection whose client encoding is not UTF-8,
that is in pipeline mode, or that would need psycopg to BEGIN a transaction first, uses the
cursor.
``tests/test_direct_statements.py`` runs every statement here both ways and compares.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors, generators, pq

from .statements import statement

if TYPE_CHECKING:
    from .connection import DictConnection

__all__ = ["DIRECT_STATEMENTS", "DirectStatement", "StatementResult", "direct_statement", "run_direct"]

# The statements every workflow sends on its own path, once or once per step.
DIRECT_STATEMENTS = frozenset({"insert_workflow", "record_step_output", "finish_workflow", "record_step_attempt"})

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")

# Result column types the shortcut decodes (pg_type OIDs), and how.
_DECODERS: dict[int, Callable[[bytes], Any]] = {
    16: lambda raw: raw == b"t",  # bool
    20: int, 21: int, 23: int,  # int8, int2, int4
    25: lambda raw: raw.decode("utf-8"), 1043: lambda raw: raw.decode("utf-8"),  # text, varchar
}


@dataclass(frozen=True)
class StatementResult:
    """What one statement returned: its rows as dicts (none for a statement without a result
    set) and how many rows it wrote or returned."""

    rows: list[dict[str, Any]]
    rowcount: int


@dataclass(frozen=True)
class DirectStatement:
    """One of :data:`DIRECT_STATEMENTS` in libpq's form: ``$n`` text and the parameter names
    in ``$n`` order (a name used twice is one parameter)."""

    name: str
    prepared_name: bytes
    text: bytes
    param_names: tuple[str, ...]

    @classmethod
    def convert(cls, name: str, query: str) -> DirectStatement:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        text = _PLACEHOLDER.sub(number, query)
        if "%" in text.replace("%%", ""):
            raise ValueError(f"statement {name!r} has a placeholder other than %(name)s")
        return cls(name, f"pgfleet_{name}".encode(), text.replace("%%", "%").encode("utf-8"), tuple(names))


@functools.cache
def direct_statement(name: str) -> DirectStatement | None:
    """The libpq form of statement ``name``, or None when it is not one of the direct ones."""
    return DirectStatement.convert(name, statement(name)) if name in DIRECT_STATEMENTS else None


def usable_on(conn: DictConnection) -> bool:
    """Whether ``conn`` can take the shortcut: open, UTF-8, not in pipeline mode, and either
    autocommit or inside a transaction (psycopg would BEGIN one first; the cursor does that)."""
    pgconn = conn.pgconn
    return (
        pgconn.status == pq.ConnStatus.OK
        and pgconn.pipeline_status == pq.PipelineStatus.OFF
        and (conn.autocommit or pgconn.transaction_status != pq.TransactionStatus.IDLE)
        and pgconn.parameter_status(b"client_encoding") == b"UTF8"
    )


def _dump(stmt: DirectStatement, params: Mapping[str, Any]) -> list[bytes | None]:
    values: list[bytes | None] = []
    for key in stmt.param_names:
        value = params[key]
        kind = type(value)
        if value is None:
            values.append(None)
        elif kind is str or isinstance(value, str):  # the exact type first: the common case
            if "\x00" in value:  # libpq sends C strings: a NUL would cut the value short
                raise psycopg.DataError(f"parameter {key!r} of {stmt.name}: PostgreSQL text cannot contain NUL (0x00) characters")
            values.append(value.encode("utf-8"))
        elif kind is int or kind is float:
            values.append(repr(value).encode("ascii"))
        elif isinstance(value, (int, float)) and kind is not bool:  # an IntEnum, a float subclass
            values.append(repr(int(value) if isinstance(value, int) else float(value)).encode("ascii"))
        else:
            raise TypeError(f"parameter {key!r} of {stmt.name} is a {kind.__name__}: direct statements take None, str, int or float")
    return values


def _decode(stmt: DirectStatement, result: pq.abc.PGresult) -> StatementResult:
    status = result.status
    if status == pq.ExecStatus.COMMAND_OK:
        return StatementResult([], result.command_tuples or 0)
    if status != pq.ExecStatus.TUPLES_OK:
        raise psycopg.InterfaceError(f"{stmt.name} returned an unexpected result: {pq.ExecStatus(status).name}")
    columns = []
    for index in range(result.nfields):
        decoder = _DECODERS.get(result.ftype(index))
        if decoder is None:
            raise psycopg.InterfaceError(f"{stmt.name} returns column {index} of type oid {result.ftype(index)}, which direct statements do not decode")
        columns.append(((result.fname(index) or b"").decode("utf-8"), decoder))
    rows = []
    for row in range(result.ntuples):
        values = {}
        for index, (column, decoder) in enumerate(columns):
            raw = result.get_value(row, index)
            values[column] = None if raw is None else decoder(raw)
        rows.append(values)
    return StatementResult(rows, result.ntuples)


def _result(conn: DictConnection) -> pq.abc.PGresult:
    """The sent statement's result once the server answered; a server error is raised as
    psycopg's class for its SQLSTATE."""
    result: pq.abc.PGresult = conn.wait(generators.execute(conn.pgconn))[-1]
    if result.status == pq.ExecStatus.FATAL_ERROR:
        raise errors.error_from_result(result, encoding=conn.info.encoding)
    return result


def _run_prepared(conn: DictConnection, stmt: DirectStatement, values: list[bytes | None]) -> pq.abc.PGresult:
    """Run ``stmt`` by its prepared name, preparing it on this session first if needed."""
    if stmt.name not in conn.direct_prepared:
        conn.pgconn.send_prepare(stmt.prepared_name, stmt.text)
        _result(conn)
        conn.direct_prepared.add(stmt.name)
    conn.pgconn.send_query_prepared(stmt.prepared_name, values)
    return _result(conn)


def run_direct(conn: DictConnection, stmt: DirectStatement, params: Mapping[str, Any]) -> StatementResult:
    """Run ``stmt`` on ``conn`` (which :func:`usable_on` accepted). Raises psycopg's errors, as
    the cursor path would."""
    values = _dump(stmt, params)
    with conn.lock:
        # Inside a transaction the statement goes unnamed: a prepared one can be gone (see
        # below), and failing there would abort the caller's transaction.
        if conn.prepare_threshold is None or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            conn.pgconn.send_query_params(stmt.text, values)
            return _decode(stmt, _result(conn))
        try:
            result = _run_prepared(conn, stmt, values)
        except errors.InvalidSqlStatementName:
            # The session lost its prepared statements: psycopg itself sends DEALLOCATE ALL
            # after a ROLLBACK, DROP or ALTER once it holds prepared statements of its own
            # (psycopg/_preparing.py), and so does anyone's DISCARD ALL. Autocommit, so nothing
            # ran: prepare again and run once more.
            conn.direct_prepared.discard(stmt.name)
            result = _run_prepared(conn, stmt, values)
    return _decode(stmt, result)
