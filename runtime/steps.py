"""Steps, transactions and durable sleep: the checkpointed operations of a workflow.

Each takes the workflow's next step position (function id). On replay the recorded outcome is
returned (or its error raised) without running anything; otherwise the operation runs and its
outcome is written in one fenced round trip (``Executor.checkpoint`` →
``db.steps.record`` → ``sysdb/sql/record_step_output.sql``).
Called outside a workflow (or inside another step), a step is a plain function call.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from sysdb import is_connection_failure, now_ms
from sysdb.errors import DatabaseUnavailableError, SerializationConflict, UniqueKeyConflict
from sysdb.steps import StepRow, TransactionOutputRow

from . import metrics
from .context import WorkflowContext, current_workflow, sql_session
from .errors import DBOSMaxStepRetriesExceeded, DBOSSerializationError, DBOSWorkflowCancelledError, DBOSWorkflowFencedError
from .operations import NOT_RECORDED, ExecutorShutdown, replay_recorded
from .registry import RegisteredStep
from .serialization import PORTABLE_JSON, default_format, serialize, serialize_exception
from .step_status import StepStatus, attempting, running_step

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["run_step", "run_transaction", "durable_sleep", "durable_wake_time", "SLEEP_FUNCTION_NAME"]

SLEEP_FUNCTION_NAME = "DBOS.sleep"
# The longest pause between two attempts of a retried step.
MAX_RETRY_INTERVAL_SEC = 3600.0
# Errors that stop a workflow: never retried, never recorded as a step's outcome.
_CONTROL_ERRORS = (DBOSWorkflowFencedError, DBOSWorkflowCancelledError, ExecutorShutdown)


def _active_workflow() -> WorkflowContext | None:
    ctx = current_workflow()
    if ctx is None or ctx.in_step or ctx.in_transaction:
        return None
    return ctx


def run_step(executor: Executor, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run (or replay) one ``@DBOS.step`` call."""
    ctx = _active_workflow()
    if ctx is None:
        return step.func(*args, **kwargs)
    function_id, recorded = executor.begin_operation(ctx, step.name)
    if recorded is not NOT_RECORDED:
        return recorded
    started = now_ms()
    clock = time.perf_counter()
    ctx.step_id = function_id
    try:
        with running_step(function_id) as status:
            value = _call_with_retries(executor, ctx, step, args, kwargs, status)
    except _CONTROL_ERRORS:
        raise
    except Exception as exc:
        executor.checkpoint(ctx, function_id, step.name, error=serialize_exception(exc), started_at_ms=started)
        _observe("error", clock)
        raise
    finally:
        ctx.step_id = None
    try:
        output = serialize(value, what=f"the result of step {step.name!r}")
    except DBOSSerializationError as exc:
        # Recorded as the step's outcome so that a replay fails the same way.
        executor.checkpoint(ctx, function_id, step.name, error=serialize_exception(exc), started_at_ms=started)
        _observe("error", clock)
        raise
    executor.checkpoint(ctx, function_id, step.name, output=output, started_at_ms=started)
    _observe("success", clock)
    return value


def _observe(outcome: str, started: float) -> None:
    metrics.STEPS.labels(outcome).inc()
    metrics.STEP_SECONDS.observe(time.perf_counter() - started)


def _call_with_retries(
    executor: Executor, ctx: WorkflowContext, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any],
    status: StepStatus | None = None,
) -> Any:
    if not step.retries_allowed:
        # Every attempt first checks, locally, that this execution still holds its workflow
        # (lease, fence, generation): a member paused past its lease starts no body.
        executor.check_owned(ctx)
        return step.func(*args, **kwargs)
    attempts = 0

    def body(*a: Any, **kw: Any) -> Any:
        nonlocal attempts
        executor.check_owned(ctx)
        attempts += 1
        with attempting(status, attempts - 1, step.max_attempts):  # DBOS.step_status counts from 0
            return step.func(*a, **kw)

    errors: list[Exception] = []

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, _CONTROL_ERRORS) or not isinstance(exc, Exception):
            return False
        errors.append(exc)
        return step.should_retry(exc) if step.should_retry is not None else True

    def pause(seconds: float) -> None:
        # Sleep between attempts, but wake at once when the executor shuts down.
        if executor.stop_event.wait(seconds):
            raise ExecutorShutdown()

    def announce(state: RetryCallState) -> None:
        executor.log.warning(
            "step being automatically retried",
            step=step.name,
            attempt=state.attempt_number,
            max_attempts=step.max_attempts,
            error=repr(state.outcome.exception()) if state.outcome else None,
        )

    retrying = Retrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(step.max_attempts),
        wait=wait_exponential(multiplier=step.interval_seconds, exp_base=step.backoff_rate, max=MAX_RETRY_INTERVAL_SEC),
        sleep=pause,
        before_sleep=announce,
        retry_error_callback=lambda state: _exhausted(step, errors),
    )
    return retrying(body, *args, **kwargs)


