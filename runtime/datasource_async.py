"""``AsyncSQLAlchemyDatasource`` (DBOS 2.22+): :mod:`runtime.datasource` for ``async def``
transaction bodies, on SQLAlchemy's asyncio engine (``create_async_engine`` over psycopg's async
driver).

As DBOS's: ``ds = await AsyncSQLAlchemyDatasource.create(url)`` makes the engine and the
``<schema>.datasource_outputs`` table; ``@ds.transaction()`` (or ``await ds.run_tx_step_async(
options, fn, ...)``) awaits the body in one transaction (SERIALIZABLE unless told) whose
``AsyncSession`` is ``ds.sql_session()``. Inside an async workflow that is a step: its position
is taken on the loop when it is called (so transactions gathered with ``asyncio.gather`` number
the same at every execution), its outcome is written in the transaction with the body's effects
and replayed from there, serialization failures and deadlocks run it again (DBOS's backoff, with
``asyncio.sleep``), and a failed body's error is recorded after its rollback. Outside a workflow
(or inside a step) it is a plain transaction, run again after a serialization failure.

The application database is awaited on the loop; the system database is not, its calls run in
the executor's worker threads (:func:`runtime.aio.in_thread`). Fenced like the sync datasource:
the commit happens while the system database holds the workflow's status row FOR SHARE for this
owner and epoch (:func:`runtime.transactions.commit_holding_ownership`), so an execution that
was taken over or cancelled commits nothing. One worker thread takes that lock, has the loop
commit, writes the checkpoint on the locked connection and releases it: the thread waits for
the one commit's round trip. Were the lock held with no thread (taken in one, released in
another), commits in flight could hold every pool connection while the threads that would
release them waited for one. Once the commit has begun, cancelling the awaiting task takes
effect only after the checkpoint is written (or the attempt failed), never between the two.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, AsyncTransaction, async_sessionmaker, create_async_engine
from tenacity import AsyncRetrying

from sysdb import now_ms
from sysdb.datasource_outputs import DatasourceOutputs
from sysdb.errors import DatabaseUnavailableError
from sysdb.sql_sessions import is_serialization_conflict

from . import logs
from .aio import active_workflow, in_thread
from .async_steps import sleep_unless_stopped
from .context import WorkflowContext
from .datasource import DatasourceOptions, check_arguments, connection_failed, decode_output, encode_output, parse_options
from .errors import DBOSException
from .operations import NOT_RECORDED
from .serialization import SERIALIZATION_FORMAT, deserialize_exception, serialize, serialize_exception
from .steps import record_attempt
from .transactions import (
    CONFLICT_BACKOFF,
    CONFLICT_FIRST_WAIT_SEC,
    CONFLICT_MAX_WAIT_SEC,
    CONTROL_ERRORS,
    ConnectionLost,
    attempt_schedule,
    commit_holding_ownership,
)

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["AsyncSQLAlchemyDatasource"]

# The AsyncSession of the async datasource transaction running in this task (``ds.sql_session()``).
_ds_session: contextvars.ContextVar[AsyncSession | None] = contextvars.ContextVar("pgfleet_async_ds_session", default=None)
# How often a worker thread waiting for the loop to commit looks whether the loop still runs.
LOOP_CHECK_SEC = 1.0


class _AlreadyRecorded(Exception):
    """Another execution of the workflow recorded this step first: its outcome counts."""


class AsyncSQLAlchemyDatasource:
    """A PostgreSQL database of the application's whose ``async def`` transactions are workflow steps."""

    def __init__(
        self, *, database_url: str, engine_kwargs: dict[str, Any], engine: AsyncEngine | None, schema: str | None, serializer: Any
    ) -> None:
        """Prefer :meth:`create`, which also creates the outputs table."""
        check_arguments(database_url, serializer)
        if engine is not None:
            if not isinstance(engine, AsyncEngine):
                raise DBOSException(
                    f"AsyncSQLAlchemyDatasource needs an AsyncEngine (sqlalchemy.ext.asyncio.create_async_engine), not {engine!r}"
                )
            logs.logger.info("Initializing AsyncDatasource with custom engine")
            self.engine, self.created_engine = engine, False
        else:
            url = sa.make_url(database_url).set(drivername="postgresql+psycopg")  # psycopg's async driver
            logs.logger.info(f"Initializing DBOS AsyncDatasource with URL: {url.render_as_string(hide_password=True)}")
            logs.logger.info(f"DBOS AsyncDatasource engine parameters: {engine_kwargs}")
            self.engine, self.created_engine = create_async_engine(url, **engine_kwargs), True
        self.schema = schema or "dbos"
        self.sessionmaker = async_sessionmaker(bind=self.engine)  # DBOS's attribute, for sessions outside transactions
        self.serializer = serializer  # of the outputs table's values (see SQLAlchemyDatasource)
        self._outputs = DatasourceOutputs(self.schema)

    @staticmethod
    async def create(
        database_url: str,
        engine_kwargs: dict[str, Any] | None = None,
        engine: AsyncEngine | None = None,
        schema: str | None = None,
        serializer: Any = None,
    ) -> AsyncSQLAlchemyDatasource:
        """A datasource over ``database_url`` (or ``engine``), its outputs table created."""
        instance = AsyncSQLAlchemyDatasource(
            database_url=database_url, engine_kwargs=engine_kwargs or {}, engine=engine, schema=schema, serializer=serializer
        )
        await instance.run_migrations()
        return instance

    async def run_migrations(self) -> None:
        """Create ``<schema>.datasource_outputs`` if it does not exist."""
        async with self.engine.begin() as conn:
            await self._outputs.create_async(conn)

    def sql_session(self) -> AsyncSession:
        """The AsyncSession of the running async datasource transaction."""
        session = _ds_session.get()
        if session is None:  # DBOS's assertion, word for word
            raise AssertionError("sql_session() must be called within an async datasource transaction")
        return session

    def transaction(self, func: Callable[..., Any] | None = None, *, name: str | None = None, isolation_level: str = "SERIALIZABLE") -> Any:
        """``@ds.transaction`` / ``@ds.transaction(name=..., isolation_level=...)`` on an ``async def``."""

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            if not inspect.iscoroutinefunction(f):
                raise DBOSException(f"AsyncDatasource.transaction requires a coroutine function, but {f.__qualname__} is not")
            options: DatasourceOptions = {"isolation_level": isolation_level}
            if name is not None:
                options["name"] = name

            @functools.wraps(f)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.run_tx_step_async(options, f, *args, **kwargs)

            return wrapper

        return decorator(func) if func is not None else decorator

    async def run_tx_step_async(
        self, ds_options: DatasourceOptions | None, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, **kwargs: Any
    ) -> Any:
        """Await ``func`` in a datasource transaction: inside a workflow, as its next step (exactly
        once, fenced); elsewhere, as a plain transaction (retried on serialization failures)."""
        name, level = parse_options(ds_options, func)
        if not inspect.iscoroutinefunction(func):
            raise DBOSException(f"Function {name} must be a coroutine function for AsyncDatasource")
        ctx = active_workflow()
        if ctx is None:
            return await self._unrecorded(level, func, args, kwargs)
        executor = ctx.executor
        function_id, recorded = executor.begin_operation(ctx, name)  # on the loop, in call order
        if recorded is not NOT_RECORDED:
            return recorded
        step = _Step(self, executor, ctx, function_id, name, now_ms())
        ctx.step_id = function_id  # in this task only: gathered transactions each have their own
        try:
            return await _run_attempts(executor, f"datasource transaction {name!r}", lambda: step.attempt(level, func, args, kwargs),
                                       step.committed_earlier)
        finally:
            ctx.step_id = None

    async def _body(self, conn: AsyncConnection, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                    recording: bool) -> Any:
        """Await the body with ``ds.sql_session()`` an AsyncSession inside ``conn``'s transaction."""
        # "rollback_only": the session never commits the transaction (its owner does); a body's
        # own commit() ends the session's transaction, and the next use raises DBOS's error.
        async with AsyncSession(bind=conn, join_transaction_mode="rollback_only") as session, session.begin():
            token = _ds_session.set(session)
            try:
                value = await func(*args, **kwargs)
                if recording:
                    await session.connection()  # DBOS records the outcome through the session
            finally:
                _ds_session.reset(token)
        return value

    async def _unrecorded(self, level: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Outside a workflow: the transaction alone, run again after a serialization failure."""
        wait = CONFLICT_FIRST_WAIT_SEC
        while True:
            try:
                async with self.engine.connect() as conn:
                    await conn.execution_options(isolation_level=level)
                    async with conn.begin():
                        return await self._body(conn, func, args, kwargs, False)
            except Exception as exc:
                if not is_serialization_conflict(exc):
                    raise
            await asyncio.sleep(wait)
            wait = min(wait * CONFLICT_BACKOFF, CONFLICT_MAX_WAIT_SEC)


@dataclass
class _Step:
    """One call of a datasource transaction inside a workflow, at its position."""

    ds: AsyncSQLAlchemyDatasource
    executor: Executor
    ctx: WorkflowContext
    function_id: int
    name: str
    started: int
    attempts: int = 0  # bodies started, for the attempt ledger

    async def attempt(self, level: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One attempt: the body and its output row, then the fenced commit and the checkpoint."""
        self.executor.check_running(self.ctx)  # a lost, timed-out or shut-down execution runs no body
        try:
            async with self.ds.engine.connect() as conn:
                await conn.execution_options(isolation_level=level)
                tx = await conn.begin()
                try:
                    if self.executor.config.attempt_ledger:
                        await self._record_start()
                    value = await self.ds._body(conn, func, args, kwargs, True)
                    output = serialize(value, what=f"the result of datasource transaction {self.name!r}")
                    text, fmt = encode_output(self.ds.serializer, value, self.name)
                    if not await self.ds._outputs.record_async(
                        conn, workflow_id=self.ctx.workflow_id, step_id=self.function_id, output=text, error=None, serialization=fmt
                    ):
                        raise _AlreadyRecorded()
                    await self._commit(tx, output=output)
                finally:
                    await _roll_back_unless_ended(tx)
            return value
        except _AlreadyRecorded:
            found = await self.committed_earlier()
            if found is NOT_RECORDED:
                raise DBOSException(
                    f"Datasource step {self.function_id} of workflow {self.ctx.workflow_id} conflicted with a concurrent execution, "
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
            await self._record_error(exc)
            raise

    async def _record_start(self) -> None:
        """The attempt ledger's row, right before the body: checked first, as a step body's is,
        and written in a worker thread (on the system database's pool, not this datasource's)."""
        self.executor.check_owned(self.ctx)
        self.attempts += 1
        await in_thread(self.executor.async_work, record_attempt, self.executor, self.ctx, self.name, self.attempts,
                        function_id=self.function_id)

    async def _record_error(self, exc: Exception) -> None:
        """Record a failed body's error (its transaction rolled back) as DBOS does, in the
        outputs table and as the step's outcome, fenced like a commit."""
        recorded = serialize_exception(exc, SERIALIZATION_FORMAT)
        async with self.ds.engine.connect() as conn:
            tx = await conn.begin()
            try:
                if await self.ds._outputs.record_async(
                    conn, workflow_id=self.ctx.workflow_id, step_id=self.function_id, output=None, error=recorded,
                    serialization=SERIALIZATION_FORMAT,
                ):  # else another execution recorded this step first
                    await self._commit(tx, error=serialize_exception(exc))
            finally:
                await _roll_back_unless_ended(tx)

    async def _commit(self, tx: AsyncTransaction, *, output: str | None = None, error: str | None = None) -> None:
        """Commit ``tx`` holding the workflow's ownership, then checkpoint (see the module docstring)."""
        loop = asyncio.get_running_loop()
        work = in_thread(self.executor.async_work, self._commit_holding_ownership, loop, tx.commit, output, error)
        await _finish_uncancelled(work)

    def _commit_holding_ownership(
        self, loop: asyncio.AbstractEventLoop, commit: Callable[[], Coroutine[Any, Any, None]], output: str | None, error: str | None
    ) -> None:
        """In a worker thread: lock the status row FOR SHARE (raising, and so committing nothing,
        if this execution lost the workflow), have the loop commit, checkpoint, release."""
        with contextlib.ExitStack() as held:
            sys_conn = commit_holding_ownership(self.executor, self.ctx, held)
            _wait_on_loop(loop, commit())
            self.executor.checkpoint(self.ctx, self.function_id, self.name, output=output, error=error, started_at_ms=self.started,
                                     connection=sys_conn)

    async def committed_earlier(self) -> Any:
        """The outcome recorded for this step in the datasource (checkpointed now and returned,
        or its error raised), or ``NOT_RECORDED``."""
        try:
            async with self.ds.engine.connect() as conn:
                row = await self.ds._outputs.get_async(conn, self.ctx.workflow_id, self.function_id)
        except Exception as exc:
            if connection_failed(exc):
                raise ConnectionLost(str(exc)) from exc
            raise
        if row is None:
            return NOT_RECORDED
        if row.error is not None:
            failure = deserialize_exception(row.error, row.serialization)
            await self._checkpoint(error=serialize_exception(failure))
            raise failure
        value = decode_output(self.ds.serializer, row, self.name)
        await self._checkpoint(output=serialize(value, what=f"the result of {self.name!r}"))
        return value

    async def _checkpoint(self, **outcome: Any) -> None:
        await in_thread(self.executor.async_work, self.executor.checkpoint, self.ctx, self.function_id, self.name,
                        started_at_ms=self.started, **outcome)


async def _run_attempts(
    executor: Executor, what: str, attempt: Callable[[], Awaitable[Any]], committed_earlier: Callable[[], Awaitable[Any]]
) -> Any:
    """:func:`runtime.transactions.run_attempts` awaited: again after a serialization conflict
    (no limit) and after a lost connection (for the database's retry timeout, first asking
    ``committed_earlier`` whether the lost attempt committed after all); pauses on the loop.
    ``committed_earlier`` is asked before the first attempt too: an execution that committed
    and died before its checkpoint left the outcome in the datasource only."""

    async def pause(seconds: float) -> None:
        await sleep_unless_stopped(executor, seconds)

    lost = True
    try:
        async for tries in AsyncRetrying(sleep=pause, **attempt_schedule(executor.db.retry_timeout_sec)):
            with tries:
                if lost:
                    earlier = await committed_earlier()
                    if earlier is not NOT_RECORDED:
                        return earlier
                try:
                    return await attempt()
                except ConnectionLost:
                    lost = True
                    raise
                except BaseException:
                    lost = False
                    raise
    except ConnectionLost as exc:
        raise DatabaseUnavailableError(f"{what} found no working database connection: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


async def _roll_back_unless_ended(tx: AsyncTransaction) -> None:
    """Roll back a transaction that did not commit; a broken connection's is gone already."""
    if tx.is_active:
        with contextlib.suppress(Exception):
            await tx.rollback()


def _wait_on_loop(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
    """From a worker thread: run ``coro`` on ``loop`` (its connection belongs there) and wait for
    its end; give up if the loop stops running first (its process is stopping)."""
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    while True:
        try:
            future.result(timeout=LOOP_CHECK_SEC)
            return
        except concurrent.futures.TimeoutError:
            if not loop.is_running():
                future.cancel()
                raise RuntimeError("the event loop stopped while a datasource transaction was committing") from None


async def _finish_uncancelled(work: Coroutine[Any, Any, None]) -> None:
    """Await ``work`` to its end even if this task is cancelled meanwhile (the cancellation is
    raised afterwards): the commit and its checkpoint are not to be parted."""
    task = asyncio.ensure_future(work)
    interrupted: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                break
            interrupted = exc
    if interrupted is not None:
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what the caller gets
        raise interrupted
    task.result()
