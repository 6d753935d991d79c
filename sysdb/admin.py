"""The door to steering workflows from outside their run: listing, cancelling, resuming and
forking them (``DBOS.list_workflows``, ``DBOSClient.cancel_workflow``, ``pgfleet workflow ...``).

Cancel, resume and fork take an optional ``connection``: called from inside a workflow, the
effect runs in the transaction of the workflow's fenced checkpoint and commits with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .door import Door
from .listing import select_workflows
from .timestamps import now_ms
from .workflow_rows import WorkflowRow

if TYPE_CHECKING:
    from .database import DictConnection, Row

__all__ = ["WorkflowAdmin"]


class WorkflowAdmin(Door):
    """Operations on any workflow, by id, wherever it runs."""

    def _run_on(self, name: str, params: dict[str, Any], connection: DictConnection | None) -> list[Row]:
        # On the caller's open transaction when it has one, else on the pool.
        return self._execute(name, params) if connection is None else self._db._execute_on(connection, name, params)

    def list_workflows(self, **criteria: Any) -> list[WorkflowRow]:
        """Status rows matching DBOS's ``list_workflows`` criteria (see
        :func:`sysdb.listing.select_workflows`). Raises ``UnknownFilterError``."""
        return select_workflows(self._db, **criteria)

    def cancel(self, workflow_id: str, *, connection: DictConnection | None = None) -> bool:
        """Mark a workflow CANCELLED unless it has finished (its owner stops at its next write).
        False when nothing changed: it had finished, or does not exist."""
        return bool(self._run_on("cancel_workflow", {"workflow_id": workflow_id, "now_ms": now_ms()}, connection))

    def resume_enqueued(self, workflow_id: str, *, queue_name: str, connection: DictConnection | None = None) -> bool:
        """Send a workflow that has not finished (cancelled, dead-lettered, queued or delayed)
        to ``queue_name``: whoever claims it resumes it. False when it had finished, was
        running, or does not exist."""
        params = {"workflow_id": workflow_id, "queue_name": queue_name, "now_ms": now_ms()}
        return bool(self._run_on("resume_workflow_enqueued", params, connection))

    def fork(
        self,
        workflow_id: str,
        *,
        new_workflow_id: str,
        start_step: int,
        queue_name: str,
        application_version: str | None,
        connection: DictConnection | None = None,
    ) -> bool:
        """Enqueue ``new_workflow_id`` on ``queue_name``, a copy of a workflow that reuses its
        steps recorded before ``start_step``. False when the original does not exist or the
        new id does."""
        params = {
            "workflow_id": workflow_id,
            "new_workflow_id": new_workflow_id,
            "start_step": start_step,
            "queue_name": queue_name,
            "application_version": application_version,
            "now_ms": now_ms(),
        }
        return bool(self._run_on("fork_workflow", params, connection))
