"""Listing, cancelling, resuming and forking workflows (``DBOS.list_workflows`` and friends).

Cancel, resume and fork take an optional ``conn``: called from inside a workflow, their effect
runs on the connection of the workflow's fenced checkpoint and commits with it
(``Executor.recorded_effect``), so an execution that lost its workflow changes nothing.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sysdb import SystemDatabase, now_ms
from sysdb.listing import UnknownFilterError, select_workflows

from .errors import DBOSException, DBOSNonExistentWorkflowError
from .queues import INTERNAL_QUEUE_NAME
from .status import WorkflowStatus, status_from_row

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["list_workflows", "cancel_workflow", "resume_workflow", "run_resumed", "fork_workflow", "wake_forked"]

def list_workflows(db: SystemDatabase, *, load_input: bool = True, load_output: bool = True, **criteria: Any) -> list[WorkflowStatus]:
    """Workflows matching DBOS's ``list_workflows`` filters, oldest first unless ``sort_desc``
    (see :func:`sysdb.listing.select_workflows` for the criteria)."""
    try:
        rows = select_workflows(db, load_input=load_input, load_output=load_output, **criteria)
    except UnknownFilterError as exc:
        raise DBOSException(str(exc)) from None
    return [status_from_row(r, load_input=load_input, load_output=load_output) for r in rows]


def _run(db: SystemDatabase, conn: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """A statement on the caller's open transaction when it has one, else on the pool."""
    return db.execute(name, params) if conn is None else db.execute_on(conn, name, params)


def cancel_workflow(db: SystemDatabase, workflow_id: str, conn: Any = None) -> None:
    """Mark a workflow CANCELLED unless it has finished; its owner stops at its next write."""
    changed = _run(db, conn, "cancel_workflow", {"workflow_id": workflow_id, "now_ms": now_ms()})
    if not changed and db.get_workflow_status(workflow_id) is None:
        raise DBOSNonExistentWorkflowError(workflow_id)


def resume_workflow(executor: Executor, workflow_id: str, conn: Any = None) -> int | None:
    """Make a workflow PENDING under this executor with a fresh epoch (the caller replays it
    here with :func:`run_resumed` once that committed). Returns the new epoch, or None if it
    had finished.

    The epoch is drawn and held first: it is the resume's attempt token (runtime.ownership), so
    a retry after a lost reply recognises its own resume, and the orphan sweep leaves the row
    alone until the workflow's thread holds the epoch."""
    token = executor.db.reserve_epoch()
    executor.hold_epoch(token)
    try:
        rows = _run(executor.db, conn, "resume_workflow",
                    {"workflow_id": workflow_id, "executor_id": executor.executor_id, "owner_epoch": token, "now_ms": now_ms()})
    except BaseException:
        executor.release_epoch(token)
        raise
    if rows:
        return token
    executor.release_epoch(token)
    if executor.db.get_workflow_status(workflow_id) is None:
        raise DBOSNonExistentWorkflowError(workflow_id)
    return None  # it finished: nothing to resume


def run_resumed(executor: Executor, workflow_id: str, owner_epoch: int | None) -> None:
    """Replay a workflow that :func:`resume_workflow` made PENDING here (None: it had finished)."""
    from .recovery import resume_owned

    if owner_epoch is not None:
        resume_owned(executor, workflow_id, owner_epoch)


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
    ``conn`` the claimers are not woken (the caller wakes them after its commit)."""
    if not isinstance(start_step, int) or start_step < 1:
        raise DBOSException(f"start_step must be a step number >= 1, got {start_step!r}")
    new_id = new_workflow_id or str(uuid.uuid4())
    rows = _run(
        db,
        conn,
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
    if conn is None:
        db.claims.wake_queue(INTERNAL_QUEUE_NAME)
    return new_id


def wake_forked(db: SystemDatabase) -> None:
    """Wake the claimers of the internal queue for a fork committed in a caller's transaction."""
    db.claims.wake_queue(INTERNAL_QUEUE_NAME)
