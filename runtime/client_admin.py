"""``DBOSClient``'s workflow management methods, with DBOS 2.30's names and signatures: the
same listing, cancelling, resuming, deleting, delaying, forking and attributes as ``DBOS``'s
(:mod:`runtime.api_admin`), from a process that runs no workflows. A mixin of
:class:`runtime.client.DBOSClient`.

Nothing here is checkpointed (a client has no workflow to record into); every change is one
statement (or one transaction) on the system database, and a running owner anywhere in the
fleet stops at its next fenced write after a cancel or delete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import take_start_options
from .handles import ResultSource, WorkflowHandle
from .status import StepInfo, WorkflowStatus
from .workflows_admin import (
    cancel_workflows,
    delete_workflows,
    fork_workflow,
    list_workflow_steps,
    list_workflows,
    resume_workflows,
    set_workflow_delay,
    update_workflow_attributes,
)

if TYPE_CHECKING:
    from sysdb import SystemDatabase

__all__ = ["ClientAdminAPI"]


class ClientAdminAPI:
    """Workflow management methods of ``DBOSClient``."""

    def _sysdb(self) -> SystemDatabase:
        raise NotImplementedError  # DBOSClient's connection (opened at first use when lazy)

    def _handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        source: ResultSource = self  # type: ignore[assignment]  # a DBOSClient is a ResultSource
        return WorkflowHandle(workflow_id, source=source)

    def list_workflows(
        self,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        completed_after: str | None = None,
        completed_before: str | None = None,
        dequeued_after: str | None = None,
        dequeued_before: str | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        forked_from: str | list[str] | None = None,
        parent_workflow_id: str | list[str] | None = None,
        user: str | list[str] | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        workflow_id_prefix: str | list[str] | None = None,
        load_input: bool = True,
        load_output: bool = True,
        executor_id: str | list[str] | None = None,
        queues_only: bool = False,
        was_forked_from: bool | None = None,
        has_parent: bool | None = None,
        attributes: dict[str, Any] | None = None,
        schedule_name: str | list[str] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowStatus]:
        """Workflows matching every filter given (see ``DBOS.list_workflows``)."""
        criteria = {k: v for k, v in locals().items() if k != "self"}
        return list_workflows(self._sysdb(), **criteria)

    def list_queued_workflows(
        self,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        completed_after: str | None = None,
        completed_before: str | None = None,
        dequeued_after: str | None = None,
        dequeued_before: str | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        forked_from: str | list[str] | None = None,
        parent_workflow_id: str | list[str] | None = None,
        user: str | list[str] | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        workflow_id_prefix: str | list[str] | None = None,
        load_input: bool = True,
        load_output: bool = True,
        executor_id: str | list[str] | None = None,
        has_parent: bool | None = None,
        attributes: dict[str, Any] | None = None,
        application_name: str | list[str] | None = None,
    ) -> list[WorkflowStatus]:
        """Workflows waiting in or running from queues, with ``list_workflows``'s filters."""
        criteria = {k: v for k, v in locals().items() if k != "self"}
        return list_workflows(self._sysdb(), queues_only=True, **criteria)

    def list_workflow_steps(
        self, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepInfo]:
        """A workflow's recorded operations in order (paged with ``limit`` and ``offset``)."""
        return list_workflow_steps(self._sysdb(), workflow_id, load_output=load_output, limit=limit, offset=offset)

    def cancel_workflow(self, workflow_id: str, *, cancel_children: bool = False) -> None:
        """Cancel a workflow (with ``cancel_children``, its descendants): it stops before its
        next step wherever it runs. Finished workflows and unknown ids are left alone."""
        self.cancel_workflows([workflow_id], cancel_children=cancel_children)

    def cancel_workflows(self, workflow_ids: list[str], *, cancel_children: bool = False) -> None:
        """Cancel several workflows (see ``cancel_workflow``)."""
        cancel_workflows(self._sysdb(), workflow_ids, cancel_children=cancel_children)

    def resume_workflow(self, workflow_id: str, *, queue_name: str | None = None) -> WorkflowHandle[Any]:
        """Send a cancelled or dead-lettered workflow back to work: any executor resumes it
        from its first unfinished step (through ``queue_name``, by default the internal queue)."""
        return self.resume_workflows([workflow_id], queue_name=queue_name)[0]

    def resume_workflows(self, workflow_ids: list[str], *, queue_name: str | None = None) -> list[WorkflowHandle[Any]]:
        """Resume several workflows; a handle for each. If any id has no workflow, none is
        resumed and the error names the missing ones."""
        resume_workflows(self._sysdb(), workflow_ids, queue_name=queue_name)
        return [self._handle(workflow_id) for workflow_id in workflow_ids]

    def delete_workflow(self, workflow_id: str, *, delete_children: bool = False) -> None:
        """Delete a workflow and what it recorded (with ``delete_children``, its descendants)."""
        self.delete_workflows([workflow_id], delete_children=delete_children)

    def delete_workflows(self, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        """Delete several workflows (see ``delete_workflow``); unknown ids are ignored."""
        delete_workflows(self._sysdb(), workflow_ids, delete_children=delete_children)

    def set_workflow_delay(
        self, workflow_id: str, *, delay_seconds: float | None = None, delay_until_epoch_ms: int | None = None
    ) -> None:
        """Move a DELAYED workflow's release (exactly one of the two)."""
        set_workflow_delay(self._sysdb(), workflow_id, delay_seconds=delay_seconds, delay_until_epoch_ms=delay_until_epoch_ms)

    def update_workflow_attributes(self, workflow_id: str, attributes: dict[str, Any] | None) -> None:
        """Replace a workflow's custom attributes (None clears them)."""
        update_workflow_attributes(self._sysdb(), workflow_id, attributes)

    def fork_workflow(
        self,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandle[Any]:
        """Run a copy of a workflow from ``start_step`` on any executor (see ``DBOS.fork_workflow``);
        its id is ``SetWorkflowID``'s when one is set, as in DBOS."""
        forked = fork_workflow(
            self._sysdb(),
            workflow_id,
            start_step,
            new_workflow_id=take_start_options().workflow_id,
            application_version=application_version,
            queue_name=queue_name,
            queue_partition_key=queue_partition_key,
            replacement_children=replacement_children,
            timeout_seconds=timeout_seconds,
        )
        return self._handle(forked)
