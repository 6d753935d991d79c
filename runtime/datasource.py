"""``SQLAlchemyDatasource`` (DBOS 2.22+): transactions on a database of the application's, through
a SQLAlchemy engine, each one a checkpointed step of the calling workflow.

As DBOS's: ``ds = SQLAlchemyDatasource.create(url)`` makes the engine (``postgresql+psycopg``)
unless one is given, and the ``<schema>.datasource_outputs`` table ("dbos" by default);
``@ds.transaction()`` (or ``ds.run_tx_step(options, fn, ...)``) runs the body in one
transaction (SERIALIZABLE unless told) with ``ds.sql_session()`` its Session; inside a workflow
that is a step named as the function (or ``name=``), whose outcome is written in the same
transaction as the body's effects, so a replay returns it without running the body again.
Serialization failures and deadlocks run the transaction again with DBOS's backoff; a failed
body's error is recorded (after its rollback) and raised.

Unlike DBOS's, pgfleet's is fenced: the datasource transaction commits only while the system
database holds the workflow's status row FOR SHARE for this owner and epoch
(:func:`runtime.transactions.commit_holding_ownership`), so an execution that was taken over or
cancelled commits nothing; its checkpoint is written as that lock is released. A connection lost
under the body or the commit is retried after looking for the outcome it may have committed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import itertools
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from sysdb import is_connection_failure, now_ms
from sysdb.datasource_outputs import DatasourceOutputRow, DatasourceOutputs
from sysdb.sql_sessions import driver_error, is_serialization_conflict

from . import logs
from .context import WorkflowContext, current_workflow
from .errors import DBOSException, DBOSSerializationError
from .operations import NOT_RECORDED
from .serialization import SERIALIZATION_FORMAT, deserialize, deserialize_exception, serialize, serialize_exception
from .steps import record_attempt
from .transactions import (
    CONFLICT_BACKOFF,
    CONFLICT_FIRST_WAIT_SEC,
    CONFLICT_MAX_WAIT_SEC,
    CONTROL_ERRORS,
    ConnectionLost,
    commit_holding_ownership,
    run_attempts,
)

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["SQLAlchemyDatasource", "DatasourceOptions"]

# The Session of the datasource transaction running in this thread (``ds.sql_session()``).
_ds_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar("pgfleet_ds_session", default=None)


class DatasourceOptions(TypedDict, total=False):
    """``run_tx_step``'s options: the step's name, the transaction's isolation level."""

    name: str | None
    isolation_level: str | None


class _AlreadyRecorded(Exception):
    """Another execution of the workflow recorded this step first: its outcome counts."""


