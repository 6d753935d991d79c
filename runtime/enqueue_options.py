"""``DBOS.enqueue_workflow_with_options``: enqueue a workflow by name, as a client would, from
inside an application (the function may live only in another executor).

The options are DBOS's ``EnqueueOptions``; what they leave unset comes from the caller's
``SetWorkflowID`` / ``SetEnqueueOptions`` / ``SetWorkflowTimeout`` blocks. As in DBOS the
options are not checked against the local registry and ``app_version`` stays unset unless
given. Inside a workflow the enqueue is a checkpointed child start, as ``Queue.enqueue`` is.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .attributes import attributes_for_start
from .context import StartOptions, WorkflowContext, current_workflow, take_start_options
from .enqueue import check_duplication_policy, persist_enqueue
from .errors import DBOSConflictingWorkflowError, DBOSException
from .handles import WorkflowHandle
from .operations import check_recorded_name
from .option_blocks import check_priority, check_workflow_id
from .serialization import format_for, serialize_args
from .tracing import attributes_with_carrier, carrier_for_start, option_carrier
from .workflow_start import WorkflowStart, start_timeout

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["enqueue_with_options", "check_option_keys", "check_enqueue_options", "EnqueueOptionMissingError", "ENQUEUE_OPTION_KEYS"]

# DBOS's EnqueueOptions keys, and pgfleet's client's names for two of them (``workflow_class_name``,
# ``workflow_config_name``); both ``DBOSClient.enqueue`` and ``DBOS.enqueue_workflow_with_options``
# check against these.
ENQUEUE_OPTION_KEYS = frozenset({
    "workflow_name", "queue_name", "workflow_id", "app_version", "workflow_timeout", "delay_seconds",
    "deduplication_id", "duplication_policy", "priority", "max_recovery_attempts", "queue_partition_key",
    "authenticated_user", "authenticated_roles", "serialization_type", "class_name", "instance_name",
    "attributes", "application_name", "otel_context", "workflow_class_name", "workflow_config_name",
})
# Keys pgfleet cannot honour, refused rather than silently dropped (none now: ``otel_context``
# is recorded as DBOS records it). (``max_recovery_attempts`` is accepted and, as in DBOS, not
# stored: the workflow's decorator sets its limit.)
_REFUSED: dict[str, str] = {}


def check_option_keys(options: Mapping[str, Any]) -> None:
    """Refuse keys DBOS's EnqueueOptions does not have, and those pgfleet cannot honour."""
    unknown = set(options) - ENQUEUE_OPTION_KEYS
    if unknown:
        raise DBOSException(f"unknown EnqueueOptions key(s): {', '.join(sorted(unknown))}")
    for key, why in _REFUSED.items():
        if options.get(key) is not None:
            raise DBOSException(f"EnqueueOptions[{key!r}] is refused: {why}")


def _resolved(options: Mapping[str, Any], ambient: StartOptions) -> dict[str, Any]:
    """The options, with what they leave unset (None counts as unset) taken from the blocks."""
    check_option_keys(options)
    resolved = {k: v for k, v in options.items() if v is not None}
    for key in ("workflow_id", "deduplication_id", "duplication_policy", "priority", "app_version",
                "queue_partition_key", "authenticated_user", "authenticated_roles"):
        if key not in resolved and getattr(ambient, key, None) is not None:
            resolved[key] = getattr(ambient, key)
    if "delay_seconds" not in resolved and ambient.delay_seconds is not None:
        resolved["delay_seconds"] = ambient.delay_seconds
    return resolved


