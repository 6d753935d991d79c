"""Listing, cancelling, resuming, deleting, delaying and forking workflows (``DBOS.list_workflows``
and friends), on a system database: what ``DBOS`` (through :mod:`runtime.admin_recorded`) and
``DBOSClient`` both do.

The changes take an optional ``conn``: called from inside a workflow, their effect runs on the
connection of the workflow's fenced checkpoint and commits with it
(``Executor.recorded_effect``), so an execution that lost its workflow changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from sysdb import SystemDatabase
from sysdb.listing import UnknownFilterError

from .attributes import validate_workflow_attributes
from .errors import DBOSException, DBOSNonExistentWorkflowError
from .queues import INTERNAL_QUEUE_NAME
from .status import StepInfo, WorkflowStatus, status_from_row, step_from_row

__all__ = [
    "list_workflows",
    "list_workflow_steps",
    "cancel_workflows",
    "cancel_workflow",
    "resume_workflow",
    "resume_workflows",
    "wake_resumed",
    "delete_workflows",
    "set_workflow_delay",
    "update_workflow_attributes",
    "validate_workflow_attributes",
    "fork_workflow",
    "wake_forked",
    "fork_timeout_ms",
]


def list_workflows(db: SystemDatabase, *, load_input: bool = True, load_output: bool = True, **criteria: Any) -> list[WorkflowStatus]:
    """Workflows matching DBOS's ``list_workflows`` filters, oldest first unless ``sort_desc``
    (see :func:`sysdb.listing.select_workflows` for the criteria)."""
    try:
        rows = db.admin.list_workflows(load_input=load_input, load_output=load_output, **criteria)
    except UnknownFilterError as exc:
        raise TypeError(str(exc)) from None  # as DBOS's keyword-only signature raises
    return [status_from_row(r, load_input=load_input, load_output=load_output) for r in rows]


def list_workflow_steps(
    db: SystemDatabase, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
) -> list[StepInfo]:
    """A workflow's recorded operations in order, paged by ``limit``/``offset`` as DBOS's are
    (outputs and errors are None without ``load_output``); empty for an unknown id."""
    rows = db.admin.list_steps(workflow_id, load_output=load_output, limit=limit, offset=offset)
    return [step_from_row(r, workflow_id) for r in rows]


def _ids(workflow_ids: Any) -> list[str]:
    """A list of workflow ids, refusing a bare string (which would be a list of characters)."""
    if isinstance(workflow_ids, str) or not all(isinstance(i, str) for i in workflow_ids):
        raise DBOSException(f"expected a list of workflow ids, got {workflow_ids!r}")
    return list(workflow_ids)


def cancel_workflows(db: SystemDatabase, workflow_ids: list[str], *, cancel_children: bool = False, conn: Any = None) -> list[str]:
    """DBOS's cancel: every listed workflow (with ``cancel_children``, every descendant too)
    that has not finished with SUCCESS or ERROR becomes CANCELLED and leaves its queue. Its
    owner, wherever it runs, stops at its next write (every fenced write requires PENDING). An
    id with no workflow is ignored, as in DBOS. Returns the ids cancelled."""
    return db.admin.cancel(_ids(workflow_ids), cascade=cancel_children, connection=conn)


def cancel_workflow(db: SystemDatabase, workflow_id: str, conn: Any = None) -> None:
    """Cancel one workflow (see :func:`cancel_workflows`)."""
    cancel_workflows(db, [workflow_id], conn=conn)


def resume_workflow(db: SystemDatabase, workflow_id: str, *, queue_name: str | None = None, conn: Any = None) -> bool:
    """DBOS's resume: a workflow that has not finished (cancelled, dead-lettered, waiting in a
    queue or delayed) goes to ``queue_name`` (the internal queue by default) as ENQUEUED with a
    fresh recovery budget, and whichever executor claims it replays it from its first unfinished
    step. False when it had finished or is running (PENDING: unlike DBOS, pgfleet leaves a
    running workflow to its owner, or to the takeover of a dead one). With ``conn`` the
    claimers are not woken (the caller wakes them after its commit: :func:`wake_resumed`).

    The claim gives it a new epoch, so any execution of it still running is fenced out at its
    next write; and a retry after a lost reply writes the same values again (or finds it claimed)."""
    queue = queue_name or INTERNAL_QUEUE_NAME
    resumed = db.admin.resume_enqueued(workflow_id, queue_name=queue, connection=conn)
    if not resumed and db.workflows.status(workflow_id, connection=conn) is None:
        raise DBOSNonExistentWorkflowError("target", workflow_id)
    if conn is None:
        db.claims.wake_queue(queue)
    return resumed


def resume_workflows(db: SystemDatabase, workflow_ids: list[str], *, queue_name: str | None = None, conn: Any = None) -> None:
    """Resume each workflow as :func:`resume_workflow` does. As in DBOS, if any id has no
    workflow nothing is resumed and the error names every missing id."""
    ids = _ids(workflow_ids)
    if not ids:
        return
    existing = db.admin.existing(ids, connection=conn)
    missing = [i for i in ids if i not in existing]
    if missing:
        raise DBOSNonExistentWorkflowError("target", ", ".join(missing))
    # Outside a workflow each resume is its own retried statement (a retry after a lost reply
    # is harmless: it writes the same values, or finds the workflow claimed and leaves it).
    for workflow_id in ids:
        resume_workflow(db, workflow_id, queue_name=queue_name, conn=conn)


def wake_resumed(db: SystemDatabase, queue_name: str | None) -> None:
    """Wake the claimers of the queue a resume committed in a caller's transaction used."""
    db.claims.wake_queue(queue_name or INTERNAL_QUEUE_NAME)


