"""``DBOS``'s workflow management calls, checkpointed when made inside a workflow.

Each is one operation with DBOS's recorded name (``DBOS.cancelWorkflow``, ``DBOS.deleteWorkflow``
...): inside a workflow its effect commits with the fenced checkpoint
(:meth:`Executor.recorded_effect`), so an execution that lost its workflow changes nothing and
a replay never does it twice. Outside a workflow the effect simply runs.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from .context import current_workflow, take_start_options
from .errors import DBOSWorkflowCancelledError, DBOSWorkflowFencedError
from .workflows_admin import (
    cancel_workflows,
    delete_workflows,
    fork_timeout_ms,
    fork_workflow,
    resume_workflows,
    set_workflow_delay,
    update_workflow_attributes,
    validate_workflow_attributes,
    wake_forked,
    wake_resumed,
)

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["cancel_recorded", "resume_recorded", "delete_recorded", "delay_recorded", "attributes_recorded", "fork_recorded"]


def cancel_recorded(executor: Executor, workflow_ids: list[str], cancel_children: bool = False) -> None:
    """Cancel workflows (see :func:`runtime.workflows_admin.cancel_workflows`)."""
    ctx = current_workflow()
    # The executions running here before the cancel: those it stops (one started after it, by
    # a resume, is not cancelled by it).
    running = executor.running_contexts()

    def cancelled(changed: list[str]) -> None:
        # A workflow cancelled from this process (by itself, too) stops at its next operation,
        # before any step body, as DBOS's per-step status check stops it (once: not when a
        # resumed run replays this call). One running elsewhere stops at its next write.
        for workflow_id in changed or ():
            stopped = ctx if ctx is not None and ctx.workflow_id == workflow_id else running.get(workflow_id)
            if stopped is not None:
                executor.lose(stopped, DBOSWorkflowCancelledError(f"Workflow {workflow_id} is cancelled. Aborting function."))

    executor.recorded_effect(
        "DBOS.cancelWorkflow",
        lambda conn: cancel_workflows(executor.db, workflow_ids, cancel_children=cancel_children, conn=conn),
        after=cancelled,
    )


def resume_recorded(executor: Executor, workflow_ids: list[str], queue_name: str | None = None) -> None:
    """Resume workflows through a queue (see :func:`runtime.workflows_admin.resume_workflows`)."""
    executor.recorded_effect(
        "DBOS.resumeWorkflow",
        lambda conn: resume_workflows(executor.db, workflow_ids, queue_name=queue_name, conn=conn),
        after=lambda _: wake_resumed(executor.db, queue_name),
    )


def delete_recorded(executor: Executor, workflow_ids: list[str], delete_children: bool = False) -> None:
    """Delete workflows and what they recorded (see :func:`runtime.workflows_admin.delete_workflows`)."""
    ctx = current_workflow()

    def deleted(gone: list[str]) -> None:
        if executor.app_db is not None and gone:
            executor.app_db.admin.delete_transaction_outputs(gone)
        # A workflow that deleted itself has nothing left to write to: it stops here.
        if ctx is not None and ctx.workflow_id in (gone or ()):
            executor.lose(ctx, DBOSWorkflowFencedError(ctx.workflow_id, "it was deleted"))

    executor.recorded_effect(
        "DBOS.deleteWorkflow",
        lambda conn: delete_workflows(executor.db, workflow_ids, delete_children=delete_children, conn=conn),
        after=deleted,
    )


def delay_recorded(executor: Executor, workflow_id: str, delay_seconds: float | None, delay_until_epoch_ms: int | None) -> None:
    """Move a DELAYED workflow's release time (see :func:`runtime.workflows_admin.set_workflow_delay`)."""
    executor.recorded_effect(
        "DBOS.setWorkflowDelay",
        lambda conn: set_workflow_delay(
            executor.db, workflow_id, delay_seconds=delay_seconds, delay_until_epoch_ms=delay_until_epoch_ms, conn=conn
        ),
    )


def attributes_recorded(executor: Executor, workflow_id: str, attributes: dict[str, Any] | None) -> None:
    """Replace a workflow's attributes (see :func:`runtime.workflows_admin.update_workflow_attributes`)."""
    validate_workflow_attributes(attributes)
    executor.recorded_effect(
        "DBOS.updateWorkflowAttributes",
        lambda conn: update_workflow_attributes(executor.db, workflow_id, attributes, conn=conn),
    )


def fork_recorded(executor: Executor, workflow_id: str, start_step: int, **options: Any) -> str:
    """Fork a workflow from ``start_step``; returns the copy's id (``SetWorkflowID``'s, if set).
    ``options`` are :func:`runtime.workflows_admin.fork_workflow`'s (``queue_name`` ...)."""
    fork_timeout_ms(options.get("timeout_seconds"))  # bad input raises before anything is recorded
    # Chosen before the fork, so that the checkpoint written with it can record it.
    new_id = take_start_options().workflow_id or str(uuid.uuid4())

    def fork(conn: Any) -> str:
        return fork_workflow(executor.db, workflow_id, start_step, new_workflow_id=new_id, conn=conn, **options)

    forked: str = executor.recorded_effect(
        "DBOS.forkWorkflow", fork, recorded_output=new_id, after=lambda _: wake_forked(executor.db, options.get("queue_name"))
    )
    return forked
