"""Listing, cancelling, resuming and forking workflows (``DBOS.list_workflows`` and friends)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sysdb import SystemDatabase, now_ms
from sysdb.listing import UnknownFilterError, select_workflows

from .errors import DBOSException, DBOSNonExistentWorkflowError
from .status import WorkflowStatus, status_from_row

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["list_workflows", "cancel_workflow", "resume_workflow", "fork_workflow"]

def list_workflows(db: SystemDatabase, *, load_input: bool = True, load_output: bool = True, **criteria: Any) -> list[WorkflowStatus]:
    """Workflows matching DBOS's ``list_workflows`` filters, oldest first unless ``sort_desc``
    (see :func:`sysdb.listing.select_workflows` for the criteria)."""
    try:
        rows = select_workflows(db, load_input=load_input, load_output=load_output, **criteria)
    except UnknownFilterError as exc:
        raise DBOSException(str(exc)) from None
    return [status_from_row(r, load_input=load_input, load_output=load_output) for r in rows]


def cancel_workflow(db: SystemDatabase, workflow_id: str) -> None:
    """Mark a workflow CANCELLED unless it has finished; its owner stops at its next write."""
    changed = db.execute_count("cancel_workflow", {"workflow_id": workflow_id, "now_ms": now_ms()})
    if changed == 0 and db.get_workflow_status(workflow_id) is None:
        raise DBOSNonExistentWorkflowError(workflow_id)


def resume_workflow(executor: "Executor", workflow_id: str) -> None:
    """Make a workflow PENDING under this executor with a fresh epoch and replay it here."""
    from .recovery import resume_owned

    # The epoch is drawn and held first: it is the resume's attempt token (runtime.ownership).
    token = executor.db.reserve_epoch()
    executor.hold_epoch(token)
    try:
        rows = executor.db.execute(
            "resume_workflow",
            {"workflow_id": workflow_id, "executor_id": executor.executor_id, "owner_epoch": token, "now_ms": now_ms()},
        )
        if rows:
            resume_owned(executor, workflow_id, token)
            return  # the workflow's thread holds the epoch now
    except BaseException:
        executor.release_epoch(token)
        raise
    executor.release_epoch(token)
    if executor.db.get_workflow_status(workflow_id) is None:
        raise DBOSNonExistentWorkflowError(workflow_id)
    # it finished: nothing to resume


def fork_workflow(
    db: SystemDatabase,
    workflow_id: str,
    start_step: int,
    *,
    new_workflow_id: str | None = None,
    application_version: str | None = None,
) -> str:
    """Start a copy of a workflow that reuses its recorded steps before ``start_step`` and runs
    the rest again (on any executor, through the internal queue). Returns the new id."""
    import uuid

    from cluster.claimer import QUEUE_CHANNEL

    from .queues import INTERNAL_QUEUE_NAME

    if not isinstance(start_step, int) or start_step < 1:
        raise DBOSException(f"start_step must be a step number >= 1, got {start_step!r}")
    new_id = new_workflow_id or str(uuid.uuid4())
    rows = db.execute(
        "fork_workflow",
        {
            "workflow_id": workflow_id,
            "new_workflow_id": new_id,
            "start_step": start_step,
            "queue_name": INTERNAL_QUEUE_NAME,
            "application_version": application_version,
            "now_ms": now_ms(),
        },
    )
    if not rows:
        if db.get_workflow_status(workflow_id) is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        raise DBOSException(f"cannot fork {workflow_id!r} as {new_id!r}: a workflow with that id exists")
    db.notify(QUEUE_CHANNEL, INTERNAL_QUEUE_NAME)
    return new_id