def _exhausted(step: RegisteredStep, errors: list[Exception]) -> Any:
    raise DBOSMaxStepRetriesExceeded(step.name, step.max_attempts, errors)


def durable_sleep(executor: Executor, seconds: float) -> None:
    """``DBOS.sleep``: the wake-up time is checkpointed before sleeping, so a recovered
    workflow sleeps only what is left."""
    ctx = _active_workflow()
    if ctx is None:
        time.sleep(seconds)
        return
    executor.check_running(ctx)
    wake_at = durable_wake_time(executor, ctx, ctx.next_function_id(), seconds)
    while True:
        executor.check_running(ctx)  # once past its deadline, the workflow is cancelled here
        wait = wake_at - time.time()
        if wait <= 0:
            return
        if ctx.deadline_epoch_ms is not None:
            # The deadline is on the database clock, and check_running compares it so: wake by
            # that clock too, or a host clock ahead of it ends the sleep early and uncancelled.
            wait = min(wait, max(0.001, (ctx.deadline_epoch_ms - executor.db.clock.now_ms()) / 1000))
        if executor.stop_event.wait(wait):
            raise ExecutorShutdown()


def durable_wake_time(executor: Executor, ctx: WorkflowContext, function_id: int, seconds: float) -> float:
    """The wake-up time recorded at ``function_id`` (recording it now on a first execution).

    DBOS stores it as portable JSON epoch seconds, completed at the projected wake time; sleeps,
    and the timeouts of ``recv`` and ``get_event``, share it.
    """
    recorded = ctx.recorded_step(function_id)
    if recorded is not None:
        return float(replay_recorded(ctx, function_id, SLEEP_FUNCTION_NAME, recorded))
    wake_at = time.time() + max(0.0, float(seconds))
    executor.checkpoint(
        ctx,
        function_id,
        SLEEP_FUNCTION_NAME,
        output=json.dumps(wake_at),
        serialization=PORTABLE_JSON,
        completed_at_ms=int(wake_at * 1000),
    )
    return wake_at


