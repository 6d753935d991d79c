"""``DBOS.patch`` and ``DBOS.deprecate_patch``: changing a workflow's code while executions of
its old code are still in flight.

A patch is a marker step (``DBOS.patch-<name>``, no output) at the position where the new code
diverges. ``if DBOS.patch("x"): new() else: old()``: a new execution records the marker and takes
the new path; an old execution recovered on the new code finds its old step at that position
and keeps the old path, so its recorded history replays unchanged. Once no execution of the old
code remains, ``DBOS.deprecate_patch("x")`` replaces the branch: it reads a marker recorded
there (so executions from the patched code still replay) but records none, and a release later
it can be deleted. Both need ``enable_patching`` in the config, which also gives every deploy
the one application version ``PATCHING_ENABLED`` so old executions recover on new code.
``patch_async`` and ``deprecate_patch_async`` decide on the event loop, before any await, so
their position does not depend on the tasks gathered with them.
"""

from __future__ import annotations

from sysdb import DuplicateCheckpointError

from .aio import in_thread
from .context import WorkflowContext, current_workflow
from .current import current_process, not_launched
from .errors import DBOSException, DBOSUnexpectedStepError
from .on_loop import refuse_on_loop
from .operations import fenced_step

__all__ = ["VersioningAPI", "PATCH_PREFIX"]

# DBOS's name of a patch's marker step.
PATCH_PREFIX = "DBOS.patch-"


def _patching_workflow(operation: str) -> WorkflowContext:
    """The calling workflow, once patching is known to be on (DBOS checks in this order), and
    still running here."""
    ctx = _patching_context(operation)
    ctx.executor.check_running(ctx)
    return ctx


def _patching_context(operation: str) -> WorkflowContext:
    """The calling workflow, once patching is known to be on (DBOS checks in this order)."""
    ctx = current_workflow()
    if ctx is not None:
        config = ctx.executor.config
    else:
        process = current_process()
        if process is None:
            raise not_launched()
        config = process.config
    if config.raw.get("enable_patching") is not True:
        raise DBOSException("enable_patching must be True in DBOS configuration")
    if ctx is None or ctx.in_step or ctx.in_transaction:
        raise DBOSException(f"{operation} must be called from a workflow")
    return ctx


def _recorded_name(ctx: WorkflowContext, function_id: int) -> str | None:
    recorded = ctx.recorded_step(function_id)
    return recorded.function_name if recorded is not None else None


def _record_marker(ctx: WorkflowContext, function_id: int, name: str) -> None:
    """The patch's marker step, fenced like every checkpoint; no output and, as DBOS writes
    it, no serialization."""
    executor = ctx.executor
    with executor.fenced_write(ctx):
        try:
            executor.db.steps.record(fenced_step(ctx, function_id, name))
        except DuplicateCheckpointError as exc:
            if exc.recorded_name == name:
                return  # recorded by a concurrent execution of the same code: the same answer
            raise DBOSUnexpectedStepError(ctx.workflow_id, function_id, name, exc.recorded_name) from None


class VersioningAPI:
    """The workflow-versioning class methods of :class:`runtime.DBOS`."""

    @classmethod
    def patch(cls, patch_name: str) -> bool:
        """Inside a workflow: True where the patched code runs (a new execution, or one that
        recorded this patch), False for an execution that recorded the old code's step here."""
        refuse_on_loop("DBOS.patch")
        ctx = _patching_workflow("DBOS.patch")
        name = PATCH_PREFIX + patch_name
        function_id = ctx.peek_function_id()
        recorded = _recorded_name(ctx, function_id)
        if recorded is None:
            ctx.next_function_id()
            _record_marker(ctx, function_id, name)
            return True
        if recorded == name:
            ctx.next_function_id()
            return True
        return False  # an old execution: the old code's step holds this position

    @classmethod
    def deprecate_patch(cls, patch_name: str) -> bool:
        """Inside a workflow, in place of a ``patch`` whose old code no execution runs anymore:
        always True; replays an execution that recorded the patch, records nothing new."""
        refuse_on_loop("DBOS.deprecate_patch")
        ctx = _patching_workflow("DBOS.deprecate_patch")
        if _recorded_name(ctx, ctx.peek_function_id()) == PATCH_PREFIX + patch_name:
            ctx.next_function_id()
        return True

    @classmethod
    async def patch_async(cls, patch_name: str) -> bool:
        """``patch`` for asyncio code. Whether the patch applies, and the position its marker
        takes, are decided on the loop in one slice (the earlier execution's steps are in
        memory), before any await: no sibling task of an ``asyncio.gather`` can take a position
        in between, so the marker's position is the same at every execution (where DBOS raises
        ``DBOSPatchNondeterminismError`` if one did). The marker is written in a worker thread."""
        ctx = _patching_context("DBOS.patch_async")
        name = PATCH_PREFIX + patch_name
        function_id = ctx.peek_function_id()
        recorded = _recorded_name(ctx, function_id)
        applies = recorded is None or recorded == name
        if applies:
            ctx.next_function_id()  # the peeked position, taken in the same slice of the loop

        def write() -> None:
            ctx.executor.check_running(ctx)
            if recorded is None:
                _record_marker(ctx, function_id, name)

        await in_thread(ctx.executor.async_work, write)
        return applies

    @classmethod
    async def deprecate_patch_async(cls, patch_name: str) -> bool:
        """``deprecate_patch`` for asyncio code (decided on the loop, as ``patch_async``)."""
        ctx = _patching_context("DBOS.deprecate_patch_async")
        if _recorded_name(ctx, ctx.peek_function_id()) == PATCH_PREFIX + patch_name:
            ctx.next_function_id()
        await in_thread(ctx.executor.async_work, ctx.executor.check_running, ctx)
        return True
