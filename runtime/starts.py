"""Starting a workflow in this executor: a direct call, ``DBOS.start_workflow``, or a child.

A start writes the workflow's PENDING row under a fresh ownership epoch (a child's together
with its parent's fenced step, :func:`runtime.ownership.insert_start_row`) and then runs the
body here: in the caller's thread (a direct call returns the result) or in a thread of its own
(a handle is returned at once). An id that exists already is never run twice: the start waits
for (or hands back a handle on) the existing workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .context import StartOptions, WorkflowContext, current_workflow, take_start_options
from .current import executor_for
from .errors import (
    DBOSConflictingWorkflowError,
    DBOSNonExistentWorkflowError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowFencedError,
)
from .handles import WorkflowHandle
from .operations import ExecutorShutdown, check_recorded_name, replay_recorded
from .ownership import insert_start_row
from .registry import RegisteredWorkflow, split_bound, workflow_of
from .serialization import serialize, serialize_exception
from .tracing import start_parent
from .workflow_start import StartPosition, WorkflowStart, call_start, start_timeout, take_start_position, validate_input

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["start_call", "start_workflow", "check_same_workflow", "plan_start", "run_for_caller", "StartPlan"]


def start_call(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], executor: Executor | None = None
) -> WorkflowHandle[Any]:
    """``DBOS.start_workflow(func, *args, **kwargs)`` through ``executor`` (by default the one a
    call made here goes to: see :func:`runtime.current.executor_for`)."""
    entry, bound = workflow_of(func)
    if executor is None:
        executor = executor_for(f"workflow {entry.name!r}")
    if bound is None:
        bound, args = split_bound(entry, args)
    handle: WorkflowHandle[Any] = start_workflow(executor, entry, bound, tuple(args), kwargs, background=True)
    return handle


def start_workflow(
    executor: Executor,
    entry: RegisteredWorkflow,
    bound: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    background: bool,
) -> Any:
    """Start a workflow: run it here and return its result, or return a handle at once."""
    parent = current_workflow()
    if parent is not None:
        parent.refuse_workflow_start("start" if background else "call", entry.name)
        executor.check_running(parent)
    options = take_start_options()
    validate_input(entry, args, kwargs)
    position = take_start_position(parent, options, entry)
    plan = plan_start(executor, entry, bound, args, kwargs, options, parent, position, background=background)
    if plan.context is None:  # never run an existing workflow twice: its handle, or its outcome
        return _existing(executor, parent, plan.workflow_id, background, result_as=plan.result_as)
    ctx = plan.context
    if background:
        executor.spawn(ctx, entry, bound, args, kwargs, child=parent is not None)
        return WorkflowHandle(ctx.workflow_id, source=executor)
    if parent is None:
        return run_for_caller(executor, ctx, entry, bound, args, kwargs)
    return _run_child(executor, parent, ctx, entry, bound, args, kwargs)


def run_for_caller(
    executor: Executor, ctx: WorkflowContext, entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run a workflow body for the caller waiting on it. A body stopped by its cancellation (a
    cancel, its deadline) gives the caller the recorded outcome, as DBOS does: a
    ``DBOSAwaitedWorkflowCancelledError`` it can catch (a parent records it as its child's)."""
    try:
        return executor.run(ctx, entry, bound, args, kwargs)
    except DBOSWorkflowCancelledError:
        return executor.wait_result(ctx.workflow_id)


@dataclass(frozen=True)
class StartPlan:
    """What a start does once its row is settled: run ``context`` here, or (None) wait for or
    hand back the existing ``workflow_id`` (its result recorded as ``result_as`` if given)."""

    workflow_id: str
    context: WorkflowContext | None
    result_as: str | None = None


