"""The executor: runs workflows in this process against the system database.

One ``Executor`` exists per launched ``DBOS``. It starts workflows (directly in the caller's
thread, or in a thread of their own), runs their bodies with a :class:`WorkflowContext`, writes
their final status and waits for results. Steps, sleeps and transactions are in
:mod:`runtime.steps`; recovery, claimed and assigned work in :mod:`runtime.recovery`; enqueueing
in :mod:`runtime.enqueue`.

Every write on behalf of a running workflow carries its fencing token (executor id and
ownership epoch). When the database says the token is stale, the workflow stops at once with
:class:`DBOSWorkflowFencedError` (or :class:`DBOSWorkflowCancelledError` if it was cancelled)
and writes nothing more.
"""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random

from sysdb import OwnershipLostError, SystemDatabase, now_ms, resolve_system_database_url, validate_url
from sysdb.errors import DatabaseUnavailableError, DeadlockConflict, InvalidDatabaseUrlError, SchemaTooNewError
from sysdb.steps import StepRecord, StepRow
from sysdb.workflow_rows import NewWorkflow, WorkflowOutcome

from . import logs, metrics
from .config import ResolvedConfig, connection_bounds
from .context import (
    WorkflowContext,
    current_workflow,
    enter_workflow,
    leave_workflow,
    take_start_options,
)
from .errors import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded,
    DBOSConflictingWorkflowError,
    DBOSDatabaseUnavailableError,
    DBOSException,
    DBOSInvalidInputError,
    DBOSNonExistentWorkflowError,
    DBOSSerializationError,
    DBOSUnexpectedStepError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowFencedError,
)
from .ownership import insert_start_row
from .registry import CLASS_METHOD, INSTANCE_METHOD, RegisteredWorkflow, registry
from .serialization import (
    SERIALIZATION_FORMAT,
    deserialize,
    deserialize_exception,
    serialize,
    serialize_args,
    serialize_exception,
)
from .status import TERMINAL_STATUSES

__all__ = ["Executor", "ExecutorShutdown", "NOT_RECORDED", "await_outcome", "fenced_step"]

# Waiting for a workflow that runs elsewhere: poll its row, backing off to this interval.
RESULT_POLL_MAX_INTERVAL_SEC = 0.5
RESULT_POLL_FIRST_INTERVAL_SEC = 0.005


# What Executor.begin_operation returns for an operation that has no recorded outcome yet.
NOT_RECORDED: Any = object()


class ExecutorShutdown(BaseException):
    """Raised inside workflow threads when DBOS.destroy() stops the executor.

    A BaseException so that user code catching ``Exception`` does not swallow it: the workflow
    must stop without recording anything, and stays PENDING for recovery.
    """


@dataclass
class _LocalRun:
    """A workflow running in this process, so local waiters need not poll the database."""

    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None
    # True only when the outcome was written to the database by this run.
    recorded: bool = False
    # The executor generation it runs under (an older one: abandoned, still stopping).
    generation: int = 0


def stale_token_error(exc: OwnershipLostError) -> DBOSWorkflowCancelledError | DBOSWorkflowFencedError:
    """The user-facing error for a fenced write that matched no row (raised only through
    :meth:`Executor.fenced_write`, which also marks the execution lost)."""
    if exc.status == "CANCELLED":
        return DBOSWorkflowCancelledError(f"workflow {exc.workflow_id!r} was cancelled")
    return DBOSWorkflowFencedError(exc.workflow_id, str(exc))


def fenced_step(ctx: WorkflowContext, function_id: int, function_name: str, **extra: Any) -> StepRecord:
    """A workflow operation's fenced step row (``db.steps.record``), for the writes that commit
    it together with their own effects (send, recv, events, streams, enqueue)."""
    fields = {"started_at_ms": now_ms(), **extra}
    return StepRecord(
        workflow_id=ctx.workflow_id,
        executor_id=ctx.executor_id,
        owner_epoch=ctx.owner_epoch,
        function_id=function_id,
        function_name=function_name,
        **fields,
    )


