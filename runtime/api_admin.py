"""``DBOS``'s workflow management methods, with DBOS 2.30's names and signatures: listing,
cancelling, resuming, deleting, delaying, forking workflows and their attributes, and resetting
the system database. A mixin of :class:`runtime.dbos.DBOS`.

Inside a workflow each call is one checkpointed operation, named as DBOS names it
(:mod:`runtime.admin_recorded`); cancels and deletes reach a workflow wherever it runs, because
its owner's every write is fenced on its status row.
"""

from __future__ import annotations

import os
from typing import Any

from sysdb import SystemDatabase, resolve_system_database_url
from sysdb.reset import LiveMembersError
from sysdb.reset import reset_system_database as reset_database

from . import admin_recorded, logs
from .context import current_workflow
from .current import current_process, executor_for
from .dbos_properties import classproperty
from .errors import DBOSException, DBOSNonExistentWorkflowError
from .handles import WorkflowHandle
from .on_loop import refuse_on_loop
from .status import StepInfo, WorkflowStatus, status_from_row
from .workflows_admin import list_workflow_steps, list_workflows

__all__ = ["AdminAPI", "RESET_WHILE_LAUNCHED"]

RESET_WHILE_LAUNCHED = (
    "The system database cannot be reset after DBOS is launched. Resetting the system database is a destructive "
    "operation that should only be used in a test environment."
)


def _status(db: SystemDatabase, workflow_id: str) -> WorkflowStatus:
    row = db.workflows.status(workflow_id)
    if row is None:
        raise DBOSNonExistentWorkflowError("target", workflow_id)
    return status_from_row(row)