class SQLAlchemyDatasource:
    """A PostgreSQL database of the application's whose transactions are workflow steps."""

    def __init__(self, *, database_url: str, engine_kwargs: dict[str, Any], engine: sa.Engine | None, schema: str | None, serializer: Any) -> None:
        """Prefer :meth:`create`, which also creates the outputs table."""
        check_arguments(database_url, serializer)
        if engine is not None:
            logs.logger.info("Initializing SyncDatasource with custom engine")
            self.engine, self.created_engine = engine, False
        else:
            url = sa.make_url(database_url).set(drivername="postgresql+psycopg")
            logs.logger.info(f"Initializing DBOS SyncDatasource with URL: {url.render_as_string(hide_password=True)}")
            logs.logger.info(f"DBOS SyncDatasource engine parameters: {engine_kwargs}")
            self.engine, self.created_engine = sa.create_engine(url, **engine_kwargs), True
        self.schema = schema or "dbos"
        self.sessionmaker = sessionmaker(bind=self.engine)  # DBOS's attribute, for sessions outside transactions
        # What the outputs table holds values in: as DBOS's, this datasource's own serializer or
        # pickle (not the DBOS config's); the step's checkpoint uses the process's default.
        self.serializer = serializer
        self._outputs = DatasourceOutputs(self.schema)

    @staticmethod
    def create(
        database_url: str,
        engine_kwargs: dict[str, Any] | None = None,
        engine: sa.Engine | None = None,
        schema: str | None = None,
        serializer: Any = None,
    ) -> SQLAlchemyDatasource:
        """A datasource over ``database_url`` (or ``engine``), its outputs table created."""
        instance = SQLAlchemyDatasource(
            database_url=database_url, engine_kwargs=engine_kwargs or {}, engine=engine, schema=schema, serializer=serializer
        )
        instance.run_migrations()
        return instance

    def run_migrations(self) -> None:
        """Create ``<schema>.datasource_outputs`` if it does not exist."""
        with self.engine.begin() as conn:
            self._outputs.create(conn)

    def sql_session(self) -> Session:
        """The Session of the running datasource transaction."""
        session = _ds_session.get()
        if session is None:  # DBOS's assertion, word for word
            raise AssertionError("sql_session() must be called within a sync datasource transaction")
        return session

    def transaction(self, func: Callable[..., Any] | None = None, *, name: str | None = None, isolation_level: str = "SERIALIZABLE") -> Any:
        """``@ds.transaction`` / ``@ds.transaction(name=..., isolation_level=...)``."""

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            if inspect.iscoroutinefunction(f):
                raise DBOSException(f"SyncDatasource.transaction requires a non-coroutine function, but {f.__qualname__} is a coroutine")
            options: DatasourceOptions = {"isolation_level": isolation_level}
            if name is not None:
                options["name"] = name

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.run_tx_step(options, f, *args, **kwargs)

            return wrapper

        return decorator(func) if func is not None else decorator

    def run_tx_step(self, ds_options: DatasourceOptions | None, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` in a datasource transaction: inside a workflow, as its next step (exactly
        once, fenced); elsewhere, as a plain transaction (retried on serialization failures)."""
        name, level = parse_options(ds_options, func)
        if inspect.iscoroutinefunction(func):
            raise DBOSException(f"Function {name} is a coroutine; use AsyncDatasource.run_tx_step_async instead")
        ctx = current_workflow()
        if ctx is None or ctx.in_step or ctx.in_transaction:
            return self._unrecorded(level, func, args, kwargs)
        return self._step(ctx, name, level, func, args, kwargs)

    # -- a step of a workflow -------------------------------------------------------------------

    def _step(self, ctx: WorkflowContext, name: str, level: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        executor = ctx.executor
        function_id, recorded = executor.begin_operation(ctx, name)
        if recorded is not NOT_RECORDED:
            return recorded
        started = now_ms()
        earlier = functools.partial(self._committed_earlier, executor, ctx, function_id, name, started)
        attempt = functools.partial(self._attempt, executor, ctx, function_id, name, started, level, func, args, kwargs, itertools.count(1))
        ctx.step_id = function_id
        try:
            # ask_first: an execution that committed here and died before its checkpoint left
            # the outcome in the datasource only.
            return run_attempts(executor, executor.db.retry_timeout_sec, f"datasource transaction {name!r}", attempt, earlier,
                                ask_first=True)
        finally:
            ctx.step_id = None

    def _attempt(
        self, executor: Executor, ctx: WorkflowContext, function_id: int, name: str, started: int, level: str,
        func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], attempts: Iterator[int],
    ) -> Any:
        """One attempt: the body, its output row and (holding the workflow's ownership) the commit;
        then the checkpoint, written as the ownership lock is released."""
        done: dict[str, Any] = {}

        def begin() -> None:
            # The attempt ledger's row, right before the body (on the system database's pool,
            # not this datasource's): checked first, as a step body's is.
            executor.check_owned(ctx)
            record_attempt(executor, ctx, name, next(attempts), function_id=function_id)

        try:
            with contextlib.ExitStack() as held:

                def finish(conn: sa.Connection, value: Any) -> None:
                    done["output"] = serialize(value, what=f"the result of datasource transaction {name!r}")
                    text, fmt = self._encode(value, name)
                    if not self._outputs.record(
                        conn, workflow_id=ctx.workflow_id, step_id=function_id, output=text, error=None, serialization=fmt
                    ):
                        raise _AlreadyRecorded()
                    done["held"] = commit_holding_ownership(executor, ctx, held)

                executor.check_running(ctx)  # a lost, timed-out or shut-down execution runs no body
                value = self._transact(level, func, args, kwargs, finish, begin if executor.config.attempt_ledger else None)
                executor.checkpoint(ctx, function_id, name, output=done["output"], started_at_ms=started, connection=done["held"])
            return value
        except _AlreadyRecorded:
            found = self._committed_earlier(executor, ctx, function_id, name, started)
            if found is NOT_RECORDED:
                raise DBOSException(
                    f"Datasource step {function_id} of workflow {ctx.workflow_id} conflicted with a concurrent execution, "
                    "but no recorded result was found"
                ) from None
            return found
        except CONTROL_ERRORS:
            raise
        except Exception as exc:
            if is_serialization_conflict(exc):
                raise  # retried
            if connection_failed(exc):
                raise ConnectionLost(str(exc)) from exc  # retried: never the step's outcome
            self._record_error(executor, ctx, function_id, name, started, exc)
            raise

    def _record_error(self, executor: Executor, ctx: WorkflowContext, function_id: int, name: str, started: int, exc: Exception) -> None:
        """Record a failed body's error (its transaction rolled back) as DBOS does, in the
        outputs table and as the step's outcome, fenced like a commit."""
        recorded = serialize_exception(exc, SERIALIZATION_FORMAT)
        with contextlib.ExitStack() as held:
            with self.engine.begin() as conn:
                if not self._outputs.record(
                    conn, workflow_id=ctx.workflow_id, step_id=function_id, output=None, error=recorded, serialization=SERIALIZATION_FORMAT
                ):
                    return  # another execution recorded this step first
                sys_conn = commit_holding_ownership(executor, ctx, held)
            executor.checkpoint(ctx, function_id, name, error=serialize_exception(exc), started_at_ms=started, connection=sys_conn)

    def _committed_earlier(self, executor: Executor, ctx: WorkflowContext, function_id: int, name: str, started: int) -> Any:
        """The outcome recorded for this step in the datasource (checkpointed now and returned,
        or its error raised), or ``NOT_RECORDED``."""
        try:
            with self.engine.connect() as conn:
                row = self._outputs.get(conn, ctx.workflow_id, function_id)
        except Exception as exc:
            if connection_failed(exc):
                raise ConnectionLost(str(exc)) from exc
            raise
        if row is None:
            return NOT_RECORDED
        if row.error is not None:
            error = deserialize_exception(row.error, row.serialization)
            executor.checkpoint(ctx, function_id, name, error=serialize_exception(error), started_at_ms=started)
            raise error
        value = self._decode(row, name)
        executor.checkpoint(ctx, function_id, name, output=serialize(value, what=f"the result of {name!r}"), started_at_ms=started)
        return value

    def _encode(self, value: Any, name: str) -> tuple[str, str]:
        return encode_output(self.serializer, value, name)

    def _decode(self, row: DatasourceOutputRow, name: str) -> Any:
        return decode_output(self.serializer, row, name)

    # -- the transaction ------------------------------------------------------------------------

    def _transact(
        self, level: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        finish: Callable[[sa.Connection, Any], None] | None, begin: Callable[[], None] | None = None,
    ) -> Any:
        """Run the body in one transaction at ``level``; ``begin`` runs just before the body (the
        attempt ledger's row), ``finish`` writes the step's outcome in it (and holds ownership)
        just before the commit."""
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level=level)
            with conn.begin():
                # "rollback_only": the Session never commits the transaction (only the block
                # above does, after finish); a body's own commit() ends the Session's
                # transaction, and the next use of the Session raises DBOS's error.
                with Session(bind=conn, join_transaction_mode="rollback_only") as session, session.begin():
                    token = _ds_session.set(session)
                    try:
                        if begin is not None:
                            begin()
                        value = func(*args, **kwargs)
                        if finish is not None:
                            session.connection()  # DBOS records the outcome through the Session
                    finally:
                        _ds_session.reset(token)
                if finish is not None:
                    finish(conn, value)
        return value

    def _unrecorded(self, level: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Outside a workflow: the transaction alone, run again after a serialization failure."""
        wait = CONFLICT_FIRST_WAIT_SEC
        while True:
            try:
                return self._transact(level, func, args, kwargs, None)
            except Exception as exc:
                if not is_serialization_conflict(exc):
                    raise
            time.sleep(wait)
            wait = min(wait * CONFLICT_BACKOFF, CONFLICT_MAX_WAIT_SEC)


# -- shared with the async datasource (runtime.datasource_async) -----------------------------------


def check_arguments(database_url: str, serializer: Any) -> None:
    """Refuse, with a clear error, what a pgfleet datasource cannot be."""
    if database_url.startswith("sqlite"):
        raise DBOSException("pgfleet's datasources are PostgreSQL databases; SQLite is not supported")
    if serializer is not None and not all(callable(getattr(serializer, m, None)) for m in ("serialize", "deserialize", "name")):
        raise DBOSException(f"serializer {serializer!r} is not a Serializer (serialize(data), deserialize(text), name())")


def parse_options(ds_options: DatasourceOptions | None, func: Callable[..., Any]) -> tuple[str, str]:
    """A datasource step's name (the function's, unless named) and isolation level."""
    options = ds_options or {}
    return options.get("name") or func.__qualname__, options.get("isolation_level") or "SERIALIZABLE"


def encode_output(serializer: Any, value: Any, name: str) -> tuple[str, str]:
    """An output as the outputs table stores it, and the name of its format: as DBOS's, in the
    datasource's own serializer, or pickled when it has none."""
    if serializer is None:
        return serialize(value, fmt=SERIALIZATION_FORMAT, what=f"the result of datasource transaction {name!r}"), SERIALIZATION_FORMAT
    try:
        return serializer.serialize(value), serializer.name()
    except Exception as exc:
        raise DBOSSerializationError(f"cannot serialize the result of datasource transaction {name!r}: {exc}") from exc


def decode_output(serializer: Any, row: DatasourceOutputRow, name: str) -> Any:
    """The value an outputs-table row holds (read with the datasource's serializer if it wrote it)."""
    if serializer is not None and row.output is not None and row.serialization == serializer.name():
        return serializer.deserialize(row.output)
    return deserialize(row.output, row.serialization, what=f"output of {name!r}")


def connection_failed(exc: BaseException) -> bool:
    """The datasource's connection failed under a statement (not the statement itself)."""
    return (isinstance(exc, DBAPIError) and exc.connection_invalidated) or is_connection_failure(driver_error(exc))