def run_transaction(
    executor: Executor, step: RegisteredStep, isolation_level: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run (or replay) a ``@DBOS.transaction`` exactly once.

    On the system database, the body and its fenced checkpoint commit in one transaction. On a
    separate application database, the body commits with a row in its
    ``dbos.transaction_outputs`` (whose primary key admits one writer per position), and the
    checkpoint follows; a replay that finds the row there adopts it instead of running again.
    That row cannot check ownership (the application database cannot see the status row), so
    the commit happens while a system-database transaction holds the status row FOR SHARE for
    this owner and epoch (see :func:`_commit_holding_ownership`).
    """
    ctx = _active_workflow()
    database = executor.app_db or executor.db
    if ctx is None:
        with database.transaction(isolation_level) as conn:
            return _with_session(ctx, conn, step, args, kwargs)
    function_id, recorded = executor.begin_operation(ctx, step.name)
    if recorded is not NOT_RECORDED:
        return recorded
    started = now_ms()
    if executor.app_db is not None:
        committed = _committed_output(executor, ctx, function_id)
        if committed is not None:
            return _adopt(executor, ctx, function_id, step, committed, started)

    # Serialization failures are the database asking us to try again, and a connection that
    # failed under the body (a restarted server, a dead pooled connection) is no outcome of
    # the transaction: try again, on a fresh connection, after checking that the failed
    # attempt did not commit after all (its reply may be what was lost).
    try:
        for attempt in _transaction_retries(database):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    earlier = _committed_earlier(executor, ctx, function_id, step, started)
                    if earlier is not NOT_RECORDED:
                        return earlier
                return _attempt_transaction(executor, ctx, step, isolation_level, function_id, started, args, kwargs)
    except _ConnectionLost as exc:
        raise DatabaseUnavailableError(f"transaction {step.name!r} found no working database connection: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _attempt_transaction(
    executor: Executor, ctx: WorkflowContext, step: RegisteredStep, isolation_level: str, function_id: int,
    started: int, args: tuple[Any, ...], kwargs: dict[str, Any],
) -> Any:
    """One attempt of a workflow's transaction: run the body and commit it with its checkpoint
    (on a separate application database: commit it while the system database holds the
    workflow's ownership, see :func:`_commit_holding_ownership`)."""
    database = executor.app_db or executor.db
    conn = None
    try:
        with contextlib.ExitStack() as held:
            with database.transaction(isolation_level) as conn:
                executor.check_owned(ctx)  # a lost execution runs no transaction body
                value = _with_session(ctx, conn, step, args, kwargs)
                output = serialize(value, what=f"the result of transaction {step.name!r}")
                if executor.app_db is None:  # the checkpoint commits with the body
                    executor.checkpoint(ctx, function_id, step.name, output=output, started_at_ms=started, connection=conn)
                else:
                    database.steps.record_transaction_output(
                        conn, workflow_id=ctx.workflow_id, function_id=function_id, function_name=step.name,
                        executor_id=ctx.executor_id, output=output,
                    )
                    sys_conn = _commit_holding_ownership(executor, ctx, held)
            if executor.app_db is not None:  # committed while held: checkpoint, then release
                executor.checkpoint(ctx, function_id, step.name, output=output, started_at_ms=started, connection=sys_conn)
    except UniqueKeyConflict:
        if executor.app_db is None:
            raise
        # Another execution committed this position first: its effects count, not ours.
        committed = _committed_output(executor, ctx, function_id)
        assert committed is not None
        return _adopt(executor, ctx, function_id, step, committed, started)
    except (SerializationConflict, *_CONTROL_ERRORS):
        raise
    except Exception as exc:
        if is_connection_failure(exc) or (conn is not None and conn.broken):
            raise _ConnectionLost(str(exc)) from exc  # retried: never the step's outcome
        # The transaction rolled back; its failure is the step's recorded outcome.
        executor.checkpoint(ctx, function_id, step.name, error=serialize_exception(exc), started_at_ms=started)
        raise
    return value


def _transaction_retries(database: Any) -> Retrying:
    """Attempts of one transaction: up to 10 on serialization failures, and on connection
    failures for as long as the database's own statements are retried."""

    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, SerializationConflict):
            return state.attempt_number >= 10
        return state.seconds_since_start is not None and state.seconds_since_start >= database.retry_timeout_sec

    return Retrying(
        retry=retry_if_exception_type((SerializationConflict, _ConnectionLost)),
        stop=stop,
        wait=wait_exponential(multiplier=0.01, max=1.0),
        reraise=True,
    )


class _ConnectionLost(Exception):
    """A transaction attempt failed because its connection did (the user's body may have
    turned the driver's error into one of its own: the broken connection still says it)."""


def _committed_earlier(executor: Executor, ctx: WorkflowContext, function_id: int, step: RegisteredStep, started: int) -> Any:
    """The outcome an earlier attempt of this transaction committed (whose reply was lost), or
    ``NOT_RECORDED``."""
    if executor.app_db is not None:
        committed = _committed_output(executor, ctx, function_id)
        return NOT_RECORDED if committed is None else _adopt(executor, ctx, function_id, step, committed, started)
    recorded = executor.db.steps.load_outputs(ctx.workflow_id).get(function_id)
    return NOT_RECORDED if recorded is None else replay_recorded(ctx, function_id, step.name, recorded)


def _commit_holding_ownership(executor: Executor, ctx: WorkflowContext, held: contextlib.ExitStack) -> Any:
    """Called just before an application-database transaction commits: lock the workflow's
    status row FOR SHARE on a system-database connection, in a transaction that ``held`` keeps
    open across the application commit. If this owner and epoch no longer hold the row, this
    raises the fenced (or cancelled) error inside the application transaction, which rolls back.
    If they do, no takeover or cancel can commit (their UPDATE waits for the lock) until the
    checkpoint is written on the returned connection and ``held`` commits it. So the effects
    never commit after a cancel or takeover committed. A crash between the two commits leaves
    the application row without a checkpoint: the next owner adopts it (the primary key also
    stops a second writer). The lock is taken after the body, so a long body never holds up a
    takeover batch."""
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


def _with_session(ctx: WorkflowContext | None, conn: Any, step: RegisteredStep, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call a transaction body with ``DBOS.sql_session`` bound to its connection."""
    token = sql_session.set(conn)
    if ctx is not None:
        ctx.in_transaction = True
    try:
        return step.func(*args, **kwargs)
    finally:
        sql_session.reset(token)
        if ctx is not None:
            ctx.in_transaction = False
