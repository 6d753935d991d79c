"""The one builder of a workflow start: its position in its parent and its status-row values.

Every way a workflow begins builds its row here: a direct, background or child start
(:mod:`runtime.starts`), ``Queue.enqueue`` (:mod:`runtime.enqueue`), ``DBOSClient.enqueue``
(:mod:`runtime.client`) and a scheduled tick (:mod:`runtime.scheduler`). A
:class:`WorkflowStart` holds the values; :meth:`WorkflowStart.new_workflow` is the typed row
the workflow doors of :mod:`sysdb` insert.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sysdb.workflow_rows import NewWorkflow, QueuePlacement

from .attributes import attributes_for_start
from .context import StartOptions, WorkflowContext
from .errors import DBOSInvalidInputError
from .operations import check_recorded_name
from .registry import CLASS_METHOD, INSTANCE_METHOD, RegisteredWorkflow
from .serialization import default_format, format_for, serialize_args
from .tracing import attributes_with_carrier, carrier_for_start

__all__ = ["StartPosition", "WorkflowStart", "take_start_position", "validate_input", "start_timeout", "call_start"]


@dataclass(frozen=True)
class StartPosition:
    """Where a start sits: its id and, inside a workflow, the parent's step position."""

    workflow_id: str
    function_id: int | None = None
    # The child's id when a replayed parent recorded this start already (nothing is started).
    replayed_child: str | None = None


@dataclass(frozen=True)
class WorkflowStart:
    """The status-row values of one workflow start."""

    workflow_id: str
    name: str
    inputs: str
    serialization: str | None = None  # None: the process's default format
    class_name: str | None = None
    config_name: str | None = None
    authenticated_user: str | None = None
    assumed_role: str | None = None
    authenticated_roles: list[str] | None = None
    application_id: str | None = None
    application_name: str | None = None
    application_version: str | None = None
    parent_workflow_id: str | None = None
    timeout_ms: int | None = None
    deadline_ms: int | None = None
    # Run here at once (``executor_id``), or wait on a queue (``placement``).
    executor_id: str | None = None
    placement: QueuePlacement | None = None
    # SetWorkflowAttributes' attributes, recorded at creation.
    attributes: dict[str, Any] | None = None

    def queued(
        self,
        queue_name: str,
        *,
        delay_sec: float,
        db_now_ms: Callable[[], int],
        deduplication_id: str | None = None,
        priority: int = 0,
        queue_partition_key: str | None = None,
    ) -> WorkflowStart:
        """This start put on a queue: ENQUEUED, or DELAYED for ``delay_sec`` counted on the
        database clock (``db_now_ms``), which the claimers and the leader compare it with."""
        placement = QueuePlacement(
            queue_name=queue_name,
            deduplication_id=deduplication_id,
            priority=priority,
            queue_partition_key=queue_partition_key,
            delay_until_ms=db_now_ms() + int(delay_sec * 1000) if delay_sec > 0 else None,
        )
        return dataclasses.replace(self, placement=placement)

    def new_workflow(self) -> NewWorkflow:
        """The status row the workflow doors insert (``db.workflows.insert``/``start_child``/``enqueue``)."""
        roles = self.authenticated_roles
        return NewWorkflow(
            workflow_id=self.workflow_id,
            name=self.name,
            class_name=self.class_name,
            config_name=self.config_name,
            authenticated_user=self.authenticated_user,
            assumed_role=self.assumed_role,
            authenticated_roles=json.dumps(roles) if roles else None,
            application_id=self.application_id,
            application_name=self.application_name,
            inputs=self.inputs,
            parent_workflow_id=self.parent_workflow_id,
            serialization=self.serialization or default_format(),
            executor_id=self.executor_id,
            application_version=self.application_version,
            timeout_ms=self.timeout_ms,
            deadline_ms=self.deadline_ms,
            attributes=json.dumps(self.attributes) if self.attributes is not None else None,
        )

    def queue_placement(self) -> QueuePlacement:
        """Where this queued start waits (a start that was never :meth:`queued` is a bug)."""
        if self.placement is None:
            raise ValueError(f"workflow {self.workflow_id!r} is enqueued with no queue")
        return self.placement


