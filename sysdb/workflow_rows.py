"""Typed rows and arguments of the workflow doors (``sysdb.workflows``, ``sysdb.recovery``,
``sysdb.admin``): what a start writes, and what reading a workflow's status row returns.

Fields of rows are named after their columns (DBOS's names: ``workflow_uuid``, ...); values
are as stored (inputs, outputs and errors are serialized text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["NewWorkflow", "QueuePlacement", "WorkflowRow", "WorkflowOutcome", "AcquiredWorkflow"]


@dataclass(frozen=True)
class NewWorkflow:
    """The status row of a workflow being started or enqueued: identity, caller and inputs.

    ``executor_id`` names the owner of a started workflow (a queued one has none until it is
    claimed); ``timeout_ms``/``deadline_ms`` bound its run.
    """

    workflow_id: str
    name: str
    class_name: str | None
    config_name: str | None
    authenticated_user: str | None
    assumed_role: str | None
    # JSON text of the role list, as DBOS stores it.
    authenticated_roles: str | None
    application_id: str | None
    application_name: str | None
    inputs: str
    parent_workflow_id: str | None
    serialization: str | None
    executor_id: str | None = None
    application_version: str | None = None
    timeout_ms: int | None = None
    deadline_ms: int | None = None
    # JSON text of the custom attributes (SetWorkflowAttributes), or None.
    attributes: str | None = None

    def params(self) -> dict[str, Any]:
        """The statement parameters of this row (its fields by name)."""
        return dict(vars(self))

    def owner(self) -> str:
        """The executor a started workflow is created for (a start without one is a bug)."""
        if self.executor_id is None:
            raise ValueError(f"workflow {self.workflow_id!r} is started with no owner executor")
        return self.executor_id


@dataclass(frozen=True)
class QueuePlacement:
    """Where and how an enqueued workflow waits: its queue and the queue options."""

    queue_name: str
    deduplication_id: str | None = None
    priority: int = 0
    queue_partition_key: str | None = None
    # Epoch ms on the database clock (which the claimers and the leader compare it with);
    # a delayed workflow waits DELAYED until then, any other is ENQUEUED at once.
    delay_until_ms: int | None = None
    # A debounced workflow (runtime/debouncer.py): its deduplication id is a debounce key that
    # the leader clears when it moves the workflow out of DELAYED; bounces never push its delay
    # past the deadline (epoch ms on the database clock, None: no deadline).
    is_debounced: bool = False
    debounce_deadline_ms: int | None = None

    @property
    def status(self) -> str:
        return "DELAYED" if self.delay_until_ms is not None else "ENQUEUED"

    def params(self) -> dict[str, Any]:
        return {**vars(self), "status": self.status}


@dataclass(frozen=True)
class WorkflowRow:
    """A workflow's status row (``dbos.workflow_status``). A listing that does not load
    inputs or outputs leaves ``inputs``, ``output`` and ``error`` None."""

    workflow_uuid: str
    status: str
    name: str
    class_name: str | None = None
    config_name: str | None = None
    authenticated_user: str | None = None
    assumed_role: str | None = None
    authenticated_roles: str | None = None
    output: str | None = None
    error: str | None = None
    executor_id: str | None = None
    owner_epoch: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    application_version: str | None = None
    application_id: str | None = None
    application_name: str | None = None
    recovery_attempts: int | None = None
    queue_name: str | None = None
    workflow_timeout_ms: int | None = None
    workflow_deadline_epoch_ms: int | None = None
    inputs: str | None = None
    started_at_epoch_ms: int | None = None
    deduplication_id: str | None = None
    priority: int | None = None
    queue_partition_key: str | None = None
    forked_from: str | None = None
    was_forked_from: bool | None = None
    parent_workflow_id: str | None = None
    serialization: str | None = None
    delay_until_epoch_ms: int | None = None
    completed_at: int | None = None
    attributes: Any = None  # JSONB, as stored
    schedule_name: str | None = None


@dataclass(frozen=True)
class WorkflowOutcome:
    """What a waiter reads: the status and, once finished, the recorded output or error."""

    status: str
    output: str | None
    error: str | None
    serialization: str | None


@dataclass(frozen=True)
class AcquiredWorkflow:
    """A PENDING row this executor acquired (claimed, assigned by a takeover, or adopted as an
    orphan) under ``owner_epoch``, with what it takes to replay it here."""

    workflow_uuid: str
    owner_epoch: int
    recovery_attempts: int
    name: str
    class_name: str | None
    config_name: str | None
    inputs: str | None
    serialization: str | None
    authenticated_user: str | None
    authenticated_roles: str | None
    assumed_role: str | None
    workflow_timeout_ms: int | None
    workflow_deadline_epoch_ms: int | None
    queue_name: str | None
    # False only for a fresh claim: nothing is recorded yet, so there are no steps to load.
    has_steps: bool = True
    # The membership the row was acquired under (its reply may arrive after that ended).
    acquired_member_epoch: int | None = None
