"""``@DBOS.transaction``: a checkpointed database transaction whose body sees DBOS's
``DBOS.sql_session``, a SQLAlchemy ``Session`` inside the very transaction pgfleet commits.

Exactly once. On the system database the body and its fenced checkpoint commit in one
transaction. On a separate application database the body commits with a row in its
``dbos.transaction_outputs`` (whose primary key admits one writer per position) while the
system database holds the workflow's status row FOR SHARE for this owner and epoch
(:func:`commit_holding_ownership`), and the checkpoint follows on that held connection; a
replay that finds the row adopts it instead of running again.

Retries, as DBOS's: a serialization failure or a deadlock (40001, 40P01) runs the transaction
again, with DBOS's backoff (1 ms growing 1.5x to 2 s), for as long as it takes. A connection that
failed under the body is no outcome either: the transaction runs again on a fresh connection,
after checking that the failed attempt did not commit after all (its reply may be what was
lost), for as long as the database's own statements are retried. Every attempt first checks,
locally, that this execution still holds its workflow. Any other error rolls the transaction
back and is the step's recorded outcome. :mod:`runtime.datasource` shares these pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tenacity import RetryCallState, Retrying, retry_if_exception

from sysdb import is_connection_failure, now_ms
from sysdb.errors import DatabaseUnavailableError, UniqueKeyConflict
from sysdb.sql_sessions import driver_error, is_serialization_conflict
from sysdb.steps import StepRow, TransactionOutputRow

from . import logs
from .context import WorkflowContext, active_workflow, sql_session
from .errors import DBOSWorkflowCancelledError, DBOSWorkflowFencedError
from .operations import NOT_RECORDED, ExecutorShutdown, replay_recorded
from .registry import RegisteredStep
from .serialization import default_format, serialize, serialize_exception
from .steps import record_attempt

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["run_transaction", "run_attempts", "attempt_schedule", "commit_holding_ownership", "ConnectionLost", "CONTROL_ERRORS", "log_commit_inside",
           "warn_if_on_loop"]

# Errors that stop a workflow: never retried, never recorded as a transaction's outcome.
CONTROL_ERRORS = (DBOSWorkflowFencedError, DBOSWorkflowCancelledError, ExecutorShutdown)
# DBOS's backoff between attempts of a transaction that hit a serialization failure.
CONFLICT_FIRST_WAIT_SEC, CONFLICT_BACKOFF, CONFLICT_MAX_WAIT_SEC = 0.001, 1.5, 2.0


def warn_if_on_loop(name: str) -> None:
    """A sync transaction called on a running event loop blocks it: warn in DBOS's words."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    logs.logger.warning(
        f"Transaction {name} was called while an event loop is running. Invoke transactions from an async "
        "context using asyncio.to_thread to avoid blocking the event loop."
    )


