"""Running one workflow body that this executor owns, and recording its outcome (fenced).

:meth:`WorkflowRuns.run` runs a sync body in the calling thread; :meth:`WorkflowRuns.run_async`
awaits an ``async def`` body on the calling task's loop, with the same bookkeeping and the same
outcome rules: the outcome of a body is written once, fenced on the execution's token; a body
stopped by its fencing, a cancel or a shutdown writes nothing; a body stopped by a database
outage writes nothing and is taken up again (:meth:`ClusterHooks.stopped_by_outage`).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from sysdb.errors import DatabaseUnavailableError

from . import metrics
from .aio import in_thread, when_calls_settled
from .context import WorkflowContext, enter_workflow, leave_workflow
from .errors import DBOSSerializationError, DBOSWorkflowCancelledError, DBOSWorkflowFencedError
from .fencing import Fencing
from .operations import ExecutorShutdown
from .registry import RegisteredWorkflow, call_workflow_coroutine, call_workflow_function
from .results import LocalRun
from .serialization import serialize, serialize_exception

if TYPE_CHECKING:
    from sysdb import SystemDatabase

    from .aio import AsyncWork
    from .executor import ClusterHooks

__all__ = ["WorkflowRuns"]

# Errors that stop an execution without an outcome of its own: it wrote nothing, and the
# workflow is someone else's (fenced, cancelled) or is recovered later (shutdown).
_STOPS = (DBOSWorkflowFencedError, DBOSWorkflowCancelledError, ExecutorShutdown)


class WorkflowRuns(Fencing):
    """The part of :class:`runtime.executor.Executor` that runs workflow bodies."""

    _lock: threading.Lock
    _local: dict[str, LocalRun]
    _running_epochs: set[int]
    hooks: ClusterHooks
    async_work: AsyncWork
    stop_event: threading.Event
    log: Any

    def run(
        self, ctx: WorkflowContext, entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
        *, background: bool = False,
    ) -> Any:
        """Execute a sync workflow body that this executor owns and record its outcome.
        ``background``: nobody awaits the call (started, claimed, recovered), so an error it
        records is also logged, as DBOS logs it."""
        local = self._begin_run(ctx)
        handed_back = False
        token = enter_workflow(ctx)
        try:
            try:
                self.check_owned(ctx)  # e.g. claimed just before this member's lease ended
                result = call_workflow_function(entry, bound, args, kwargs)
            except BaseException as exc:
                handed_back = self._stopped(ctx, local, exc, background=background)
                raise
            return self._record_result(ctx, entry, local, result)
        finally:
            leave_workflow(token)
            self._end_run(ctx, local, handed_back)

    async def run_async(
        self, ctx: WorkflowContext, entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
        *, background: bool = False,
    ) -> Any:
        """Await an ``async def`` workflow body on this task's loop and record its outcome; the
        database writes run in :attr:`async_work`'s threads, never on the loop (``background``:
        as for :meth:`run`)."""
        local = self._begin_run(ctx)
        handed_back = False
        token = enter_workflow(ctx)
        try:
            try:
                self.check_owned(ctx)
                result = await call_workflow_coroutine(entry, bound, args, kwargs)
            except BaseException as exc:
                handed_back = await in_thread(self.async_work, self._stopped, ctx, local, exc, background=background)
                raise
            return await in_thread(self.async_work, self._record_result, ctx, entry, local, result)
        finally:
            leave_workflow(token)
            self._end_run(ctx, local, handed_back)

    def _begin_run(self, ctx: WorkflowContext) -> LocalRun:
        local = LocalRun(generation=ctx.generation, context=ctx)
        with self._lock:
            self._local[ctx.workflow_id] = local
            self._running_epochs.add(ctx.owner_epoch)
        return local

    def running_contexts(self) -> dict[str, WorkflowContext]:
        """The executions running here now, by workflow id."""
        with self._lock:
            return {wid: run.context for wid, run in self._local.items() if run.context is not None}

    def _stopped(self, ctx: WorkflowContext, local: LocalRun, exc: BaseException, *, background: bool = False) -> bool:
        """A body raised ``exc``: record it as the workflow's error if it is one (and log it
        when nobody awaits the call: ``background``). True when the run ends without an outcome
        and its workflow should run again here (an outage, or an awaiting task cancelled by
        asyncio while it was still this execution's)."""
        local.error = exc
        if isinstance(exc, _STOPS):
            self.log.warning("workflow stopped without recording an outcome", reason=str(exc) or type(exc).__name__)
            return False
        if isinstance(exc, DatabaseUnavailableError):
            # An outage (or a pool that stayed busy) is not the workflow's outcome: stop
            # without recording; it stays PENDING and is taken up again once this run ends.
            self.log.warning("workflow stopped by a database outage; left PENDING for recovery", error=str(exc))
            return True
        if isinstance(exc, asyncio.CancelledError):
            if self.stop_event.is_set():  # the executor is shutting down: recovered later
                self.log.warning("async workflow stopped by the shutdown without recording an outcome")
                return False
            # The task awaiting it was cancelled (a client went away): the caller stops
            # waiting, but the workflow is not over. It stays PENDING and runs again here.
            self.log.warning("async workflow's task was cancelled; left PENDING to run again")
            return ctx.lost is None
        if isinstance(exc, Exception):
            self._finish(ctx, "ERROR", error=serialize_exception(exc, ctx.serialization))
            local.recorded = True
            metrics.count_finished("ERROR")
            if background:  # DBOS's "Exception encountered in background workflow", with its traceback
                self.log.error("background workflow failed", workflow_name=ctx.name, error=repr(exc), exc_info=exc)
        return False

    def _record_result(self, ctx: WorkflowContext, entry: RegisteredWorkflow, local: LocalRun, result: Any) -> Any:
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
        metrics.count_finished("SUCCESS")
        return result

    def _end_run(self, ctx: WorkflowContext, local: LocalRun, handed_back: bool) -> None:
        if handed_back:
            # It runs again here under the same epoch: what this execution left running (a step
            # task of an async body, which a cancel does not reach) must write nothing beside it.
            self.lose(ctx, DBOSWorkflowFencedError(ctx.workflow_id, "its run stopped without an outcome; it runs again"))
        local.finish()
        if ctx.queue_name is not None:
            self.hooks.queue_work_changed(ctx.queue_name)  # a slot of its queue is free
        with self._lock:
            if self._local.get(ctx.workflow_id) is local:
                del self._local[ctx.workflow_id]

        def release() -> None:
            with self._lock:
                self._running_epochs.discard(ctx.owner_epoch)
            if handed_back:
                self.hooks.stopped_by_outage(ctx.workflow_id, ctx.owner_epoch)

        # An async run whose task was cancelled may have left a write running in a worker
        # thread: its epoch stays held here (no sweep runs the workflow again beside it, to
        # meet that write's row) until the write ended.
        when_calls_settled(ctx, release)

    def _finish(self, ctx: WorkflowContext, status: str, *, output: str | None = None, error: str | None = None) -> None:
        if ctx.deadline_epoch_ms is not None and self.db.clock.now_ms() >= ctx.deadline_epoch_ms:
            # A body that ended past its deadline is cancelled, not finished, as in DBOS (whose
            # timer cancels it at the deadline): this cancels it (fenced) and raises.
            self.check_running(ctx)
        with self.fenced_write(ctx):
            self.db.workflows.finish(
                workflow_id=ctx.workflow_id,
                executor_id=ctx.executor_id,
                owner_epoch=ctx.owner_epoch,
                status=status,
                output=output,
                error=error,
            )

    if TYPE_CHECKING:

        @property
        def db(self) -> SystemDatabase: ...  # Executor.db

        def check_running(self, ctx: WorkflowContext) -> None: ...  # Executor.check_running
