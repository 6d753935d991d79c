"""``Queue.enqueue``: putting a workflow on a queue, from anywhere or from inside a workflow.

From inside a workflow the enqueue is a checkpointed child start: the parent's step row naming
the child commits with the child's ENQUEUED row, and a replay returns the same handle.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sysdb.errors import DeduplicatedError
from sysdb.workflow_rows import QueuePlacement

from .context import current_workflow, take_start_options
from .errors import DBOSException, DBOSQueueDeduplicatedError
from .executor import _timeout, _validate, fenced_step, take_start_position
from .handles import WorkflowHandle
from .registry import RegisteredWorkflow

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["enqueue_workflow"]


def enqueue_workflow(
    executor: Executor, queue: Any, entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> WorkflowHandle[Any]:
    """Put a workflow on a queue; inside a workflow, as a checkpointed child start."""
    parent = current_workflow()
    if parent is not None and parent.in_step:
        raise DBOSException(f"cannot enqueue workflow {entry.name!r} from inside a step")
    if parent is not None:
        executor.check_running(parent)
    options = take_start_options()
    if entry.validate_input is not None:
        _validate(entry, args, kwargs)
    if options.priority is not None and options.priority != 0 and not queue.priority_enabled:
        raise DBOSException(f"queue {queue.name!r} does not have priority_enabled; cannot enqueue with priority {options.priority}")
    if queue.partition_queue and options.queue_partition_key is None:
        raise DBOSException(f"queue {queue.name!r} is partitioned: enqueue with SetEnqueueOptions(queue_partition_key=...)")
    if not queue.partition_queue and options.queue_partition_key is not None:
        raise DBOSException(f"queue {queue.name!r} is not partitioned; queue_partition_key is not allowed")

    function_id, workflow_id, replayed_child = take_start_position(parent, options, entry)
    if replayed_child is not None:  # replay: the same handle as the first execution
        return WorkflowHandle(executor, replayed_child)

    if options.timeout_set:
        timeout_ms = int(options.timeout_sec * 1000) if options.timeout_sec else None
        deadline_ms = None  # an enqueued workflow's deadline starts when it is dequeued
    else:
        timeout_ms, deadline_ms = _timeout(options, parent, executor.db.clock.now_ms)
    delay = options.delay_seconds or 0
    new, _ = executor.start_row(entry, bound, args, kwargs, options, parent, workflow_id)
    new = replace(
        new,
        # Pinned to a version only when asked (SetEnqueueOptions or a configured version):
        # work enqueued under the code hash would be stranded by the next deploy.
        application_version=options.app_version or executor.config.application_version,
        timeout_ms=timeout_ms,
        deadline_ms=deadline_ms,
    )
    placement = QueuePlacement(
        queue_name=queue.name,
        deduplication_id=options.deduplication_id,
        priority=options.priority or 0,
        queue_partition_key=options.queue_partition_key,
        # DELAYED until then, on the database clock, which the claimers and the leader compare it with
        delay_until_ms=executor.db.clock.now_ms() + int(delay * 1000) if delay > 0 else None,
    )
    parent_step = None
    if parent is not None and function_id is not None:  # a start inside a workflow has a position
        parent_step = fenced_step(parent, function_id, entry.name, child_workflow_id=workflow_id)
    try:
        with executor.fenced_write(parent):
            inserted = executor.db.workflows.enqueue(new, placement, parent_step)
    except DeduplicatedError as exc:
        raise DBOSQueueDeduplicatedError(workflow_id, queue.name, exc.deduplication_id) from None
    if not inserted:
        executor.check_same_workflow(workflow_id, entry, new.class_name, new.config_name)
    elif executor.on_queue_slot_freed is not None:
        executor.on_queue_slot_freed(queue.name)  # wake claimers: work is waiting
    return WorkflowHandle(executor, workflow_id)