class EnqueueOptionMissingError(DBOSException, KeyError):
    """EnqueueOptions without ``workflow_name`` or ``queue_name``: a DBOSException naming the key,
    and a KeyError too, which is what DBOS lets through (``options["queue_name"]``)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"EnqueueOptions needs {key!r}")


def check_enqueue_options(options: Mapping[str, Any]) -> None:
    """DBOS's checks of EnqueueOptions (with its words), shared by ``DBOSClient.enqueue``,
    ``enqueue_in_transaction`` and ``DBOS.enqueue_workflow_with_options``."""
    for required in ("workflow_name", "queue_name"):
        if not options.get(required):
            raise EnqueueOptionMissingError(required)
    check_priority(options.get("priority"), DBOSException)
    if options.get("workflow_id") is not None:
        check_workflow_id(options["workflow_id"])
    check_duplication_policy(options.get("duplication_policy"), options["queue_name"], options.get("deduplication_id"))


def _validate(resolved: Mapping[str, Any]) -> None:
    check_enqueue_options(resolved)
    if resolved.get("queue_partition_key") is not None and resolved.get("deduplication_id") is not None:
        raise DBOSException("Deduplication is not supported for partitioned queues")


def _start(
    executor: Executor, resolved: Mapping[str, Any], ambient: StartOptions, parent: WorkflowContext | None,
    workflow_id: str, args: tuple[Any, ...], kwargs: dict[str, Any],
) -> WorkflowStart:
    name = resolved["workflow_name"]
    fmt = format_for(resolved.get("serialization_type"))  # the options' own, never the parent's
    timeout = resolved.get("workflow_timeout")
    if timeout is not None:
        timeout_ms: int | None = int(timeout * 1000)
        deadline_ms = None  # an enqueued workflow's deadline starts when it is dequeued
    else:
        timeout_ms, deadline_ms = start_timeout(ambient, parent, executor.db.clock.now_ms, queued=True)
    return WorkflowStart(
        workflow_id=workflow_id,
        name=name,
        inputs=serialize_args(args, kwargs, workflow_name=name, fmt=fmt),
        serialization=fmt,
        class_name=resolved.get("class_name") or resolved.get("workflow_class_name"),
        config_name=resolved.get("instance_name") or resolved.get("workflow_config_name"),
        authenticated_user=resolved.get("authenticated_user") or (parent.authenticated_user if parent else None),
        authenticated_roles=resolved.get("authenticated_roles") or (parent.authenticated_roles if parent else None),
        application_id="",
        application_name=resolved.get("application_name") or executor.config.name,
        application_version=resolved.get("app_version"),
        parent_workflow_id=parent.workflow_id if parent else None,
        timeout_ms=timeout_ms,
        deadline_ms=deadline_ms,
        attributes=_attributes(resolved, ambient, parent),
    ).queued(
        resolved["queue_name"],
        delay_sec=float(resolved.get("delay_seconds") or 0),
        db_now_ms=executor.db.clock.now_ms,
        deduplication_id=resolved.get("deduplication_id"),
        priority=resolved.get("priority") or 0,
        queue_partition_key=resolved.get("queue_partition_key"),
    )


def _attributes(resolved: Mapping[str, Any], ambient: StartOptions, parent: WorkflowContext | None) -> dict[str, Any] | None:
    """The options' ``attributes`` over those of the caller's ``SetWorkflowAttributes`` and
    ``PropagateOtelContext`` blocks, and the ``otel_context`` option's trace carrier over all,
    as DBOS merges them."""
    block = attributes_with_carrier(attributes_for_start(ambient, parent), carrier_for_start(ambient, parent))
    given = resolved.get("attributes")
    merged = None if block is None and given is None else {**(block or {}), **(given or {})}
    return attributes_with_carrier(merged, option_carrier(resolved.get("otel_context")))


def enqueue_with_options(executor: Executor, options: Mapping[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> WorkflowHandle[Any]:
    """Enqueue ``options['workflow_name']`` on ``options['queue_name']``; inside a workflow as a
    checkpointed child start (a replay returns the handle the first execution got)."""
    parent = current_workflow()
    if parent is not None:
        parent.refuse_workflow_start("enqueue", options.get("workflow_name"))
        executor.check_running(parent)
    ambient = take_start_options()
    function_id = parent.next_function_id() if parent is not None else None
    if parent is not None and function_id is not None:
        recorded = parent.recorded_step(function_id)
        if recorded is not None:  # replay: the same handle as the first execution
            check_recorded_name(parent, function_id, str(options.get("workflow_name")), recorded)
            return WorkflowHandle(recorded.child_workflow_id or f"{parent.workflow_id}-{function_id}", source=executor)
    resolved = _resolved(options, ambient)
    _validate(resolved)
    workflow_id = resolved.get("workflow_id") or (
        f"{parent.workflow_id}-{function_id}" if parent is not None else str(uuid.uuid4())
    )
    start = _start(executor, resolved, ambient, parent, workflow_id, args, kwargs)

    def existing() -> None:  # the id is taken: fine if by this same workflow, as any start
        row = executor.db.workflows.status(workflow_id)
        if row is not None and row.name != start.name:
            raise DBOSConflictingWorkflowError(
                workflow_id,
                f"Workflow already exists with a different function name: {row.name}, "
                f"but the provided function name is: {start.name}",
            )

    held_by = persist_enqueue(executor, parent, function_id, start, resolved.get("duplication_policy"), existing)
    return WorkflowHandle(held_by, source=executor)
