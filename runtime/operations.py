"""What every checkpointed operation of a workflow shares: its replay and its fenced step row.

A step, a sleep, a send or a child start takes the workflow's next step position. On replay the
position's recorded outcome is returned (:func:`replay_recorded`) and nothing runs; on a first
execution :data:`NOT_RECORDED` says so, and the operation writes its step row, fenced on the
workflow's token (:func:`fenced_step` for the writes that commit it with their own effects).
"""

from __future__ import annotations

from typing import Any

from sysdb import now_ms
from sysdb.steps import StepRecord, StepRow

from .context import WorkflowContext
from .errors import DBOSUnexpectedStepError
from .serialization import deserialize, deserialize_exception

__all__ = ["NOT_RECORDED", "ExecutorShutdown", "fenced_step", "check_recorded_name", "replay_recorded"]

# What Executor.begin_operation returns for an operation that has no recorded outcome yet.
NOT_RECORDED: Any = object()


class ExecutorShutdown(BaseException):
    """Raised inside workflow threads when DBOS.destroy() stops the executor.

    A BaseException so that user code catching ``Exception`` does not swallow it: the workflow
    must stop without recording anything, and stays PENDING for recovery.
    """


def fenced_step(ctx: WorkflowContext, function_id: int, function_name: str, **extra: Any) -> StepRecord:
    """A workflow operation's fenced step row (``db.steps.record``), for the writes that commit
    it together with their own effects (send, recv, events, streams, enqueue); it started now
    unless ``extra`` says when (``started_at_ms``)."""
    if "started_at_ms" not in extra:
        extra["started_at_ms"] = now_ms()
    return StepRecord(
        workflow_id=ctx.workflow_id,
        executor_id=ctx.executor_id,
        owner_epoch=ctx.owner_epoch,
        function_id=function_id,
        function_name=function_name,
        **extra,
    )


def check_recorded_name(ctx: WorkflowContext, function_id: int, expected: str, recorded: StepRow) -> None:
    if recorded.function_name != expected:
        raise DBOSUnexpectedStepError(ctx.workflow_id, function_id, expected, recorded.function_name)


def replay_recorded(ctx: WorkflowContext, function_id: int, expected: str, recorded: StepRow) -> Any:
    """Return a recorded operation's output, or raise its recorded error."""
    check_recorded_name(ctx, function_id, expected, recorded)
    if recorded.error is not None:
        raise deserialize_exception(recorded.error, recorded.serialization)
    return deserialize(recorded.output, recorded.serialization, what=f"output of {expected!r}")