def plan_start(
    executor: Executor,
    entry: RegisteredWorkflow,
    bound: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: StartOptions,
    parent: WorkflowContext | None,
    position: StartPosition,
    *,
    background: bool,
) -> StartPlan:
    """Write the start's PENDING row, unless its id exists (the blocking half of a start,
    shared by sync and async starts)."""
    if position.replayed_child is not None:  # replay: an earlier execution started this child
        # As DBOS: the result step names the id this execution gives the child, which is not
        # the recorded child's in a fork (``<fork>-<n>``, while the result is the original's).
        return StartPlan(position.replayed_child, None, result_as=position.workflow_id)
    direct_child = parent is not None and not background and position.function_id is not None
    if direct_child:
        assert parent is not None and position.function_id is not None
        # A direct child's result takes the next position: a replay that recorded something
        # else there is not deterministic, and starts nothing.
        recorded = parent.recorded_step(position.function_id + 1)
        if recorded is not None:
            check_recorded_name(parent, position.function_id + 1, "DBOS.getResult", recorded)
            if recorded.error is not None:  # an earlier execution's start conflicted (below)
                replay_recorded(parent, parent.next_function_id(), "DBOS.getResult", recorded)
    start = _direct_start(executor, entry, bound, args, kwargs, options, parent, position)
    # A child's row commits with its parent's fenced step: a parent that lost its workflow
    # starts nothing (and its execution is marked lost).
    with executor.fenced_write(parent):
        epoch = insert_start_row(executor, parent, start.new_workflow(), position.function_id)
    if epoch is None:  # the id exists: never run it twice, wait for its outcome instead
        try:
            check_same_workflow(executor, start.workflow_id, entry, start.class_name, start.config_name)
        except DBOSConflictingWorkflowError as exc:
            if direct_child:
                assert parent is not None
                # As DBOS: the conflict is the call's outcome, recorded at its result's position.
                executor.checkpoint(parent, parent.next_function_id(), "DBOS.getResult", error=serialize_exception(exc),
                                    child_workflow_id=start.workflow_id)
            raise
        return StartPlan(start.workflow_id, None)
    return StartPlan(start.workflow_id, _context(executor, start, options, epoch))


def _direct_start(
    executor: Executor,
    entry: RegisteredWorkflow,
    bound: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: StartOptions,
    parent: WorkflowContext | None,
    position: StartPosition,
) -> WorkflowStart:
    """The row of a workflow that this executor runs at once, under its code version."""
    timeout_ms, deadline_ms = start_timeout(options, parent, executor.db.clock.now_ms)
    return call_start(
        entry, bound, args, kwargs, options, parent, position.workflow_id, executor.config.name,
        executor_id=executor.executor_id,
        application_version=executor.application_version,
        timeout_ms=timeout_ms,
        deadline_ms=deadline_ms,
    )


def _context(executor: Executor, start: WorkflowStart, options: StartOptions, epoch: int) -> WorkflowContext:
    return WorkflowContext(
        workflow_id=start.workflow_id,
        name=start.name,
        executor_id=executor.executor_id,
        owner_epoch=epoch,
        executor=executor,
        generation=executor.generation,
        authenticated_user=start.authenticated_user,
        authenticated_roles=start.authenticated_roles,
        assumed_role=start.assumed_role,
        deadline_epoch_ms=start.deadline_ms,
        timeout_ms=start.timeout_ms,
        serialization=start.serialization,
        trace_parent=start_parent(start.attributes),  # None with tracing off
    )


def _existing(
    executor: Executor, parent: WorkflowContext | None, workflow_id: str, background: bool, *, result_as: str | None = None
) -> Any:
    """A start that runs nothing: a handle on the workflow, or its outcome (recorded in the
    parent's steps, under ``result_as`` if given, when started from a workflow)."""
    if background:
        return WorkflowHandle(workflow_id, source=executor)
    if parent is not None:
        return executor.child_result(parent, workflow_id, recorded_as=result_as)
    return executor.wait_result(workflow_id)


def _run_child(
    executor: Executor,
    parent: WorkflowContext,
    ctx: WorkflowContext,
    entry: RegisteredWorkflow,
    bound: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run a child called directly in its parent's thread. Its result is recorded in the parent
    too (``DBOS.getResult``), so a replayed parent reads it without waiting for the child again."""
    result_id = parent.next_function_id()
    try:
        result = run_for_caller(executor, ctx, entry, bound, args, kwargs)
    except (DBOSWorkflowFencedError, ExecutorShutdown):
        raise
    except Exception as exc:
        executor.checkpoint(parent, result_id, "DBOS.getResult", error=serialize_exception(exc), child_workflow_id=ctx.workflow_id)
        raise
    executor.checkpoint(parent, result_id, "DBOS.getResult", output=serialize(result), child_workflow_id=ctx.workflow_id)
    return result


def check_same_workflow(
    executor: Executor, workflow_id: str, entry: RegisteredWorkflow, class_name: str | None, config_name: str | None
) -> None:
    """A start whose id exists already: refuse it unless the existing workflow is the same
    function on the same class and configured instance."""
    row = executor.db.workflows.status(workflow_id)
    if row is None:
        raise DBOSNonExistentWorkflowError("target", workflow_id)
    for recorded, wanted, label in (
        (row.name, entry.name, "function name"),
        (row.class_name, class_name, "class name"),
        (row.config_name, config_name, "config name"),
    ):
        if recorded != wanted:
            raise DBOSConflictingWorkflowError(
                workflow_id,
                f"Workflow already exists with a different {label}: {recorded}, "
                f"but the provided {label} is: {wanted}",
            )