def decode_outcome(workflow_id: str, row: WorkflowOutcome) -> Any:
    """Return the recorded result of a finished workflow, or raise its recorded error."""
    status = row.status
    if status == "SUCCESS":
        return deserialize(row.output, row.serialization, what="workflow output")
    if status == "ERROR":
        raise deserialize_exception(row.error, row.serialization)
    if status == "CANCELLED":
        raise DBOSAwaitedWorkflowCancelledError(workflow_id)
    raise DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded(workflow_id)


def await_outcome(
    db: SystemDatabase,
    workflow_id: str,
    timeout_sec: float | None,
    stop: threading.Event,
    local_run: Callable[[str], _LocalRun | None] | None = None,
) -> Any:
    """Wait for a workflow to finish, wherever it runs; return its result or raise its error.

    A workflow running in this process is awaited in memory (``local_run``); otherwise its
    status row is polled, backing off from 5 ms to 0.5 s. Raises :class:`TimeoutError` after
    ``timeout_sec`` and :class:`ExecutorShutdown` when ``stop`` is set.
    """
    deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
    interval = RESULT_POLL_FIRST_INTERVAL_SEC
    while True:
        local = local_run(workflow_id) if local_run is not None else None
        if local is not None:
            local.done.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if local.done.is_set() and local.recorded:
                if local.error is not None:
                    raise local.error
                return local.value
        row = db.workflows.outcome(workflow_id)
        if row is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        if row.status in TERMINAL_STATUSES:
            return decode_outcome(workflow_id, row)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout_sec}s")
        if stop.wait(interval):
            raise ExecutorShutdown()
        interval = min(interval * 1.5, RESULT_POLL_MAX_INTERVAL_SEC)


