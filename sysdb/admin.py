"""The door to steering workflows from outside their run: listing, cancelling, resuming and
forking them (``DBOS.list_workflows``, ``DBOSClient.cancel_workflow``, ``pgfleet workflow ...``).

Cancel, resume and fork take an optional ``connection``: called from inside a workflow, the
effect runs in the transaction of the workflow's fenced checkpoint and commits with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .door import Door
from .listing import select_workflows
from .steps import StepRow
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

    def cancel(
        self, workflow_ids: Sequence[str], *, cascade: bool = False, connection: DictConnection | None = None
    ) -> list[str]:
        """Mark workflows (and, with ``cascade``, all their descendants) CANCELLED unless they
        finished with SUCCESS or ERROR; their owners stop at their next write. Returns the ids
        that changed (a missing id changes nothing, as in DBOS)."""
        params = {"workflow_ids": list(workflow_ids), "cascade": cascade, "now_ms": now_ms()}
        return [r["workflow_uuid"] for r in self._run_on("cancel_workflows", params, connection)]

    def delete(
        self, workflow_ids: Sequence[str], *, cascade: bool = False, connection: DictConnection | None = None
    ) -> list[str]:
        """Delete workflows (with ``cascade``, their descendants too) and everything recorded
        for them; returns the ids deleted."""
        params = {"workflow_ids": list(workflow_ids), "cascade": cascade}
        return [r["workflow_uuid"] for r in self._run_on("delete_workflows", params, connection)]

    def delete_transaction_outputs(self, workflow_ids: Sequence[str]) -> int:
        """In an application database: forget the transaction outputs of deleted workflows;
        how many were deleted."""
        return self._db._execute_count("delete_transaction_outputs", {"workflow_ids": list(workflow_ids)})

    def existing(self, workflow_ids: Sequence[str], *, connection: DictConnection | None = None) -> set[str]:
        """Which of these workflow ids exist."""
        rows = self._run_on("existing_workflow_ids", {"workflow_ids": list(workflow_ids)}, connection)
        return {r["workflow_uuid"] for r in rows}

    def set_delay(
        self,
        workflow_id: str,
        *,
        until_ms: int | None = None,
        delay_ms: int | None = None,
        connection: DictConnection | None = None,
    ) -> bool:
        """Move a DELAYED workflow's release to ``until_ms`` (epoch ms) or ``delay_ms`` from now
        on the database clock. False when it is not DELAYED (or does not exist)."""
        params = {"workflow_id": workflow_id, "until_ms": until_ms, "delay_ms": delay_ms, "now_ms": now_ms()}
        return bool(self._run_on("set_workflow_delay", params, connection))

    def set_attributes(
        self, workflow_id: str, attributes: dict[str, Any] | None, *, connection: DictConnection | None = None
    ) -> bool:
        """Replace a workflow's custom attributes (None clears them). False if it does not exist."""
        params = {
            "workflow_id": workflow_id,
            "attributes": None if attributes is None else json.dumps(attributes),
            "now_ms": now_ms(),
        }
        return bool(self._run_on("update_workflow_attributes", params, connection))

    def list_steps(
        self, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepRow]:
        """A page of a workflow's recorded steps, in order (outputs left out unless ``load_output``)."""
        params = {"workflow_id": workflow_id, "load_output": load_output, "limit": limit, "offset": offset or 0}
        return [StepRow(**row) for row in self._execute("list_workflow_steps_page", params)]

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
        queue_partition_key: str | None = None,
        timeout_ms: int | None = None,
        replacement_children: dict[str, str] | None = None,
        connection: DictConnection | None = None,
    ) -> bool:
        """Enqueue ``new_workflow_id`` on ``queue_name``, a copy of a workflow that reuses its
        steps recorded before ``start_step`` (children renamed per ``replacement_children``),
        with ``timeout_ms`` as its timeout. False when the original does not exist or the
        new id does."""
        params = {
            "workflow_id": workflow_id,
            "new_workflow_id": new_workflow_id,
            "start_step": start_step,
            "queue_name": queue_name,
            "application_version": application_version,
            "queue_partition_key": queue_partition_key,
            "timeout_ms": timeout_ms,
            "replacement_children": json.dumps(replacement_children) if replacement_children else None,
            "now_ms": now_ms(),
        }
        return bool(self._run_on("fork_workflow", params, connection))
