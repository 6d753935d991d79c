"""``WorkflowStatus`` and ``StepInfo``: workflow and step rows as users see them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypedDict

from sysdb.steps import StepRow
from sysdb.workflow_rows import WorkflowRow

from .errors import DBOSSerializationError
from .logs import logger
from .serialization import deserialize, deserialize_args, deserialize_exception

__all__ = ["WorkflowStatus", "WorkflowStatusString", "StepInfo", "status_from_row", "step_from_row"]

class WorkflowStatusString(Enum):
    """The values of ``WorkflowStatus.status`` (DBOS's enum: ``WorkflowStatusString.SUCCESS.value``)."""

    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    MAX_RECOVERY_ATTEMPTS_EXCEEDED = "MAX_RECOVERY_ATTEMPTS_EXCEEDED"
    CANCELLED = "CANCELLED"
    ENQUEUED = "ENQUEUED"
    DELAYED = "DELAYED"


# Statuses after which a workflow never changes again (unless resumed or forked).
TERMINAL_STATUSES = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})


@dataclass(init=False)
class WorkflowStatus:
    """One workflow's status row, its inputs and outcome deserialized.

    As DBOS's, it is built with no arguments (``WorkflowStatus()``, every field None) and its
    fields set one by one; pgfleet builds its own with :meth:`of`."""

    workflow_id: str = ""
    status: str = ""
    name: str = ""
    class_name: str | None = None
    config_name: str | None = None
    authenticated_user: str | None = None
    assumed_role: str | None = None
    authenticated_roles: list[str] | None = None
    input: dict[str, Any] | None = None
    output: Any = None
    error: BaseException | None = None
    created_at: int | None = None
    updated_at: int | None = None
    queue_name: str | None = None
    executor_id: str | None = None
    app_version: str | None = None
    app_id: str | None = None
    recovery_attempts: int | None = None
    workflow_timeout_ms: int | None = None
    workflow_deadline_epoch_ms: int | None = None
    deduplication_id: str | None = None
    priority: int | None = None
    queue_partition_key: str | None = None
    forked_from: str | None = None
    parent_workflow_id: str | None = None
    dequeued_at: int | None = None
    completed_at: int | None = None
    was_forked_from: bool = False
    delay_until_epoch_ms: int | None = None
    attributes: dict[str, Any] | None = None
    schedule_name: str | None = None
    application_name: str | None = None
    owner_epoch: int | None = None

    @classmethod
    def of(cls, **fields: Any) -> WorkflowStatus:
        """A status with these fields set (an unknown name is a TypeError, as a constructor's)."""
        status = cls()
        known = {f.name for f in dataclasses.fields(cls)}
        for name, value in fields.items():
            if name not in known:
                raise TypeError(f"WorkflowStatus has no field {name!r}")
            setattr(status, name, value)
        return status


class StepInfo(TypedDict):
    """One recorded operation of a workflow (``DBOS.list_workflow_steps``): a dict, as DBOS's
    (``step["function_name"]``), with the output and error deserialized."""

    function_id: int
    function_name: str
    output: Any
    error: BaseException | None
    child_workflow_id: str | None
    started_at_epoch_ms: int | None
    completed_at_epoch_ms: int | None


def _roles(text: str | None) -> list[str] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return [text]
    return value if isinstance(value, list) else [str(value)]


def _safe(decode: Callable[[str], Any], raw: str | None, what: str, workflow_id: str) -> Any:
    """Decode a stored value; one this process cannot decode (its class is not importable
    here, say) is returned as the stored text with a warning, as DBOS does, so one odd row
    never breaks a whole listing."""
    if raw is None:
        return None
    try:
        return decode(raw)
    except DBOSSerializationError as exc:
        logger.warning("cannot decode a stored value; returning its raw text", what=what, status_workflow_id=workflow_id, error=str(exc))
        return raw


def status_from_row(row: WorkflowRow, *, load_input: bool = True, load_output: bool = True) -> WorkflowStatus:
    """Build a ``WorkflowStatus`` from a ``workflow_status`` row."""
    fmt, workflow_id = row.serialization, row.workflow_uuid
    inputs = None
    if load_input and row.inputs:
        decoded = _safe(lambda text: deserialize_args(text, fmt), row.inputs, "inputs", workflow_id)
        inputs = {"args": decoded[0], "kwargs": decoded[1]} if isinstance(decoded, tuple) else decoded
    return WorkflowStatus.of(
        workflow_id=row.workflow_uuid,
        status=row.status,
        name=row.name,
        class_name=row.class_name,
        config_name=row.config_name,
        authenticated_user=row.authenticated_user,
        assumed_role=row.assumed_role,
        authenticated_roles=_roles(row.authenticated_roles),
        input=inputs,
        output=_safe(lambda text: deserialize(text, fmt, what="workflow output"), row.output, "output", workflow_id)
        if load_output else None,
        error=_safe(lambda text: deserialize_exception(text, fmt), row.error, "error", workflow_id)
        if load_output else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        queue_name=row.queue_name,
        executor_id=row.executor_id,
        app_version=row.application_version,
        app_id=row.application_id,
        recovery_attempts=row.recovery_attempts,
        workflow_timeout_ms=row.workflow_timeout_ms,
        workflow_deadline_epoch_ms=row.workflow_deadline_epoch_ms,
        deduplication_id=row.deduplication_id,
        priority=row.priority,
        queue_partition_key=row.queue_partition_key,
        forked_from=row.forked_from,
        parent_workflow_id=row.parent_workflow_id,
        dequeued_at=row.started_at_epoch_ms,
        completed_at=row.completed_at,
        was_forked_from=bool(row.was_forked_from),
        delay_until_epoch_ms=row.delay_until_epoch_ms,
        attributes=row.attributes,
        schedule_name=row.schedule_name,
        application_name=row.application_name,
        owner_epoch=row.owner_epoch,
    )


def step_from_row(row: StepRow, workflow_id: str) -> StepInfo:
    """A ``StepInfo`` of one of ``workflow_id``'s step rows; an output or error this process
    cannot decode (an exception whose constructor its pickle cannot call again, say) is its raw
    text, as in DBOS, so the rest of the listing is still read."""
    fmt = row.serialization
    return StepInfo(
        function_id=row.function_id,
        function_name=row.function_name,
        output=_safe(lambda text: deserialize(text, fmt, what="step output"), row.output, "step output", workflow_id),
        error=_safe(lambda text: deserialize_exception(text, fmt), row.error, "step error", workflow_id),
        child_workflow_id=row.child_workflow_id,
        started_at_epoch_ms=row.started_at_epoch_ms,
        completed_at_epoch_ms=row.completed_at_epoch_ms,
    )