class Executor:
    """Runs workflows for one launched DBOS instance."""

    def __init__(self, config: ResolvedConfig) -> None:
        self.config = config
        self.executor_id = config.executor_id
        self.stop_event = threading.Event()
        self.sysdb: SystemDatabase | None = None
        # The application database of @DBOS.transaction functions, when it is not the system one.
        self.app_db: SystemDatabase | None = None
        self.application_version: str = config.application_version or ""
        self._local: dict[str, _LocalRun] = {}
        self._threads: set[threading.Thread] = set()
        # Background workflows running (counted against max_executor_threads), and those
        # waiting for one of them to finish.
        self._active = 0
        self._waiting: collections.deque[tuple[Any, ...]] = collections.deque()
        self._lock = threading.Lock()
        self.log = logs.logger
        # Set by the queue services: called when a queued workflow finishes here.
        self.on_queue_slot_freed: Callable[[str], None] | None = None
        # Set by the cluster services: called with (workflow id, epoch) once a run that a
        # database outage stopped has ended, so that its PENDING row is taken up again.
        self.on_stopped_by_outage: Callable[[str, int], None] | None = None
        self.services: Any = None  # runtime.services.ClusterServices once launched
        # Ownership epochs of the workflows running here (the assignment poller skips them).
        self._running_epochs: set[int] = set()
        # Bumped when this executor must abandon everything it runs (membership lost): every
        # workflow started under an older generation stops at its next write, writing nothing.
        self.generation = 0
        self.abandon_reason = ""
        # Whether this member's membership lease still holds (runtime.services wires the
        # heartbeat's, a local clock check); None when no cluster membership backs this executor.
        self.lease_valid: Callable[[], bool] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def launch(self) -> None:
        """Connect (starting the embedded Postgres if no URL is configured) and migrate.

        The caller makes this executor current, joins the cluster, and recovers this executor's
        PENDING workflows in the background (:mod:`runtime.recoverer`).
        """
        try:
            url = resolve_system_database_url(self.config.system_database_url, self.config.embedded_data_dir)
            self.sysdb = SystemDatabase(
                url,
                pool_size=self.config.sys_db_pool_size,
                application_name=f"pgfleet:{self.executor_id}"[:63],
                retry_timeout_sec=self.config.database_retry_timeout_sec,
                prepare_statements=self.config.prepare_statements,
                **connection_bounds(self.config),
            )
            self.sysdb.open()
            app_url = self.config.application_database_url
            if app_url and validate_url(app_url) != url:
                self.app_db = SystemDatabase(
                    app_url,
                    pool_size=self.config.sys_db_pool_size,
                    application_name=f"pgfleet-app:{self.executor_id}"[:63],
                    retry_timeout_sec=self.config.database_retry_timeout_sec,
                    prepare_statements=self.config.prepare_statements,
                    **connection_bounds(self.config),
                )
                self.app_db.open(run_migrations=False, application_schema=True)
        except (InvalidDatabaseUrlError, DatabaseUnavailableError, SchemaTooNewError) as exc:
            if self.sysdb is not None:
                self.sysdb.close()
            self.sysdb = self.app_db = None
            raise DBOSDatabaseUnavailableError(str(exc)) from exc
        if not self.application_version:
            self.application_version = registry.code_version()
        logs.set_executor_id(self.executor_id)

    def destroy(self, workflow_completion_timeout_sec: float = 0) -> None:
        """Leave the cluster gracefully: stop taking work, let running workflows finish for up
        to ``workflow_completion_timeout_sec``, then abandon the rest and hand them over to the
        live members at once (a later launch of this executor id recovers what nobody took)."""
        services = self.services
        if services is not None:
            services.stop_taking_work()
        if workflow_completion_timeout_sec > 0:
            deadline = time.monotonic() + workflow_completion_timeout_sec
            for thread in list(self._threads):
                thread.join(max(0.0, deadline - time.monotonic()))
        self.abandon_all("the executor is shutting down")
        self.stop_event.set()
        if services is not None:
            try:
                services.hand_over()
            except Exception as exc:  # the database may be gone: the leader's sweep does it later
                self.log.warning("could not hand workflows over at shutdown", error=str(exc))
            services.stop()
        for thread in list(self._threads):
            thread.join(5.0)
        if self.sysdb is not None:
            self.sysdb.close()
        if self.app_db is not None:
            self.app_db.close()
        logs.set_executor_id(None)

    @property
    def db(self) -> SystemDatabase:
        if self.sysdb is None:
            raise DBOSDatabaseUnavailableError("the system database is not open")
        return self.sysdb

    def running_epochs(self) -> list[int]:
        with self._lock:
            return list(self._running_epochs)

    def hold_epoch(self, epoch: int) -> bool:
        """Count ``epoch`` as running here from now on (before its write, or before adopting its
        row); False when it is already held (see runtime.ownership)."""
        with self._lock:
            if epoch in self._running_epochs:
                return False
            self._running_epochs.add(epoch)
            return True

    def release_epoch(self, epoch: int) -> None:
        with self._lock:
            self._running_epochs.discard(epoch)

    def local_generation(self, workflow_id: str) -> int | None:
        """The generation of this process's execution of the workflow, if one is running (one
        from an older generation was abandoned and is stopping, maybe inside a step body)."""
        with self._lock:
            local = self._local.get(workflow_id)
            return None if local is None or local.done.is_set() else local.generation

    def abandon_all(self, reason: str) -> None:
        """Stop every running workflow at its next write, without writing (this executor was
        declared dead or cut off, and others are taking its work over)."""
        with self._lock:
            self.generation += 1
            self.abandon_reason = reason

    def lose(self, ctx: WorkflowContext, error: BaseException) -> BaseException:
        """Mark this execution lost with ``error`` (returned, for the caller to raise): every
        later operation of it raises the same error before running anything."""
        if ctx.lost is None:
            ctx.lost = error
        return error

    def check_owned(self, ctx: WorkflowContext) -> None:
        """Raise if this execution lost its workflow; called before every step body, transaction
        and write for a workflow. Local only (no round trip): a fenced or cancelled earlier write,
        an abandoned generation, or an expired membership lease (a paused or cut-off member may
        be declared dead any moment after its lease ends, so it starts nothing more)."""
        if ctx.lost is not None:
            raise ctx.lost.with_traceback(None)
        if ctx.generation != self.generation:
            reason = f"this executor abandoned it ({self.abandon_reason})"
            raise self.lose(ctx, DBOSWorkflowFencedError(ctx.workflow_id, reason))
        if self.lease_valid is not None and not self.lease_valid():
            reason = "this executor's membership lease expired (no acknowledged heartbeat in time)"
            raise self.lose(ctx, DBOSWorkflowFencedError(ctx.workflow_id, reason))

    @contextmanager
    def fenced_write(self, ctx: WorkflowContext | None) -> Iterator[None]:
        """Around every write for a running workflow: refuse before it if the execution is lost,
        and turn a write that matched no row (``OwnershipLostError``) into the workflow's stop,
        marking the execution lost. The one place that does so. With no workflow (a write made
        outside one, such as a start or a send from plain code) there is nothing to fence."""
        if ctx is None:
            yield
            return
        self.check_owned(ctx)
        try:
            yield
        except OwnershipLostError as exc:
            raise self.lose(ctx, stale_token_error(exc)) from None

    def check_running(self, ctx: WorkflowContext) -> None:
        """Called before each operation of a workflow: stop on shutdown or past the deadline."""
        if self.stop_event.is_set():
            raise ExecutorShutdown()
        self.check_owned(ctx)
        # The deadline was recorded on the database clock: compare it with the database clock
        # as estimated here, not with this host's wall clock (which may be seconds off).
        if ctx.deadline_epoch_ms is not None and self.db.clock.now_ms() >= ctx.deadline_epoch_ms:
            # Fenced on this execution's token: an old execution must not cancel a resumed run.
            with self.fenced_write(ctx):
                self.db.workflows.cancel_owned_past_deadline(ctx.workflow_id, ctx.executor_id, ctx.owner_epoch)
            raise self.lose(ctx, DBOSWorkflowCancelledError(
                f"workflow {ctx.workflow_id!r} passed its deadline and was cancelled"
            ))

    # -- starting workflows -----------------------------------------------------------------

    def start(
        self,
        entry: RegisteredWorkflow,
        bound: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        background: bool,
    ) -> Any:
        """Start a workflow: run it here and return its result, or return a handle at once."""
        from .handles import WorkflowHandle

        parent = current_workflow()
        if parent is not None and parent.in_step:
            if background:
                raise DBOSException(f"cannot start workflow {entry.name!r} from inside a step")
            return call_workflow_function(entry, bound, args, kwargs)
        if parent is not None:
            self.check_running(parent)
        options = take_start_options()
        if entry.validate_input is not None:
            _validate(entry, args, kwargs)

        function_id, workflow_id, replayed_child = take_start_position(parent, options, entry)
        if replayed_child is not None:  # replay: an earlier execution started this child
            if background:
                return WorkflowHandle(self, replayed_child)
            return self.child_result(parent, replayed_child)  # type: ignore[arg-type]  # a replayed child implies a parent

        timeout_ms, deadline_ms = _timeout(options, parent, self.db.clock.now_ms)
        new, roles = self.start_row(entry, bound, args, kwargs, options, parent, workflow_id)
        new = replace(
            new,
            executor_id=self.executor_id,
            application_version=self.application_version,
            timeout_ms=timeout_ms,
            deadline_ms=deadline_ms,
        )
        # A child's row commits with its parent's fenced step: a parent that lost its workflow
        # starts nothing (and its execution is marked lost).
        with self.fenced_write(parent):
            epoch = insert_start_row(self, parent, new, function_id)

        if epoch is None:  # the id exists: never run it twice, wait for its outcome instead
            self.check_same_workflow(workflow_id, entry, new.class_name, new.config_name)
            if background:
                return WorkflowHandle(self, workflow_id)
            if parent is not None:
                return self.child_result(parent, workflow_id)
            return self.wait_result(workflow_id)

        ctx = WorkflowContext(
            workflow_id=workflow_id,
            name=entry.name,
            executor_id=self.executor_id,
            owner_epoch=epoch,
            generation=self.generation,
            executor=self,
            authenticated_user=new.authenticated_user,
            authenticated_roles=roles,
            assumed_role=options.assumed_role,
            deadline_epoch_ms=deadline_ms,
            timeout_ms=timeout_ms,
        )
        if background:
            self.spawn(ctx, entry, bound, args, kwargs, child=parent is not None)
            return WorkflowHandle(self, workflow_id)
        if parent is None:
            return self.run(ctx, entry, bound, args, kwargs)
        # A direct child call also records its result in the parent (DBOS.getResult), so a
        # replayed parent reads it without waiting for the child again.
        result_id = parent.next_function_id()
        try:
            result = self.run(ctx, entry, bound, args, kwargs)
        except (DBOSWorkflowFencedError, ExecutorShutdown):
            raise
        except Exception as exc:
            self.checkpoint(parent, result_id, "DBOS.getResult", error=serialize_exception(exc), child_workflow_id=workflow_id)
            raise
        self.checkpoint(parent, result_id, "DBOS.getResult", output=serialize(result), child_workflow_id=workflow_id)
        return result

    def start_row(
        self,
        entry: RegisteredWorkflow,
        bound: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Any,
        parent: WorkflowContext | None,
        workflow_id: str,
    ) -> tuple[NewWorkflow, list[str] | None]:
        """The status-row fields every start shares (direct, background, child or enqueued):
        identity, caller, inputs; and the caller's role list, for the workflow's context."""
        user = options.authenticated_user or (parent.authenticated_user if parent else None)
        roles = options.authenticated_roles or (parent.authenticated_roles if parent else None)
        class_name, config_name = _bound_names(entry, bound)
        return NewWorkflow(
            workflow_id=workflow_id,
            name=entry.name,
            class_name=class_name,
            config_name=config_name,
            authenticated_user=user,
            assumed_role=options.assumed_role,
            authenticated_roles=json.dumps(roles) if roles else None,
            application_id="",
            application_name=self.config.name,
            inputs=serialize_args(args, kwargs, workflow_name=entry.name),
            parent_workflow_id=parent.workflow_id if parent else None,
            serialization=SERIALIZATION_FORMAT,
        ), roles

    def check_same_workflow(
        self, workflow_id: str, entry: RegisteredWorkflow, class_name: str | None, config_name: str | None
    ) -> None:
        row = self.db.workflows.status(workflow_id)
        if row is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        for recorded, wanted, label in (
            (row.name, entry.name, "function name"),
            (row.class_name, class_name, "class name"),
            (row.config_name, config_name, "config name"),
        ):
            if recorded != wanted:
                raise DBOSConflictingWorkflowError(
                    workflow_id,
                    f"workflow already exists with a different {label}: {recorded}, "
                    f"but the provided {label} is: {wanted}",
                )

    # -- running workflows ------------------------------------------------------------------

    def spawn(
        self,
        ctx: WorkflowContext,
        entry: RegisteredWorkflow,
        bound: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        child: bool = False,
    ) -> None:
        """Run a workflow in the background.

        At most ``max_executor_threads`` background workflows run at once; the rest wait in
        order and run on the threads that free up (a thread runs waiting work before it ends).
        A child started by a running workflow is part of work already admitted: it never
        waits, or a parent waiting for its child could hold the last thread forever.
        """
        job = (ctx, entry, bound, args, kwargs)
        with self._lock:
            self._running_epochs.add(ctx.owner_epoch)
            if not child and self._active >= self.config.max_executor_threads:
                self._waiting.append(job)
                return
            if not child:
                self._active += 1
        self._start_thread(job, counted=not child)

    def capacity(self) -> int:
        """How many more background workflows could start running now (claims take no more)."""
        with self._lock:
            return max(0, self.config.max_executor_threads - self._active - len(self._waiting))

    def _start_thread(self, job: tuple[Any, ...], *, counted: bool) -> None:
        def target() -> None:
            current: tuple[Any, ...] | None = job
            try:
                while current is not None:
                    try:
                        self.run(*current)
                    except BaseException:  # the outcome is recorded or handed to waiters; logged in run()
                        pass
                    current = None
                    if counted:
                        with self._lock:
                            if self._waiting and not self.stop_event.is_set():
                                current = self._waiting.popleft()
                            else:
                                self._active -= 1
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=target, name=f"workflow-{job[0].workflow_id}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def run(
        self, ctx: WorkflowContext, entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Execute a workflow body that this executor owns and record its outcome (fenced)."""
        local = _LocalRun(generation=ctx.generation)
        stopped_by_outage = False
        with self._lock:
            self._local[ctx.workflow_id] = local
            self._running_epochs.add(ctx.owner_epoch)
        token = enter_workflow(ctx)
        try:
            try:
                self.check_owned(ctx)  # e.g. claimed just before this member's lease ended
                result = call_workflow_function(entry, bound, args, kwargs)
            except (DBOSWorkflowFencedError, DBOSWorkflowCancelledError, ExecutorShutdown) as exc:
                local.error = exc
                self.log.warning("workflow stopped without recording an outcome", reason=str(exc) or type(exc).__name__)
                raise
            except DatabaseUnavailableError as exc:
                # An outage (or a pool that stayed busy) is not the workflow's outcome: stop
                # without recording; it stays PENDING and is taken up again once this run ends.
                local.error = exc
                stopped_by_outage = True
                self.log.warning("workflow stopped by a database outage; left PENDING for recovery", error=str(exc))
                raise
            except Exception as exc:
                local.error = exc
                self._finish(ctx, "ERROR", error=serialize_exception(exc, ctx.serialization))
                local.recorded = True
                metrics.WORKFLOWS_FINISHED.labels("ERROR").inc()
                raise
            try:
                output = serialize(result, what=f"the result of workflow {entry.name!r}", fmt=ctx.serialization)
            except DBOSSerializationError as exc:
                local.error = exc
                self._finish(ctx, "ERROR", error=serialize_exception(exc, ctx.serialization))
                local.recorded = True
                raise
            local.value = result
            self._finish(ctx, "SUCCESS", output=output)
            local.recorded = True
            metrics.WORKFLOWS_FINISHED.labels("SUCCESS").inc()
            return result
        finally:
            leave_workflow(token)
            local.done.set()
            if ctx.queue_name is not None and self.on_queue_slot_freed is not None:
                self.on_queue_slot_freed(ctx.queue_name)
            with self._lock:
                self._running_epochs.discard(ctx.owner_epoch)
                if self._local.get(ctx.workflow_id) is local:
                    del self._local[ctx.workflow_id]
            if stopped_by_outage and self.on_stopped_by_outage is not None:
                self.on_stopped_by_outage(ctx.workflow_id, ctx.owner_epoch)

    def _finish(self, ctx: WorkflowContext, status: str, *, output: str | None = None, error: str | None = None) -> None:
        with self.fenced_write(ctx):
            self.db.workflows.finish(
                workflow_id=ctx.workflow_id,
                executor_id=ctx.executor_id,
                owner_epoch=ctx.owner_epoch,
                status=status,
                output=output,
                error=error,
            )

    def checkpoint(
        self,
        ctx: WorkflowContext,
        function_id: int,
        function_name: str,
        *,
        output: str | None = None,
        error: str | None = None,
        started_at_ms: int | None = None,
        child_workflow_id: str | None = None,
        serialization: str | None = SERIALIZATION_FORMAT,
        completed_at_ms: int | None = None,
        connection: Any = None,
    ) -> None:
        """Record one operation of a running workflow, fenced by its token."""
        with self.fenced_write(ctx):
            step = StepRecord(
                workflow_id=ctx.workflow_id,
                executor_id=ctx.executor_id,
                owner_epoch=ctx.owner_epoch,
                function_id=function_id,
                function_name=function_name,
                output=output,
                error=error,
                serialization=serialization,
                started_at_ms=started_at_ms if started_at_ms is not None else now_ms(),
                child_workflow_id=child_workflow_id,
                completed_at_ms=completed_at_ms,
            )
            self.db.steps.record(step, connection=connection)

    def begin_operation(self, ctx: WorkflowContext, function_name: str) -> tuple[int, Any]:
        """Take the workflow's next step position for ``function_name``.

        Returns ``(function_id, recorded)``: on replay the recorded output (a recorded error is
        raised, a different recorded name raises ``DBOSUnexpectedStepError``); on a first
        execution ``NOT_RECORDED``.
        """
        self.check_running(ctx)
        function_id = ctx.next_function_id()
        recorded = ctx.recorded_step(function_id)
        if recorded is None:
            return function_id, NOT_RECORDED
        return function_id, replay_recorded(ctx, function_id, function_name, recorded)

    def recorded_call(self, function_name: str, thunk: Callable[[], Any]) -> Any:
        """Run ``thunk`` as a checkpointed operation when called inside a workflow (DBOS records
        introspection calls such as ``DBOS.getStatus`` so replays see the same answer)."""
        ctx = current_workflow()
        if ctx is None or ctx.in_step:
            return thunk()
        function_id, recorded = self.begin_operation(ctx, function_name)
        if recorded is not NOT_RECORDED:
            return recorded
        started = now_ms()
        value = thunk()
        self.checkpoint(ctx, function_id, function_name, output=serialize(value), started_at_ms=started)
        return value

    def recorded_effect(
        self,
        function_name: str,
        effect: Callable[[Any], Any],
        *,
        recorded_output: Any = None,
        after: Callable[[Any], None] | None = None,
    ) -> Any:
        """Run ``effect(conn)``, a change to the system database (cancel, resume, fork), as a
        checkpointed operation when called inside a workflow: the effect runs on the connection
        of the fenced checkpoint and commits with it, so an execution that lost its workflow
        changes nothing and a replay never does it twice. The checkpoint (``recorded_output``,
        what a replay returns) is written first: it then sees the workflow's row before the
        effect changes it, so a workflow that cancels itself records the call and is cancelled.
        Returns the effect's value; ``after(value)`` runs once it committed, on the first
        execution only (outside a workflow: ``effect(None)``, then ``after``)."""
        ctx = current_workflow()
        if ctx is None or ctx.in_step:
            value = effect(None)
        else:
            function_id, recorded = self.begin_operation(ctx, function_name)
            if recorded is not NOT_RECORDED:
                return recorded
            output = serialize(recorded_output)
            # Two workflows acting on each other's rows at once (each checkpoint locks its own
            # row, each effect the other's) deadlock; Postgres aborts one, which tries again.
            for attempt in Retrying(
                retry=retry_if_exception_type(DeadlockConflict), stop=stop_after_attempt(5), wait=wait_random(0, 0.1), reraise=True
            ):
                with attempt, self.db.transaction() as conn:
                    self.checkpoint(ctx, function_id, function_name, output=output, connection=conn)
                    value = effect(conn)
        if after is not None:
            after(value)
        return value

    # -- results ------------------------------------------------------------------------------

    def child_result(self, parent: WorkflowContext, workflow_id: str) -> Any:
        """``get_result`` inside a workflow: a ``DBOS.getResult`` step recording the outcome."""
        function_id, recorded = self.begin_operation(parent, "DBOS.getResult")
        if recorded is not NOT_RECORDED:
            return recorded
        started = now_ms()
        try:
            value = self.wait_result(workflow_id)
        except (DBOSWorkflowFencedError, ExecutorShutdown):
            raise
        except Exception as exc:
            self.checkpoint(parent, function_id, "DBOS.getResult", error=serialize_exception(exc),
                            started_at_ms=started, child_workflow_id=workflow_id)
            raise
        self.checkpoint(parent, function_id, "DBOS.getResult", output=serialize(value),
                        started_at_ms=started, child_workflow_id=workflow_id)
        return value

    def wait_result(self, workflow_id: str, timeout_sec: float | None = None) -> Any:
        """Block until the workflow finishes; return its result or raise its error."""
        return await_outcome(self.db, workflow_id, timeout_sec, self.stop_event, self._local.get)

# -- helpers shared with runtime.steps ----------------------------------------------------------

def call_workflow_function(entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if entry.kind in (INSTANCE_METHOD, CLASS_METHOD):
        return entry.func(bound, *args, **kwargs)
    return entry.func(*args, **kwargs)


def _bound_names(entry: RegisteredWorkflow, bound: Any) -> tuple[str | None, str | None]:
    if entry.kind == INSTANCE_METHOD:
        return type(bound).__qualname__, getattr(bound, "config_name", None)
    if entry.kind == CLASS_METHOD:
        return bound.__qualname__, None
    return None, None


def take_start_position(
    parent: WorkflowContext | None, options: Any, entry: RegisteredWorkflow
) -> tuple[int | None, str, str | None]:
    """The step position and id of a workflow being started: inside a workflow the next
    position and ``<parent>-<position>`` (unless ``SetWorkflowID`` names one), else a new UUID.
    The third value is the child's id when a replayed parent recorded this start already."""
    function_id = parent.next_function_id() if parent is not None else None
    workflow_id = options.workflow_id or (f"{parent.workflow_id}-{function_id}" if parent is not None else str(uuid.uuid4()))
    if parent is not None and function_id is not None:
        recorded = parent.recorded_step(function_id)
        if recorded is not None:
            check_recorded_name(parent, function_id, entry.name, recorded)
            return function_id, workflow_id, recorded.child_workflow_id or workflow_id
    return function_id, workflow_id, None


