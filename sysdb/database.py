"""The system database: a connection pool and one method per named statement.

``SystemDatabase`` is the only door to Postgres for ``runtime`` and ``cluster``. It speaks in
plain values (ids, epochs, serialized text) and knows nothing of Python functions. Every write
that belongs to a running workflow is *fenced*: it names the owner executor and the ownership
epoch, and succeeds only while the workflow row still names both (see ``OwnershipLostError``).

Connection failures are retried with exponential backoff (tenacity) for up to
``retry_timeout_sec``; nothing pings a connection before using it, so the happy path of a step
checkpoint is exactly one round trip.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from .assignments import Assignments
from .channels import EVENTS_CHANNEL
from .claims import Claims
from .clock import Clock, DatabaseClock, SystemClock
from .errors import (
    DatabaseUnavailableError,
    DeduplicatedError,
    DuplicateCheckpointError,
    NoSuchWorkflowError,
    OwnershipLostError,
)
from .fleet import Fleet
from .leadership import Leadership
from .links import SessionTimeouts, dead_link_settings
from .logs import get_logger
from .members import Members
from .migrate import ensure_application_schema, ensure_database_exists, migrate
from .probe import Probe
from .statements import statement
from .takeover import Takeover
from .urls import describe_url

if False:  # typing only
    from .listener import NotificationConnection  # noqa: F401

__all__ = ["SystemDatabase", "Row", "StepOutput", "is_connection_failure"]

log = get_logger("pgfleet.sysdb")

Row = dict[str, Any]
# Every connection pgfleet opens to the system database returns rows as dicts (dict_row).
DictConnection = psycopg.Connection[DictRow]
T = TypeVar("T")

# How long a statement keeps being retried while the database is unreachable.
DEFAULT_RETRY_TIMEOUT_SEC = 60.0
# A connection whose link has been silent this long fails (TCP keepalives / user timeout).
DEFAULT_DEAD_LINK_TIMEOUT_SEC = 10.0
# Server-side limits of pgfleet's sessions (sysdb/links.py). Our statements are short: the
# statement timeout is only a backstop for one stuck behind a lock; our transactions never
# sit idle, so a session idle in one is a paused or cut-off client whose locks must go.
# @DBOS.transaction bodies (user code) get no statement limit and a generous idle one.
DEFAULT_TIMEOUTS = SessionTimeouts(
    statement_timeout_sec=120.0,
    idle_in_transaction_timeout_sec=5.0,
    user_statement_timeout_sec=None,
    user_idle_in_transaction_timeout_sec=60.0,
)
# How many ownership epochs one round trip draws (see reserve_epoch).
EPOCH_BLOCK = 32

# The key of step rows: a retry that meets it on its own step found its own committed write.
STEP_KEY_CONSTRAINT = "operation_outputs_pkey"


def now_ms() -> int:
    """The current time in epoch milliseconds, the unit of every DBOS timestamp column."""
    return int(time.time() * 1000)


def is_connection_failure(exc: BaseException) -> bool:
    """True for an error that says the connection (or the pool) failed, not the statement:
    such a statement may be retried on a fresh connection."""
    # OperationalError covers a refused connect, a dropped socket and an admin shutdown;
    # PoolTimeout means the pool could not hand out a working connection in time; a session
    # ended for idling in a transaction is gone as well (its client was paused).
    # A closed pool is our own shutdown, not an outage: retrying it would only delay the end.
    # A cancelled statement or a lock wait that timed out is the statement's own outcome.
    if isinstance(exc, psycopg.errors.IdleInTransactionSessionTimeout):
        return True
    return isinstance(exc, (psycopg.OperationalError, PoolTimeout)) and not isinstance(
        exc, (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable, PoolClosed)
    )


class StepOutput(dict[str, Any]):
    """A recorded step (``operation_outputs`` row) as a dict with attribute-free access."""


class SystemDatabase:
    """A pool of connections to the system database plus its statements.

    ``open()`` creates the database if it does not exist, migrates it and opens the pool.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 16,
        application_name: str = "pgfleet",
        connect_timeout_sec: int = 10,
        retry_timeout_sec: float = DEFAULT_RETRY_TIMEOUT_SEC,
        prepare_statements: bool = True,
        dead_link_timeout_sec: float = DEFAULT_DEAD_LINK_TIMEOUT_SEC,
        timeouts: SessionTimeouts = DEFAULT_TIMEOUTS,
    ) -> None:
        """``dead_link_timeout_sec`` and ``timeouts`` bound every connection of this database
        (pooled, LISTEN and dedicated ones): see :mod:`sysdb.links`."""
        self.url = url
        self.retry_timeout_sec = retry_timeout_sec
        # The server's clock as estimated here: synced at open, refreshed by every heartbeat.
        self.clock = DatabaseClock()
        self.timeouts = timeouts
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "application_name": application_name,
            "connect_timeout": connect_timeout_sec,
            # Server-side prepared statements break behind poolers in transaction mode.
            "prepare_threshold": 5 if prepare_statements else None,
            **dead_link_settings(dead_link_timeout_sec),
        }
        self._pool: ConnectionPool[DictConnection] = ConnectionPool(
            url,
            min_size=min(2, pool_size),
            max_size=pool_size,
            kwargs=self._connect_kwargs,
            open=False,
            name="pgfleet-sysdb",
            timeout=retry_timeout_sec,
            reconnect_timeout=retry_timeout_sec,
            configure=self._bound_session,
        )
        # Called after a statement succeeded only on a retry: a write that hands out ownership
        # may have committed unseen meanwhile (lost reply), so its orphan should be looked for.
        self.on_retried: Callable[[], None] | None = None
        self._epochs: list[int] = []
        self._epochs_lock = threading.Lock()

        # -- the doors of the cluster's concepts: typed methods over their named statements ----
        # The time coordination runs on (liveness statements' "now", the local lease clocks):
        # the real clocks unless a test sets a FakeClock before building coordination objects.
        self.coordination_clock: Clock = SystemClock()
        self.members = Members(self)
        self.leadership = Leadership(self)
        self.claims = Claims(self)
        self.assignments = Assignments(self)
        self.takeover = Takeover(self)
        self.fleet = Fleet(self)
        self.probe = Probe(self)

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, *, run_migrations: bool = True, application_schema: bool = False) -> None:
        """Create and migrate the database if needed, then open the pool.

        With ``application_schema`` this is an application database: only the table of
        ``@DBOS.transaction`` outputs is created in it.
        """
        try:
            if run_migrations or application_schema:
                self._with_retries(lambda: ensure_database_exists(self.url))
                with self.connect(bounded=False) as conn:  # a migration may run long
                    if application_schema:
                        ensure_application_schema(conn)
                    else:
                        migrate(conn)
            self._pool.open(wait=True, timeout=self.retry_timeout_sec)
            self.sync_clock()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailableError(
                f"cannot reach the system database at {describe_url(self.url)}: {exc}"
            ) from exc

    def sync_clock(self) -> None:
        """Observe the server's clock once (see :class:`DatabaseClock`)."""
        sent = self.clock.monotonic()
        rows = self.execute("database_clock")
        self.clock.observe(rows[0]["now_ms"], sent, self.clock.monotonic())

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()

    def connect(self, *, bounded: bool = True, **overrides: Any) -> DictConnection:
        """A new dedicated connection (not from the pool), for listeners, locks and heartbeats;
        with the session timeouts of pooled ones unless ``bounded`` is False."""
        kwargs = {**self._connect_kwargs, **overrides}
        conn = psycopg.connect(self.url, **kwargs)
        if bounded:
            try:
                self._bound_session(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    def _bound_session(self, conn: DictConnection) -> None:
        # Once per new connection (the pool's configure hook), not per statement.
        if self.timeouts.enabled():
            conn.execute(statement("set_session_timeouts"), self.timeouts.params())

    def listen(self, *channels: str) -> NotificationConnection:
        """A new dedicated connection subscribed to ``channels``."""
        from .listener import NotificationConnection

        return NotificationConnection(self.connect(), channels)

    # -- plumbing ----------------------------------------------------------------------------

    def _with_retries(self, fn: Callable[[], T]) -> T:
        # The happy path pays for no retry machinery: build it only after a failure.
        try:
            return fn()
        except (psycopg.Error, PoolTimeout) as exc:
            if not is_connection_failure(exc):
                raise
            log.warning("system database unreachable; retrying", error=str(exc))
        result = self._retry(fn)
        if self.on_retried is not None:
            self.on_retried()
        return result

    def _retry(self, fn: Callable[[], T]) -> T:
        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "system database unreachable; retrying",
                attempt=state.attempt_number,
                error=str(exc),
            )

        try:
            for attempt in Retrying(
                retry=retry_if_exception(is_connection_failure),
                wait=wait_exponential(multiplier=0.05, max=2.0) + wait_random(0, 0.05),
                stop=stop_after_delay(self.retry_timeout_sec),
                before_sleep=log_retry,
                reraise=True,
            ):
                with attempt:
                    return fn()
        except (psycopg.Error, PoolTimeout) as exc:
            if not is_connection_failure(exc):
                raise
            raise DatabaseUnavailableError(
                f"the system database at {describe_url(self.url)} did not answer for "
                f"{self.retry_timeout_sec:.0f}s: {exc}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def execute(self, name: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> list[Row]:
        """Run the named statement with retries and return its rows (empty for none)."""

        def run() -> list[Row]:
            with self._pool.connection() as conn:
                cur = conn.execute(statement(name), params)
                return cur.fetchall() if cur.description else []

        return self._with_retries(run)

    @staticmethod
    def execute_on(conn: DictConnection, name: str, params: Mapping[str, Any]) -> list[Row]:
        """Run a named statement on a connection the caller holds (inside its transaction)."""
        cur = conn.execute(statement(name), params)
        return cur.fetchall() if cur.description else []

    def execute_once(self, name: str, params: Mapping[str, Any]) -> list[Row]:
        """Run the named statement once on a pooled connection (the caller retries)."""
        with self._pool.connection() as conn:
            cur = conn.execute(statement(name), params)
            return cur.fetchall() if cur.description else []

    def execute_count(self, name: str, params: Mapping[str, Any]) -> int:
        """Run the named statement with retries and return how many rows it changed."""

        def run() -> int:
            with self._pool.connection() as conn:
                return conn.execute(statement(name), params).rowcount

        return self._with_retries(run)

    def query(self, query: sql.Composed, params: Mapping[str, Any] | Sequence[Any]) -> list[Row]:
        """Run a composed (still parameterised) query with retries; for filtered listings."""

        def run() -> list[Row]:
            with self._pool.connection() as conn:
                return conn.execute(query, params).fetchall()

        return self._with_retries(run)

    @contextmanager
    def transaction(self, isolation_level: str | None = None) -> Iterator[DictConnection]:
        """A pooled connection inside one transaction (``@DBOS.transaction`` bodies)."""
        with self._pool.connection() as conn:
            with conn.transaction():
                if isolation_level:
                    conn.execute(
                        sql.SQL("SET TRANSACTION ISOLATION LEVEL {}").format(sql.SQL(isolation_level))
                    )
                # User code runs here: it gets its own limits, not those of our short statements.
                user_limits = self.timeouts.for_user_transactions()
                if user_limits is not None:
                    conn.execute(statement("set_session_timeouts"), user_limits)
                yield conn

    # -- workflows ---------------------------------------------------------------------------

    def reserve_epoch(self) -> int:
        """A fresh ownership epoch, never handed out before, drawn before the write that uses it
        so that it is also that write's attempt token (see ``sysdb/sql/draw_epochs.sql``)."""
        with self._epochs_lock:
            if not self._epochs:
                rows = self.execute("draw_epochs", {"count": EPOCH_BLOCK})
                self._epochs = [row["epoch"] for row in reversed(rows)]
            return self._epochs.pop()

    def _attempts(self, fn: Callable[[], T]) -> tuple[Callable[[], T], Callable[[], int]]:
        """``fn`` counting its calls: more than one means a retry, which may follow a lost reply."""
        count = 0

        def counted() -> T:
            nonlocal count
            count += 1
            return fn()

        return counted, lambda: count

    def _is_own_row(self, workflow_id: str, executor_id: str, owner_epoch: int) -> bool:
        row = self.get_workflow_status(workflow_id)
        return bool(row and row["status"] == "PENDING" and row["executor_id"] == executor_id
                    and row["owner_epoch"] == owner_epoch)

    def _with_own_step(
        self, fn: Callable[[], T], step: Mapping[str, Any] | None, on_own: Callable[[Row], T]
    ) -> T:
        """Run ``fn``, a transaction that commits a fenced step row (``step``) with its effect,
        with retries. A retry after a lost COMMIT reply meets its own step row (a unique violation
        on the step's key, with the same operation name): the effect committed, so that is
        success, and ``on_own`` builds the result from the recorded step."""
        run, attempts = self._attempts(fn)
        try:
            return self._with_retries(run)
        except psycopg.errors.UniqueViolation as exc:
            if step is None or attempts() < 2 or exc.diag.constraint_name != STEP_KEY_CONSTRAINT:
                raise
            recorded = self.execute(
                "get_step_output", {"workflow_id": step["workflow_id"], "function_id": step["function_id"]}
            )
            if not recorded or recorded[0]["function_name"] != step["function_name"]:
                raise
            return on_own(recorded[0])

    def insert_workflow(self, params: Mapping[str, Any]) -> int | None:
        """Create a PENDING workflow owned by ``params['executor_id']`` with the epoch
        ``params['owner_epoch']`` (from :meth:`reserve_epoch`).

        Returns that epoch, or ``None`` when the workflow id exists already. A retry after a
        lost reply finds the row its first attempt committed, bearing its epoch: that is its own.
        """
        values = {"now_ms": now_ms(), **params}
        run, attempts = self._attempts(lambda: self.execute_once("insert_workflow", values))
        rows = self._with_retries(run)
        if rows:
            inserted_epoch: int = rows[0]["owner_epoch"]  # typed: rows and params are Any-valued
            return inserted_epoch
        if attempts() > 1 and self._is_own_row(params["workflow_id"], params["executor_id"], params["owner_epoch"]):
            own_epoch: int = params["owner_epoch"]
            return own_epoch
        return None

    def get_workflow_status(self, workflow_id: str) -> Row | None:
        rows = self.execute("get_workflow_status", {"workflow_id": workflow_id})
        return rows[0] if rows else None

    def get_workflow_outcome(self, workflow_id: str) -> Row | None:
        rows = self.execute("get_workflow_outcome", {"workflow_id": workflow_id})
        return rows[0] if rows else None

    def load_step_outputs(self, workflow_id: str) -> dict[int, Row]:
        """Every recorded step of a workflow by function id: read once per replay."""
        rows = self.execute("load_step_outputs", {"workflow_id": workflow_id})
        return {row["function_id"]: row for row in rows}

    def list_workflow_steps(self, workflow_id: str) -> list[Row]:
        return self.execute("list_workflow_steps", {"workflow_id": workflow_id})

    def _ownership_lost(
        self, workflow_id: str, executor_id: str, owner_epoch: int, connection: DictConnection | None = None
    ) -> OwnershipLostError:
        # Inside a transaction, read on the connection already held: a second checkout from the
        # pool while holding one deadlocks a pool that a burst of fenced writes has exhausted.
        if connection is not None:
            rows = self.execute_on(connection, "get_workflow_status", {"workflow_id": workflow_id})
            row = rows[0] if rows else None
        else:
            row = self.get_workflow_status(workflow_id)
        return OwnershipLostError(
            workflow_id,
            executor_id,
            owner_epoch,
            status=row["status"] if row else None,
            owner=row["executor_id"] if row else None,
            current_epoch=row["owner_epoch"] if row else None,
        )

    def record_step_output(
        self,
        *,
        workflow_id: str,
        executor_id: str,
        owner_epoch: int,
        function_id: int,
        function_name: str,
        output: str | None,
        error: str | None,
        serialization: str | None,
        started_at_ms: int,
        child_workflow_id: str | None = None,
        completed_at_ms: int | None = None,
        connection: DictConnection | None = None,
    ) -> None:
        """Checkpoint one step in one fenced round trip.

        With ``connection`` (inside an open transaction) the checkpoint commits or rolls back
        together with that transaction's own writes, and is not retried here.

        Raises :class:`OwnershipLostError` when this owner/epoch no longer holds the workflow,
        and :class:`DuplicateCheckpointError` when the position was recorded by someone else.
        """
        params = {
            "workflow_id": workflow_id,
            "executor_id": executor_id,
            "owner_epoch": owner_epoch,
            "function_id": function_id,
            "function_name": function_name,
            "output": output,
            "error": error,
            "serialization": serialization,
            "child_workflow_id": child_workflow_id,
            "started_at_ms": started_at_ms,
            "completed_at_ms": completed_at_ms if completed_at_ms is not None else now_ms(),
        }
        if connection is not None:
            if connection.execute(statement("record_step_output"), params).rowcount == 0:
                raise self._ownership_lost(workflow_id, executor_id, owner_epoch, connection)
            return

        def run() -> int:
            with self._pool.connection() as conn:
                return conn.execute(statement("record_step_output"), params).rowcount

        try:
            # A retry after a lost reply that finds its own earlier write: success (None).
            written = self._with_own_step(run, params, lambda _recorded: None)
        except psycopg.errors.UniqueViolation:
            recorded = self.execute(
                "get_step_output", {"workflow_id": workflow_id, "function_id": function_id}
            )
            name = recorded[0]["function_name"] if recorded else "?"
            raise DuplicateCheckpointError(workflow_id, function_id, name) from None
        if written == 0:
            raise self._ownership_lost(workflow_id, executor_id, owner_epoch)

    def start_child_workflow(self, params: Mapping[str, Any]) -> int | None:
        """Record the parent's step naming the child and create the child, in one statement.

        Returns the child's ownership epoch, ``params['owner_epoch']`` (``None`` if the child id
        existed already). Raises :class:`OwnershipLostError` if the parent is no longer owned.
        A retry after a lost reply meets the parent's step row it committed (a unique violation):
        when the child row bears this start's epoch, both are its own.
        """
        values = {"now_ms": now_ms(), **params}
        run, attempts = self._attempts(lambda: self.execute_once("start_child_workflow", values))
        try:
            rows = self._with_retries(run)
        except psycopg.errors.UniqueViolation as exc:
            if attempts() > 1 and exc.diag.constraint_name == STEP_KEY_CONSTRAINT and self._is_own_row(
                params["workflow_id"], params["executor_id"], params["owner_epoch"]
            ):
                own_epoch: int = params["owner_epoch"]  # typed: rows and params are Any-valued
                return own_epoch
            raise
        if not rows or rows[0]["parent_owned"] == 0:
            raise self._ownership_lost(
                params["parent_workflow_id"], params["executor_id"], params["parent_owner_epoch"]
            )
        child_epoch: int = rows[0]["child_epoch"]
        return child_epoch

    def finish_workflow(
        self,
        *,
        workflow_id: str,
        executor_id: str,
        owner_epoch: int,
        status: str,
        output: str | None,
        error: str | None,
    ) -> None:
        """Record a workflow's final status, fenced. Raises :class:`OwnershipLostError`."""
        changed = self.execute_count(
            "finish_workflow",
            {
                "workflow_id": workflow_id,
                "executor_id": executor_id,
                "owner_epoch": owner_epoch,
                "status": status,
                "output": output,
                "error": error,
                "now_ms": now_ms(),
            },
        )
        if changed == 0:
            raise self._ownership_lost(workflow_id, executor_id, owner_epoch)

    def cancel_owned_past_deadline(self, workflow_id: str, executor_id: str, owner_epoch: int) -> None:
        """A workflow past its deadline cancels itself, fenced on its token. Raises
        :class:`OwnershipLostError` when this execution no longer holds it (taken over, or
        resumed under a fresh epoch)."""
        params = {"workflow_id": workflow_id, "executor_id": executor_id, "owner_epoch": owner_epoch}
        if self.execute_count("cancel_owned_past_deadline", params) == 0:
            raise self._ownership_lost(workflow_id, executor_id, owner_epoch)

    @contextmanager
    def holding_ownership(self, workflow_id: str, executor_id: str, owner_epoch: int) -> Iterator[DictConnection]:
        """A transaction that holds the workflow's status row FOR SHARE while this owner and
        epoch hold it: no takeover or cancel can commit until it ends. Yields its connection
        (write the step's checkpoint on it, so it commits as the lock is released). Raises
        :class:`OwnershipLostError` when ownership is already lost; not retried."""
        with self.transaction() as conn:
            params = {"workflow_id": workflow_id, "executor_id": executor_id, "owner_epoch": owner_epoch}
            if not self.execute_on(conn, "lock_owned_workflow", params):
                raise self._ownership_lost(workflow_id, executor_id, owner_epoch)
            yield conn

    # -- recovery ----------------------------------------------------------------------------

    def list_pending_for_executor(self, executor_id: str) -> list[Row]:
        return self.execute("list_pending_for_executor", {"executor_id": executor_id})

    def take_over_for_recovery(
        self,
        *,
        workflow_id: str,
        executor_id: str,
        previous_executor_id: str,
        previous_epoch: int | None,
        owner_epoch: int,
    ) -> Row | None:
        """Compare-and-set a PENDING workflow to the fresh epoch ``owner_epoch`` (from
        :meth:`reserve_epoch`, so a retry after a lost reply recognises its own take-over)
        owned by ``executor_id``."""
        rows = self.execute(
            "take_over_for_recovery",
            {
                "workflow_id": workflow_id,
                "executor_id": executor_id,
                "previous_executor_id": previous_executor_id,
                "previous_epoch": previous_epoch,
                "owner_epoch": owner_epoch,
                "now_ms": now_ms(),
            },
        )
        return rows[0] if rows else None

    def dead_letter_workflow(self, *, workflow_id: str, executor_id: str, owner_epoch: int) -> bool:
        return (
            self.execute_count(
                "dead_letter_workflow",
                {
                    "workflow_id": workflow_id,
                    "executor_id": executor_id,
                    "owner_epoch": owner_epoch,
                    "now_ms": now_ms(),
                },
            )
            > 0
        )

    # -- messages and events ------------------------------------------------------------------

    def send_message(self, params: Mapping[str, Any], parent_step: Mapping[str, Any] | None = None) -> None:
        """Insert a message; with ``parent_step`` (a send from inside a workflow) the sender's
        fenced step row commits with it. Raises :class:`NoSuchWorkflowError` for an unknown
        destination and :class:`OwnershipLostError` when the sender lost its workflow."""

        def run() -> None:
            with self._pool.connection() as conn, conn.transaction():
                if parent_step is not None:
                    self.record_step_output(**parent_step, connection=conn)
                conn.execute(statement("insert_notification"), params)

        try:
            self._with_own_step(run, parent_step, lambda _recorded: None)
        except psycopg.errors.ForeignKeyViolation:
            raise NoSuchWorkflowError(params["destination_id"]) from None

    def has_message(self, destination_id: str, topic: str) -> bool:
        rows = self.execute("has_notification", {"destination_id": destination_id, "topic": topic})
        return bool(rows and rows[0]["waiting"])

    def consume_message(self, destination_id: str, topic: str, step: Mapping[str, Any]) -> Row | None:
        """Consume the oldest waiting message and checkpoint the receive, in one transaction.

        ``step`` holds the fenced checkpoint's arguments; its ``output`` is filled in from the
        message (``None`` when there is none). Returns the message row or ``None``.
        """

        def run() -> Row | None:
            with self._pool.connection() as conn, conn.transaction():
                rows = conn.execute(
                    statement("consume_notification"), {"destination_id": destination_id, "topic": topic}
                ).fetchall()
                message = rows[0] if rows else None
                self.record_step_output(
                    **{**step, "output": message["message"] if message else None,
                       "serialization": message["serialization"] if message else step.get("serialization")},
                    connection=conn,
                )
                return message

        def recorded_message(recorded: Row) -> Row | None:
            if recorded["output"] is None:  # the receive found nothing
                return None
            return {"message": recorded["output"], "serialization": recorded["serialization"]}

        return self._with_own_step(run, step, recorded_message)

    def set_event(self, params: Mapping[str, Any], step: Mapping[str, Any]) -> None:
        """Publish an event and checkpoint the set, fenced, in one transaction."""

        def run() -> None:
            with self._pool.connection() as conn, conn.transaction():
                self.record_step_output(**step, connection=conn)
                conn.execute(statement("upsert_workflow_event"), params)
                conn.execute(statement("notify"), {"channel": EVENTS_CHANNEL, "payload": f"{params['workflow_id']}::{params['key']}"})

        self._with_own_step(run, step, lambda _recorded: None)

    def write_stream_value(self, params: Mapping[str, Any], step: Mapping[str, Any] | None = None) -> int:
        """Append to a workflow's stream, fenced; with ``step`` (a write from the workflow body)
        its step row commits with it. Returns the offset. Raises :class:`OwnershipLostError`."""

        def run() -> list[Row]:
            with self._pool.connection() as conn, conn.transaction():
                if step is not None:
                    self.record_step_output(**step, connection=conn)
                return conn.execute(statement("write_stream_value"), params).fetchall()

        rows = self._with_own_step(
            run, step, lambda _recorded: self.execute("get_stream_offset_at_step", params)
        )
        if not rows:
            raise self._ownership_lost(params["workflow_id"], params["executor_id"], params["owner_epoch"])
        return int(rows[0]["offset"])

    def get_event(self, workflow_id: str, key: str) -> Row | None:
        rows = self.execute("get_workflow_event", {"workflow_id": workflow_id, "key": key})
        return rows[0] if rows else None

    # -- queues -------------------------------------------------------------------------------

    def enqueue_workflow(self, params: Mapping[str, Any], parent_step: Mapping[str, Any] | None = None) -> bool:
        """Insert an ENQUEUED/DELAYED workflow. Returns False when the id exists already.

        With ``parent_step`` (an enqueue from inside a workflow) the parent's fenced step row and
        the new workflow commit together. Raises :class:`DeduplicatedError` for a live
        deduplication id and :class:`OwnershipLostError` when the parent is no longer owned.
        """
        values = {"now_ms": now_ms(), **params}

        def run() -> bool:
            with self._pool.connection() as conn:
                if parent_step is None:  # one statement: no transaction around it
                    return bool(conn.execute(statement("enqueue_workflow"), values).fetchall())
                with conn.transaction():
                    self.record_step_output(**parent_step, connection=conn)
                    return bool(conn.execute(statement("enqueue_workflow"), values).fetchall())

        try:
            return self._with_own_step(run, parent_step, lambda _recorded: True)
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "uq_workflow_status_dedup_id":
                raise DeduplicatedError(params["queue_name"], params["deduplication_id"]) from None
            raise

    def notify(self, channel: str, payload: str) -> None:
        """Send a NOTIFY (a wake-up hint; never the source of truth)."""
        self._with_retries(lambda: self._notify(channel, payload))

    def _notify(self, channel: str, payload: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(statement("notify"), {"channel": channel, "payload": payload})