def call_start(
    entry: RegisteredWorkflow,
    bound: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: StartOptions,
    parent: WorkflowContext | None,
    workflow_id: str,
    application_name: str,
    *,
    executor_id: str | None = None,
    application_version: str | None = None,
    timeout_ms: int | None = None,
    deadline_ms: int | None = None,
) -> WorkflowStart:
    """The values every start of a decorated function shares (direct, background, child or
    enqueued): identity, caller (inherited from the parent unless the options name one), inputs;
    a start that runs here at once also names its executor, code version and time limits."""
    class_name, config_name = _bound_names(entry, bound)
    # As DBOS: the workflow's own serialization_type, never its parent's (a portable
    # workflow's children are pickled unless they say otherwise).
    fmt = format_for(entry.serialization_type)
    return WorkflowStart(
        workflow_id=workflow_id,
        name=entry.name,
        inputs=serialize_args(args, kwargs, workflow_name=entry.name, fmt=fmt),
        serialization=fmt,
        class_name=class_name,
        config_name=config_name,
        authenticated_user=options.authenticated_user or (parent.authenticated_user if parent else None),
        # A child started while its parent runs under a role records that role, as in DBOS.
        assumed_role=options.assumed_role or (parent.assumed_role if parent else None),
        authenticated_roles=options.authenticated_roles or (parent.authenticated_roles if parent else None),
        application_id="",
        application_name=application_name,
        application_version=application_version,
        parent_workflow_id=parent.workflow_id if parent else None,
        timeout_ms=timeout_ms,
        deadline_ms=deadline_ms,
        executor_id=executor_id,
        # A PropagateOtelContext block's trace carrier is recorded with them, as DBOS does.
        attributes=attributes_with_carrier(attributes_for_start(options, parent), carrier_for_start(options, parent)),
    )


def take_start_position(parent: WorkflowContext | None, options: StartOptions, entry: RegisteredWorkflow) -> StartPosition:
    """The step position and id of a workflow being started: inside a workflow the next
    position and ``<parent>-<position>`` (unless ``SetWorkflowID`` names one), else a new UUID.
    A replayed parent that recorded this start already gets the child's id back."""
    function_id = parent.next_function_id() if parent is not None else None
    workflow_id = options.workflow_id or (f"{parent.workflow_id}-{function_id}" if parent is not None else str(uuid.uuid4()))
    if parent is not None and function_id is not None:
        recorded = parent.recorded_step(function_id)
        if recorded is not None:
            check_recorded_name(parent, function_id, entry.name, recorded)
            return StartPosition(workflow_id, function_id, recorded.child_workflow_id or workflow_id)
    return StartPosition(workflow_id, function_id)


def validate_input(entry: RegisteredWorkflow, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Run the workflow's ``validate_input`` (if it has one) before anything is recorded."""
    if entry.validate_input is None:
        return
    try:
        verdict = entry.validate_input(*args, **kwargs)
    except Exception as exc:
        raise DBOSInvalidInputError(f"invalid input for workflow {entry.name!r}: {exc}") from exc
    if verdict is False:
        raise DBOSInvalidInputError(f"invalid input for workflow {entry.name!r}: rejected by its validate_input")


def start_timeout(
    options: StartOptions, parent: WorkflowContext | None, db_now_ms: Callable[[], int], *, queued: bool = False
) -> tuple[int | None, int | None]:
    """The timeout and the deadline a new workflow records. A new deadline counts from the
    database clock (``db_now_ms``), as every host that checks it does; an enqueued workflow's
    own timeout starts when it is dequeued (no deadline yet). A child inherits the parent's
    deadline but records no timeout of its own, as in DBOS (so resuming or forking it later
    starts it without one)."""
    if options.timeout_set:
        if options.timeout_sec is None:
            return None, None
        timeout_ms = int(options.timeout_sec * 1000)
        return timeout_ms, None if queued else db_now_ms() + timeout_ms
    if parent is not None:
        return None, parent.deadline_epoch_ms
    return None, None


def _bound_names(entry: RegisteredWorkflow, bound: Any) -> tuple[str | None, str | None]:
    if entry.kind == INSTANCE_METHOD:
        return type(bound).__qualname__, getattr(bound, "config_name", None)
    if entry.kind == CLASS_METHOD:
        return bound.__qualname__, None
    return None, None
