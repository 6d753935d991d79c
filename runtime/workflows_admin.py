"""Listing, cancelling, resuming and forking workflows (``DBOS.list_workflows`` and friends).

Cancel, resume and fork take an optional ``conn``: called from inside a workflow, their effect
runs on the connection of the workflow's fenced checkpoint and commits with it
(``Executor.recorded_effect``), so an execution that lost its workflow changes nothing.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sysdb import SystemDatabase
from sysdb.listing import UnknownFilterError

from .context import current_workflow, take_start_options
from .errors import DBOSException, DBOSNonExistentWorkflowError, DBOSWorkflowCancelledError
from .queues import INTERNAL_QUEUE_NAME
from .status import WorkflowStatus, status_from_row

if TYPE_CHECKING:
    from .executor import Executor

__all__ = [
    "list_workflows",
    "cancel_workflow",
    "resume_workflow",
    "wake_resumed",
    "fork_workflow",
    "wake_forked",
    "cancel_recorded",
    "resume_recorded",
    "fork_recorded",
]

def list_workflows(db: SystemDatabase, *, load_input: bool = True, load_output: bool = True, **criteria: Any) -> list[WorkflowStatus]:
    """Workflows matching DBOS's ``list_workflows`` filters, oldest first unless ``sort_desc``
    (see :func:`sysdb.listing.select_workflows` for the criteria)."""
    try:
        rows = db.admin.list_workflows(load_input=load_input, load_output=load_output, **criteria)
    except UnknownFilterError as exc:
        raise TypeError(str(exc)) from None  # as DBOS's keyword-only signature raises
    return [status_from_row(r, load_input=load_input, load_output=load_output) for r in rows]


def cancel_workflow(db: SystemDatabase, workflow_id: str, conn: Any = None) -> None:
    """Mark a workflow CANCELLED unless it has finished; its owner stops at its next write."""
    changed = db.admin.cancel(workflow_id, connection=conn)
    if not changed and db.workflows.status(workflow_id) is None:
        raise DBOSNonExistentWorkflowError("target", workflow_id)


def resume_workflow(db: SystemDatabase, workflow_id: str, *, queue_name: str | None = None, conn: Any = None) -> bool:
    """DBOS's resume: a workflow that has not finished (cancelled, dead-lettered, waiting in a
    queue or delayed) goes to ``queue_name`` (the internal queue by default) as ENQUEUED with a
    fresh recovery budget, and whichever executor claims it replays it from its first unfinished
    step. False when it had finished or is running (PENDING). With ``conn`` the
    claimers are not woken (the caller wakes them after its commit: :func:`wake_resumed`).

    The claim gives it a new epoch, so any execution of it still running is fenced out at its
    next write; and a retry after a lost reply writes the same values again (or finds it claimed)."""
    queue = queue_name or INTERNAL_QUEUE_NAME
    resumed = db.admin.resume_enqueued(workflow_id, queue_name=queue, connection=conn)
    if not resumed and db.workflows.status(workflow_id) is None:
        raise DBOSNonExistentWorkflowError("target", workflow_id)
    if conn is None:
        db.claims.wake_queue(queue)
    return resumed


def wake_resumed(db: SystemDatabase, queue_name: str | None) -> None:
    """Wake the claimers of the queue a resume committed in a caller's transaction used."""
    db.claims.wake_queue(queue_name or INTERNAL_QUEUE_NAME)


def fork_workflow(
    db: SystemDatabase,
    workflow_id: str,
    start_step: int,
    *,
    new_workflow_id: str | None = None,
    application_version: str | None = None,
    conn: Any = None,
) -> str:
    """Start a copy of a workflow that reuses its recorded steps before ``start_step`` and runs
    the rest again (on any executor, through the internal queue). Returns the new id. With
    ``conn`` the claimers are not woken (the caller wakes them after its commit).

    As in DBOS any step number is accepted: 1 or less copies no step (the copy runs from the
    start), one past the last step copies them all. Without ``application_version`` the copy
    records none, and the executor that claims it gives it its own (as a DBOS dequeue does)."""
    if not isinstance(start_step, int):
        raise DBOSException(f"start_step must be a step number, got {start_step!r}")
    new_id = new_workflow_id or str(uuid.uuid4())
    forked = db.admin.fork(
        workflow_id,
        new_workflow_id=new_id,
        start_step=start_step,
        queue_name=INTERNAL_QUEUE_NAME,
        application_version=application_version,
        connection=conn,
    )
    if not forked:
        if db.workflows.status(workflow_id) is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        raise DBOSException(f"cannot fork {workflow_id!r} as {new_id!r}: a workflow with that id exists")
    if conn is None:
        db.claims.wake_queue(INTERNAL_QUEUE_NAME)
    return new_id


def wake_forked(db: SystemDatabase) -> None:
    """Wake the claimers of the internal queue for a fork committed in a caller's transaction."""
    db.claims.wake_queue(INTERNAL_QUEUE_NAME)


# -- DBOS.cancel_workflow, resume_workflow and fork_workflow: checkpointed inside a workflow ------


def cancel_recorded(executor: Executor, workflow_id: str) -> None:
    """Cancel a workflow (see :meth:`Executor.recorded_effect` for the call inside a workflow)."""
    ctx = current_workflow()

    def cancelled(_: Any) -> None:
        # A workflow that cancelled itself stops at its next operation, as one cancelled
        # elsewhere would (once: not when a resumed run replays this call).
        if ctx is not None and ctx.workflow_id == workflow_id:
            executor.lose(ctx, DBOSWorkflowCancelledError(f"Workflow {workflow_id} is cancelled. Aborting function."))

    executor.recorded_effect(
        "DBOS.cancelWorkflow", lambda conn: cancel_workflow(executor.db, workflow_id, conn), after=cancelled
    )


def resume_recorded(executor: Executor, workflow_id: str, queue_name: str | None = None) -> None:
    """Resume a cancelled (or dead-lettered) workflow through a queue (see :func:`resume_workflow`)."""
    executor.recorded_effect(
        "DBOS.resumeWorkflow",
        lambda conn: resume_workflow(executor.db, workflow_id, queue_name=queue_name, conn=conn),
        after=lambda _: wake_resumed(executor.db, queue_name),
    )


def fork_recorded(executor: Executor, workflow_id: str, start_step: int, application_version: str | None) -> str:
    """Fork a workflow from ``start_step``; returns the copy's id (``SetWorkflowID``'s, if set)."""
    # Chosen before the fork, so that the checkpoint written with it can record it.
    new_id = take_start_options().workflow_id or str(uuid.uuid4())

    def fork(conn: Any) -> str:
        return fork_workflow(
            executor.db, workflow_id, start_step, new_workflow_id=new_id, application_version=application_version, conn=conn
        )

    forked: str = executor.recorded_effect("DBOS.forkWorkflow", fork, recorded_output=new_id, after=lambda _: wake_forked(executor.db))
    return forked