def _validate(entry: RegisteredWorkflow, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    assert entry.validate_input is not None
    try:
        verdict = entry.validate_input(*args, **kwargs)
    except Exception as exc:
        raise DBOSInvalidInputError(f"invalid input for workflow {entry.name!r}: {exc}") from exc
    if verdict is False:
        raise DBOSInvalidInputError(f"invalid input for workflow {entry.name!r}: rejected by its validate_input")


def _timeout(
    options: Any, parent: WorkflowContext | None, db_now_ms: Callable[[], int]
) -> tuple[int | None, int | None]:
    """The timeout and the deadline a new workflow records. A new deadline counts from the
    database clock (``db_now_ms``), as every host that checks it does."""
    if options.timeout_set:
        if options.timeout_sec is None:
            return None, None
        timeout_ms = int(options.timeout_sec * 1000)
        return timeout_ms, db_now_ms() + timeout_ms
    if parent is not None:  # children inherit the parent's deadline
        return parent.timeout_ms, parent.deadline_epoch_ms
    return None, None


def check_recorded_name(ctx: WorkflowContext, function_id: int, expected: str, recorded: StepRow) -> None:
    if recorded.function_name != expected:
        raise DBOSUnexpectedStepError(ctx.workflow_id, function_id, expected, recorded.function_name)


def replay_recorded(ctx: WorkflowContext, function_id: int, expected: str, recorded: StepRow) -> Any:
    """Return a recorded operation's output, or raise its recorded error."""
    check_recorded_name(ctx, function_id, expected, recorded)
    if recorded.error is not None:
        raise deserialize_exception(recorded.error, recorded.serialization)
    return deserialize(recorded.output, recorded.serialization, what=f"output of {expected!r}")