def run_transaction(
    executor: Executor, step: RegisteredStep, isolation_level: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run (or replay) a ``@DBOS.transaction`` inside a workflow, exactly once (see the module
    docstring); inside a step it is a plain transaction."""
    ctx = active_workflow()
    database = executor.app_db or executor.db
    if ctx is None:
        with database.transaction(isolation_level) as conn:
            return _with_session(None, database, conn, step, args, kwargs)
    function_id, recorded = executor.begin_operation(ctx, step.name)
    if recorded is not NOT_RECORDED:
        executor.log.debug(f"Replaying transaction, id: {function_id}, name: {step.name}")  # DBOS's words
        return recorded
    started = now_ms()
    executor.log.debug(f"Running transaction, id: {function_id}, name: {step.name}")
    if executor.app_db is not None:
        committed = _committed_output(executor, ctx, function_id)
        if committed is not None:
            return _adopt(executor, ctx, function_id, step, committed, started)
    before = _ledger_entry(executor, ctx, step, function_id)
    attempt = functools.partial(_attempt_transaction, executor, ctx, step, isolation_level, function_id, started, args, kwargs, before)
    earlier = functools.partial(_committed_earlier, executor, ctx, function_id, step, started)
    return run_attempts(executor, database.retry_timeout_sec, f"transaction {step.name!r}", attempt, earlier)


def run_attempts(
    executor: Executor, retry_timeout_sec: float, what: str, attempt: Callable[[], Any], committed_earlier: Callable[[], Any],
    *, ask_first: bool = False,
) -> Any:
    """Call ``attempt`` until it returns or fails for good: again after a serialization
    conflict (DBOS's backoff, no limit) and after a :class:`ConnectionLost` (for up to
    ``retry_timeout_sec``; first asking ``committed_earlier`` whether the lost attempt committed
    after all: anything but ``NOT_RECORDED`` is that attempt's outcome). ``ask_first``: ask it
    before the first attempt too (a lost connection there is retried like an attempt's)."""
    lost = ask_first
    try:
        for tries in _retries(executor, retry_timeout_sec):
            with tries:
                if lost:
                    earlier = committed_earlier()
                    if earlier is not NOT_RECORDED:
                        return earlier
                try:
                    return attempt()
                except ConnectionLost:
                    lost = True
                    raise
                except BaseException:
                    lost = False
                    raise
    except ConnectionLost as exc:
        raise DatabaseUnavailableError(f"{what} found no working database connection: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def attempt_schedule(retry_timeout_sec: float) -> dict[str, Any]:
    """Which failures of a transaction attempt run it again, for how long, after what pause:
    tenacity's ``retry``, ``stop`` and ``wait`` (for :func:`run_attempts` and its async twin in
    :mod:`runtime.datasource_async`)."""

    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and is_serialization_conflict(exc):
            return False  # DBOS retries these for as long as they happen
        return state.seconds_since_start is not None and state.seconds_since_start >= retry_timeout_sec

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and is_serialization_conflict(exc):
            return min(CONFLICT_FIRST_WAIT_SEC * CONFLICT_BACKOFF ** (state.attempt_number - 1), CONFLICT_MAX_WAIT_SEC)
        return min(0.01 * 2 ** (state.attempt_number - 1), 1.0)

    retry = retry_if_exception(lambda exc: isinstance(exc, ConnectionLost) or is_serialization_conflict(exc))
    return {"retry": retry, "stop": stop, "wait": wait, "reraise": True}


def _retries(executor: Executor, retry_timeout_sec: float) -> Retrying:
    def pause(seconds: float) -> None:
        # Wait between attempts, but wake at once when the executor shuts down.
        if executor.stop_event.wait(seconds):
            raise ExecutorShutdown()

    return Retrying(sleep=pause, **attempt_schedule(retry_timeout_sec))


def _ledger_entry(executor: Executor, ctx: WorkflowContext, step: RegisteredStep, function_id: int) -> Callable[[Any], None] | None:
    """With ``attempt_ledger`` on, what runs on each attempt's connection before its transaction
    begins: the ownership check, then the attempt's ledger row (counting from 1). On the
    system database it is written on that very connection, autocommitted: it stays if the
    transaction rolls back, and the attempt needs no second connection from the pool it holds
    one of (attempts holding them all while waiting for another would deadlock)."""
    if not executor.config.attempt_ledger:
        return None
    attempts = itertools.count(1)

    def before(conn: Any) -> None:
        executor.check_owned(ctx)
        record_attempt(executor, ctx, step.name, next(attempts), function_id=function_id,
                       connection=conn if executor.app_db is None else None)

    return before


def _attempt_transaction(
    executor: Executor, ctx: WorkflowContext, step: RegisteredStep, isolation_level: str, function_id: int,
    started: int, args: tuple[Any, ...], kwargs: dict[str, Any], before: Callable[[Any], None] | None = None,
) -> Any:
    """One attempt of a workflow's transaction: run the body and commit it with its checkpoint
    (on a separate application database: commit it while the system database holds the
    workflow's ownership, see :func:`commit_holding_ownership`)."""
    database = executor.app_db or executor.db
    conn = None
    executor.check_running(ctx)  # shut down or past its deadline: no further attempt
    try:
        with contextlib.ExitStack() as held:
            with database.transaction(isolation_level, before=before) as conn:
                executor.check_owned(ctx)  # a lost execution runs no transaction body (checked last)
                value = _with_session(ctx, database, conn, step, args, kwargs)
                output = serialize(value, what=f"the result of transaction {step.name!r}")
                if executor.app_db is None:  # the checkpoint commits with the body
                    executor.checkpoint(ctx, function_id, step.name, output=output, started_at_ms=started, connection=conn)
                else:
                    database.steps.record_transaction_output(
                        conn, workflow_id=ctx.workflow_id, function_id=function_id, function_name=step.name,
                        executor_id=ctx.executor_id, output=output,
                    )
                    sys_conn = commit_holding_ownership(executor, ctx, held)
            if executor.app_db is not None:  # committed while held: checkpoint, then release
                executor.checkpoint(ctx, function_id, step.name, output=output, started_at_ms=started, connection=sys_conn)
    except UniqueKeyConflict:  # pgfleet's own row (the body's errors come wrapped by SQLAlchemy)
        if executor.app_db is None:
            raise
        # Another execution committed this position first: its effects count, not ours.
        committed = _committed_output(executor, ctx, function_id)
        assert committed is not None
        return _adopt(executor, ctx, function_id, step, committed, started)
    except CONTROL_ERRORS:
        raise
    except Exception as exc:
        if is_serialization_conflict(exc):
            raise  # retried
        if is_connection_failure(driver_error(exc)) or (conn is not None and conn.broken):
            raise ConnectionLost(str(exc)) from exc  # retried: never the step's outcome
        log_commit_inside(executor, "transaction", step.name, exc)
        # The transaction rolled back; its failure is the step's recorded outcome.
        executor.checkpoint(ctx, function_id, step.name, error=serialize_exception(exc), started_at_ms=started)
        raise
    return value


class ConnectionLost(Exception):
    """A transaction attempt failed because its connection did (the user's body may have
    turned the driver's error into one of its own: the broken connection still says it)."""


def log_commit_inside(executor: Executor, kind: str, name: str, exc: BaseException) -> None:
    """DBOS's hint when a body ended its own transaction (SQLAlchemy's InvalidRequestError)."""
    from sqlalchemy.exc import InvalidRequestError  # loaded already: the body had a Session

    if isinstance(exc, InvalidRequestError):
        executor.log.error(f"InvalidRequestError in {kind} {name}  Hint: Do not call commit() or rollback() within a DBOS transaction.")


def _committed_earlier(executor: Executor, ctx: WorkflowContext, function_id: int, step: RegisteredStep, started: int) -> Any:
    """The outcome an earlier attempt of this transaction committed (whose reply was lost), or
    ``NOT_RECORDED``."""
    if executor.app_db is not None:
        committed = _committed_output(executor, ctx, function_id)
        return NOT_RECORDED if committed is None else _adopt(executor, ctx, function_id, step, committed, started)
    recorded = executor.db.steps.load_outputs(ctx.workflow_id).get(function_id)
    return NOT_RECORDED if recorded is None else replay_recorded(ctx, function_id, step.name, recorded)


def commit_holding_ownership(executor: Executor, ctx: WorkflowContext, held: contextlib.ExitStack) -> Any:
    """Called just before a transaction on another database (the application database, a
    datasource) commits: lock the workflow's status row FOR SHARE on a system-database
    connection, in a transaction that ``held`` keeps open across that commit. If this owner and
    epoch no longer hold the row, this raises the fenced (or cancelled) error inside the other
    transaction, which rolls back. If they do, no takeover or cancel can commit (their UPDATE
    waits for the lock) until the checkpoint is written on the returned connection and ``held``
    commits it. So the effects never commit after a cancel or takeover committed. A crash
    between the two commits leaves the other database's output row without a checkpoint: the
    next owner adopts it (its primary key also stops a second writer). The lock is taken after
    the body, so a long body never holds up a takeover batch."""
    with executor.fenced_write(ctx):
        return held.enter_context(executor.db.workflows.holding_ownership(ctx.workflow_id, ctx.executor_id, ctx.owner_epoch))


def _committed_output(executor: Executor, ctx: WorkflowContext, function_id: int) -> TransactionOutputRow | None:
    assert executor.app_db is not None
    return executor.app_db.steps.transaction_output(ctx.workflow_id, function_id)


def _adopt(
    executor: Executor, ctx: WorkflowContext, function_id: int, step: RegisteredStep, committed: TransactionOutputRow, started: int
) -> Any:
    """Checkpoint (and return) a transaction output that an earlier execution committed."""
    recorded = StepRow(
        function_id=function_id, function_name=committed.function_name, output=committed.output, error=None,
        serialization=default_format(),  # transaction outputs are in the default format
    )
    value = replay_recorded(ctx, function_id, step.name, recorded)
    executor.checkpoint(ctx, function_id, step.name, output=committed.output, started_at_ms=started)
    return value


def _with_session(
    ctx: WorkflowContext | None, database: Any, conn: Any, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Call a transaction body with ``DBOS.sql_session`` a SQLAlchemy Session inside ``conn``'s
    transaction; the Session is flushed when the body returns (see :mod:`sysdb.sql_sessions`)."""
    with database.sessions.session(conn) as session:
        token = sql_session.set(session)
        if ctx is not None:
            ctx.in_transaction = True
        try:
            value = step.func(*args, **kwargs)
            # DBOS writes the output through the Session next: if the body ended the
            # Session's transaction (commit() or rollback()), that raises SQLAlchemy's
            # InvalidRequestError, and so does this (it costs no round trip otherwise).
            session.connection()
            return value
        finally:
            sql_session.reset(token)
            if ctx is not None:
                ctx.in_transaction = False