def delete_workflows(
    db: SystemDatabase,
    workflow_ids: list[str],
    *,
    delete_children: bool = False,
    app_db: SystemDatabase | None = None,
    conn: Any = None,
) -> list[str]:
    """DBOS's delete: the workflows (with ``delete_children``, all their descendants) and
    everything recorded for them (steps, messages, events, streams; their transaction outputs
    in ``app_db``, the application database). Unknown ids are ignored. A running owner finds no
    row at its next fenced write and stops, writing nothing. Returns the ids deleted."""
    deleted = db.admin.delete(_ids(workflow_ids), cascade=delete_children, connection=conn)
    if app_db is not None and deleted:
        app_db.admin.delete_transaction_outputs(deleted)
    return deleted


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def set_workflow_delay(
    db: SystemDatabase,
    workflow_id: str,
    *,
    delay_seconds: float | None = None,
    delay_until_epoch_ms: int | None = None,
    conn: Any = None,
) -> None:
    """DBOS's set_workflow_delay: a DELAYED workflow is released ``delay_seconds`` from now (on
    the database clock, the one the leader's promotion reads) or at ``delay_until_epoch_ms``.
    Any other workflow, or an unknown id, is left alone. Raises DBOS's errors for bad input."""
    if delay_until_epoch_ms is not None and delay_seconds is not None:
        raise DBOSException("Specify either delay_seconds or delay_until_epoch_ms, not both")
    if delay_until_epoch_ms is not None:
        if not _number(delay_until_epoch_ms) or delay_until_epoch_ms < 0:
            raise DBOSException("delay_until_epoch_ms must be >= 0")
        db.admin.set_delay(workflow_id, until_ms=int(delay_until_epoch_ms), connection=conn)
    elif delay_seconds is not None:
        if not _number(delay_seconds) or delay_seconds < 0:
            raise DBOSException("delay_seconds must be >= 0")
        db.admin.set_delay(workflow_id, delay_ms=int(delay_seconds * 1000), connection=conn)
    else:
        raise DBOSException("Must specify either delay_seconds or delay_until_epoch_ms")


def update_workflow_attributes(db: SystemDatabase, workflow_id: str, attributes: dict[str, Any] | None, *, conn: Any = None) -> None:
    """Replace a workflow's custom attributes (None clears them); an unknown id changes
    nothing, as in DBOS."""
    validate_workflow_attributes(attributes)
    db.admin.set_attributes(workflow_id, attributes, connection=conn)


def fork_timeout_ms(timeout_seconds: float | None) -> int | None:
    """A fork's ``timeout_seconds`` as milliseconds, refused with DBOS's error unless positive."""
    if timeout_seconds is None:
        return None
    if not _number(timeout_seconds) or not timeout_seconds > 0:
        raise Exception(f"Invalid workflow timeout {timeout_seconds}. Timeouts must be positive.")
    return int(timeout_seconds * 1000)


def fork_workflow(
    db: SystemDatabase,
    workflow_id: str,
    start_step: int,
    *,
    new_workflow_id: str | None = None,
    application_version: str | None = None,
    queue_name: str | None = None,
    queue_partition_key: str | None = None,
    replacement_children: dict[str, str] | None = None,
    timeout_seconds: float | None = None,
    conn: Any = None,
) -> str:
    """Start a copy of a workflow that reuses its recorded steps before ``start_step`` and runs
    the rest again, on any executor, through ``queue_name`` (the internal queue by default).
    Returns the new id. With ``conn`` the claimers are not woken (the caller wakes them after
    its commit).

    As in DBOS any step number is accepted: 1 or less copies no step (the copy runs from the
    start), one past the last step copies them all; a copied step that started child ``c``
    names ``replacement_children[c]`` instead. Without ``application_version`` the copy
    records none, and the executor that claims it gives it its own (as a DBOS dequeue does)."""
    timeout_ms = fork_timeout_ms(timeout_seconds)
    if not isinstance(start_step, int):
        raise DBOSException(f"start_step must be a step number, got {start_step!r}")
    new_id = new_workflow_id or str(uuid.uuid4())
    queue = queue_name or INTERNAL_QUEUE_NAME
    forked = db.admin.fork(
        workflow_id,
        new_workflow_id=new_id,
        start_step=start_step,
        queue_name=queue,
        application_version=application_version,
        queue_partition_key=queue_partition_key,
        timeout_ms=timeout_ms,
        replacement_children=replacement_children,
        connection=conn,
    )
    if not forked:
        if db.workflows.status(workflow_id, connection=conn) is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        raise DBOSException(f"cannot fork {workflow_id!r} as {new_id!r}: a workflow with that id exists")
    if conn is None:
        db.claims.wake_queue(queue)
    return new_id


def wake_forked(db: SystemDatabase, queue_name: str | None = None) -> None:
    """Wake the claimers of the queue a fork committed in a caller's transaction used."""
    db.claims.wake_queue(queue_name or INTERNAL_QUEUE_NAME)
