"""The executor: runs workflows in this process against the system database.

Each process object (:class:`runtime.process.DBOSProcess`) builds one ``Executor`` when it
launches, with what it needs passed in: the configuration, the system (and application)
database, the registry of functions, the notification hub, and the hooks into the cluster
services around it. The executor runs workflow bodies with a :class:`WorkflowContext`
(:meth:`Executor.run`), records their operations (:meth:`Executor.checkpoint`) and final status,
and knows what runs here. Starting a workflow is in :mod:`runtime.starts`, enqueueing in
:mod:`runtime.enqueue`, thread admission in :mod:`runtime.admission`, waiting for results in
:mod:`runtime.results`; steps and sleeps in :mod:`runtime.steps`, transactions in
:mod:`runtime.transactions` (datasources: :mod:`runtime.datasource`); recovery,
claimed and assigned work in :mod:`runtime.recovery`.

Every write on behalf of a running workflow is fenced on its token (:mod:`runtime.fencing`):
when the database says the token is stale, the workflow stops and writes nothing more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random

from sysdb import SystemDatabase, now_ms
from sysdb.errors import DeadlockConflict, DuplicateCheckpointError

from . import logs
from .admission import ThreadAdmission
from .aio import AsyncWork, BackgroundLoop
from .config import ResolvedConfig
from .context import WorkflowContext, current_workflow
from .current import not_launched
from .errors import DBOSUnexpectedStepError, DBOSWorkflowCancelledError, DBOSWorkflowFencedError
from .notifications import NotificationHub
from .operations import NOT_RECORDED, ExecutorShutdown, fenced_step, replay_recorded
from .registry import RegisteredWorkflow, Registry
from .results import LocalRun, await_outcome, await_outcome_async
from .runs import WorkflowRuns
from .serialization import default_format, serialize, serialize_exception
from .tracing import note_step_position, tracing_enabled

__all__ = ["Executor", "ClusterHooks", "STANDALONE"]


class ClusterHooks(Protocol):
    """What an executor asks of the cluster around it (its process object's services)."""

    def lease_valid(self) -> bool:
        """Whether this member's membership lease still holds (a local clock check)."""
        ...

    def queue_work_changed(self, queue_name: str) -> None:
        """Work was enqueued on ``queue_name``, or a workflow of it finished here: wake claimers."""
        ...

    def stopped_by_outage(self, workflow_id: str, owner_epoch: int) -> None:
        """A run that a database outage stopped has ended, its row still PENDING here."""
        ...


class _Standalone:
    """The hooks of an executor that no cluster membership backs: its lease always holds."""

    def lease_valid(self) -> bool:
        return True

    def queue_work_changed(self, queue_name: str) -> None:
        pass

    def stopped_by_outage(self, workflow_id: str, owner_epoch: int) -> None:
        pass


STANDALONE: ClusterHooks = _Standalone()


class Executor(WorkflowRuns):
    """Runs workflows for one process object."""

    def __init__(
        self,
        config: ResolvedConfig,
        db: SystemDatabase,
        app_db: SystemDatabase | None,
        registry: Registry,
        hub: NotificationHub,
        hooks: ClusterHooks = STANDALONE,
    ) -> None:
        super().__init__(hooks.lease_valid)
        self.config = config
        self.executor_id = config.executor_id
        self._db = db
        self._closed = False
        # The application database of @DBOS.transaction functions, when it is not the system one.
        self.app_db = app_db
        self.registry = registry
        self.hub = hub  # wakes this executor's recv/get_event waiters when a NOTIFY arrives
        self.hooks = hooks
        self.application_version: str = config.application_version or registry.code_version()
        self.stop_event = threading.Event()
        self.log = logs.logger.bind(executor_id=self.executor_id)
        self.threads = ThreadAdmission(config.max_executor_threads, self.stop_event)
        # The blocking side of async workflows and _async calls: one thread per pool connection.
        self.async_work = AsyncWork(config.sys_db_pool_size, f"pgfleet-async-{config.executor_id}")
        # Where async workflows that nobody awaits run (started from sync code, claimed, recovered).
        self.background_loop = BackgroundLoop(f"pgfleet-loop-{config.executor_id}")
        self._lock = threading.Lock()
        self._local: dict[str, LocalRun] = {}
        # Ownership epochs of the workflows running here (the assignment poller skips them).
        self._running_epochs: set[int] = set()

    @property
    def db(self) -> SystemDatabase:
        """The system database; once :meth:`close` ran (``DBOS.destroy()``), using it raises as
        DBOS does for a handle or a call that outlived its launch."""
        if self._closed:
            raise not_launched()
        return self._db

    # -- what runs here ------------------------------------------------------------------------

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
        """Run a workflow in the background, in a thread :mod:`runtime.admission` admits (a
        child of a running workflow is admitted at once); an async one as a task of the
        background loop, admitted the same way."""
        with self._lock:
            self._running_epochs.add(ctx.owner_epoch)
        name = f"workflow-{ctx.workflow_id}"
        if not entry.is_async:
            self.threads.admit(name, lambda: self.run(ctx, entry, bound, args, kwargs, background=True), child=child)
            return

        def submit(done: Callable[[], None]) -> None:
            self.background_loop.submit(lambda: self.run_async(ctx, entry, bound, args, kwargs, background=True), done)

        self.threads.admit_async(name, submit, child=child)

    def capacity(self) -> int:
        """How many more background workflows could start running now (claims take no more)."""
        return self.threads.capacity()

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
        serialization: str | None = None,
        completed_at_ms: int | None = None,
        connection: Any = None,
    ) -> None:
        """Record one operation of a running workflow, fenced by its token."""
        with self.fenced_write(ctx):
            step = fenced_step(
                ctx,
                function_id,
                function_name,
                output=output,
                error=error,
                serialization=serialization or default_format(),  # None: the format serialize() wrote in
                started_at_ms=started_at_ms if started_at_ms is not None else now_ms(),
                child_workflow_id=child_workflow_id,
                completed_at_ms=completed_at_ms,
            )
            try:
                self.db.steps.record(step, connection=connection)
            except DuplicateCheckpointError as exc:
                if exc.recorded_name == function_name:
                    raise
                # Another operation holds this position: the workflow is not deterministic.
                raise DBOSUnexpectedStepError(ctx.workflow_id, function_id, function_name, exc.recorded_name) from None

    def begin_operation(self, ctx: WorkflowContext, function_name: str) -> tuple[int, Any]:
        """Take the workflow's next step position for ``function_name``.

        Returns ``(function_id, recorded)``: on replay the recorded output (a recorded error is
        raised, a different recorded name raises ``DBOSUnexpectedStepError``); on a first
        execution ``NOT_RECORDED``.
        """
        self.check_running(ctx)
        function_id = ctx.next_function_id()
        if tracing_enabled():  # the step's span (opened by its decorator) learns its position
            note_step_position(function_id)
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

    def child_result(self, parent: WorkflowContext, workflow_id: str, *, recorded_as: str | None = None) -> Any:
        """``get_result`` inside a workflow: a ``DBOS.getResult`` step recording the outcome
        (with ``recorded_as`` as its child id, if given)."""
        function_id, recorded = self.begin_operation(parent, "DBOS.getResult")
        if recorded is not NOT_RECORDED:
            return recorded
        started = now_ms()
        child_id = recorded_as or workflow_id
        try:
            value = self.wait_result(workflow_id)
        except (DBOSWorkflowFencedError, ExecutorShutdown):
            raise
        except Exception as exc:
            self.checkpoint(parent, function_id, "DBOS.getResult", error=serialize_exception(exc),
                            started_at_ms=started, child_workflow_id=child_id)
            raise
        self.checkpoint(parent, function_id, "DBOS.getResult", output=serialize(value),
                        started_at_ms=started, child_workflow_id=child_id)
        return value

    def wait_result(self, workflow_id: str, timeout_sec: float | None = None) -> Any:
        """Block until the workflow finishes; return its result or raise its error."""
        return await_outcome(self.db, workflow_id, timeout_sec, self.stop_event, self._local.get)

    async def wait_result_async(self, workflow_id: str, timeout_sec: float | None = None) -> Any:
        """:meth:`wait_result` on the caller's loop, holding no thread while it waits."""
        return await await_outcome_async(self.db, workflow_id, timeout_sec, self.stop_event, self._local.get, self.async_work)

    # -- stopping ------------------------------------------------------------------------------

    def drain(self, timeout_sec: float) -> None:
        """Let the running workflows finish, for up to ``timeout_sec`` in all: those of the
        admitted threads and of the background loop, and those that callers' own threads and
        loops run (awaited, or started with ``start_workflow_async``), as DBOS waits for every
        active workflow of the process."""
        if timeout_sec <= 0:
            return
        deadline = time.monotonic() + timeout_sec
        self.threads.join_until(deadline)
        while True:
            with self._lock:
                running = [local for local in self._local.values() if not local.done.is_set()]
            left = deadline - time.monotonic()
            if (not running and not self.background_loop.running()) or left <= 0:
                return
            if running:
                running[0].done.wait(left)
            else:
                time.sleep(min(0.05, left))  # a background task that ended its run, not yet its task

    def stop(self, reason: str) -> None:
        """Abandon whatever still runs (it stops at its next write, writing nothing) and wake
        every wait of this executor, which then raises :class:`ExecutorShutdown`."""
        self.abandon_all(reason)
        self.stop_event.set()

    def close(self) -> None:
        """Wait a little for the stopped threads, then close the databases."""
        self.threads.join_each(5.0)
        self.background_loop.stop(5.0)
        self.async_work.close()
        self._closed = True
        self._db.close()
        if self.app_db is not None:
            self.app_db.close()