class AdminAPI:
    """Workflow management class methods of ``DBOS``."""

    @classproperty
    def application_version(cls) -> str:
        """The version this process runs workflows as: the configured ``application_version``,
        else a hash of the registered workflows' source (computed at launch, as DBOS does)."""
        ctx = current_workflow()
        if ctx is not None:
            return ctx.executor.application_version
        process = current_process()
        if process is not None and process.executor is not None:
            return process.executor.application_version
        if process is not None and process.config.application_version:
            return process.config.application_version
        return os.environ.get("DBOS__APPVERSION", "")

    @classmethod
    def list_workflows(
        cls,
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
        """Workflows matching every filter given (a list matches any of its values; times are
        ISO 8601 strings), oldest first unless ``sort_desc``; ``attributes`` matches workflows
        whose attributes contain these keys and values."""
        refuse_on_loop("DBOS.list_workflows")
        criteria = {k: v for k, v in locals().items() if k != "cls"}
        executor = executor_for("DBOS.list_workflows")
        return executor.recorded_call("DBOS.listWorkflows", lambda: list_workflows(executor.db, **criteria))

    @classmethod
    def list_queued_workflows(
        cls,
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
        """Workflows waiting in or running from queues (ENQUEUED, DELAYED or PENDING), with
        ``list_workflows``'s filters."""
        refuse_on_loop("DBOS.list_queued_workflows")
        criteria = {k: v for k, v in locals().items() if k != "cls"}
        executor = executor_for("DBOS.list_queued_workflows")
        return executor.recorded_call(
            "DBOS.listQueuedWorkflows", lambda: list_workflows(executor.db, queues_only=True, **criteria)
        )

    @classmethod
    def list_workflow_steps(
        cls, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepInfo]:
        """The recorded operations of a workflow, in order (a page of them with ``limit`` and
        ``offset``; outputs and errors None without ``load_output``)."""
        refuse_on_loop("DBOS.list_workflow_steps")
        executor = executor_for("DBOS.list_workflow_steps")
        return executor.recorded_call(
            "DBOS.listWorkflowSteps",
            lambda: list_workflow_steps(executor.db, workflow_id, load_output=load_output, limit=limit, offset=offset),
        )

    @classmethod
    def cancel_workflow(cls, workflow_id: str, *, cancel_children: bool = False) -> None:
        """Cancel a workflow (with ``cancel_children``, its descendants too): it stops before its
        next step, wherever it runs. Finished workflows and unknown ids are left alone."""
        cls.cancel_workflows([workflow_id], cancel_children=cancel_children)

    @classmethod
    def cancel_workflows(cls, workflow_ids: list[str], *, cancel_children: bool = False) -> None:
        """Cancel several workflows at once (see ``cancel_workflow``)."""
        refuse_on_loop("DBOS.cancel_workflows")
        admin_recorded.cancel_recorded(executor_for("DBOS.cancel_workflows"), workflow_ids, cancel_children)

    @classmethod
    def resume_workflow(cls, workflow_id: str, *, queue_name: str | None = None) -> WorkflowHandle[Any]:
        """Resume a cancelled (or dead-lettered) workflow from its first unfinished step: as in
        DBOS it goes to ``queue_name`` (by default the internal queue) and any executor runs it."""
        refuse_on_loop("DBOS.resume_workflow")
        return cls.resume_workflows([workflow_id], queue_name=queue_name)[0]

    @classmethod
    def resume_workflows(cls, workflow_ids: list[str], *, queue_name: str | None = None) -> list[WorkflowHandle[Any]]:
        """Resume several workflows (see ``resume_workflow``); a handle for each, in order. If
        any id has no workflow, none is resumed and the error names the missing ones."""
        refuse_on_loop("DBOS.resume_workflows")
        executor = executor_for("DBOS.resume_workflows")
        admin_recorded.resume_recorded(executor, workflow_ids, queue_name)
        return [WorkflowHandle(workflow_id, source=executor) for workflow_id in workflow_ids]

    @classmethod
    def delete_workflow(cls, workflow_id: str, *, delete_children: bool = False) -> None:
        """Delete a workflow and everything recorded for it (steps, messages, events, streams,
        transaction outputs); with ``delete_children``, its descendants too. If it is running,
        its owner stops at its next write and cannot bring it back."""
        cls.delete_workflows([workflow_id], delete_children=delete_children)

    @classmethod
    def delete_workflows(cls, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        """Delete several workflows (see ``delete_workflow``); unknown ids are ignored."""
        refuse_on_loop("DBOS.delete_workflows")
        admin_recorded.delete_recorded(executor_for("DBOS.delete_workflows"), workflow_ids, delete_children)

    @classmethod
    def set_workflow_delay(
        cls, workflow_id: str, *, delay_seconds: float | None = None, delay_until_epoch_ms: int | None = None
    ) -> None:
        """Move a DELAYED workflow's release: ``delay_seconds`` from now, or at
        ``delay_until_epoch_ms`` (exactly one). Other workflows are left alone."""
        refuse_on_loop("DBOS.set_workflow_delay")
        admin_recorded.delay_recorded(executor_for("DBOS.set_workflow_delay"), workflow_id, delay_seconds, delay_until_epoch_ms)

    @classmethod
    def update_workflow_attributes(cls, workflow_id: str, attributes: dict[str, Any] | None) -> None:
        """Replace a workflow's custom attributes (a JSON-serializable dict; None clears them)."""
        refuse_on_loop("DBOS.update_workflow_attributes")
        admin_recorded.attributes_recorded(executor_for("DBOS.update_workflow_attributes"), workflow_id, attributes)

    @classmethod
    def fork_workflow(
        cls,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        replacement_children: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandle[Any]:
        """Run a copy of a workflow from ``start_step``: earlier steps keep their recorded
        results, later ones run again. The copy gets a new id (or the one ``SetWorkflowID``
        gives) and runs through ``queue_name`` (the internal queue by default) on any executor
        that has the function; ``replacement_children`` maps copied child ids to new ones."""
        refuse_on_loop("DBOS.fork_workflow")
        executor = executor_for("DBOS.fork_workflow")
        forked = admin_recorded.fork_recorded(
            executor,
            workflow_id,
            start_step,
            application_version=application_version,
            queue_name=queue_name,
            queue_partition_key=queue_partition_key,
            replacement_children=replacement_children,
            timeout_seconds=timeout_seconds,
        )
        # DBOS hands the fork back through retrieve_workflow, whose existence check is a
        # recorded DBOS.getStatus inside a workflow: recorded here the same way.
        executor.recorded_call("DBOS.getStatus", lambda: _status(executor.db, forked))
        return WorkflowHandle(forked, source=executor)

    @classmethod
    def reset_system_database(
        cls, *, system_database_url: str | None = None, schema: str | None = None, truncate: bool = False
    ) -> None:
        """Destroy the system database (``truncate=True``: empty its tables, keeping the schema;
        much faster). For tests only: refused once DBOS is launched, as in DBOS, and (pgfleet)
        while live executors of a fleet still use the database."""
        process = current_process()
        if process is not None and process.launched:
            raise AssertionError(RESET_WHILE_LAUNCHED)
        if process is None and system_database_url is None:
            logs.logger.warning("reset_system_database has no effect because global DBOS object does not exist")
            return
        configured = system_database_url or (process.config.system_database_url if process else None)
        embedded = process.config.embedded_data_dir if process else None
        url = resolve_system_database_url(configured, embedded)
        try:
            reset_database(url, truncate=truncate, schema=schema or "dbos")
        except LiveMembersError as exc:
            raise DBOSException(str(exc)) from None
