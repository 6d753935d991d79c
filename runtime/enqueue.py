"""``Queue.enqueue``: putting a workflow on a queue, from anywhere or from inside a workflow.

From inside a workflow the enqueue is a checkpointed child start: the parent's step row naming
the child commits with the child's ENQUEUED row, and a replay returns the same handle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sysdb.errors import DeduplicatedError

from .context import StartOptions, current_workflow, take_start_options
from .current import executor_for
from .errors import DBOSException, DBOSQueueDeduplicatedError
from .handles import WorkflowHandle
from .operations import fenced_step
from .registry import RegisteredWorkflow, split_bound, workflow_of
from .starts import check_same_workflow
from .workflow_start import call_start, start_timeout, take_start_position, validate_input

if TYPE_CHECKING:
    from .executor import Executor
    from .queues import Queue

__all__ = ["enqueue_call", "enqueue_workflow"]


def enqueue_call(
    queue: Queue, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], executor: Executor | None = None
) -> WorkflowHandle[Any]:
    """``queue.enqueue(func, *args, **kwargs)`` through ``executor`` (by default the one a call
    made here goes to: see :func:`runtime.current.executor_for`)."""
    entry, bound = workflow_of(func)
    if executor is None:
        executor = executor_for(f"enqueue of workflow {entry.name!r}")
    if bound is None:
        bound, args = split_bound(entry, args)
    return enqueue_workflow(executor, queue, entry, bound, tuple(args), kwargs)


def enqueue_workflow(
    executor: Executor, queue: Queue, entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> WorkflowHandle[Any]:
    """Put a workflow on a queue; inside a workflow, as a checkpointed child start."""
    parent = current_workflow()
    if parent is not None and parent.in_step:
        raise DBOSException(f"cannot enqueue workflow {entry.name!r} from inside a step")
    if parent is not None:
        executor.check_running(parent)
    options = take_start_options()
    validate_input(entry, args, kwargs)
    _check_queue_options(queue, options)

    position = take_start_position(parent, options, entry)
    if position.replayed_child is not None:  # replay: the same handle as the first execution
        return WorkflowHandle(position.replayed_child, source=executor)

    workflow_id = position.workflow_id
    timeout_ms, deadline_ms = start_timeout(options, parent, executor.db.clock.now_ms, queued=True)
    start = dataclasses.replace(
        call_start(entry, bound, args, kwargs, options, parent, workflow_id, executor.config.name),
        # Pinned to a version only when asked (SetEnqueueOptions or a configured version):
        # work enqueued under the code hash would be stranded by the next deploy.
        application_version=options.app_version or executor.config.application_version,
        timeout_ms=timeout_ms,
        deadline_ms=deadline_ms,
    ).queued(
        queue.name,
        delay_sec=options.delay_seconds or 0,
        db_now_ms=executor.db.clock.now_ms,
        deduplication_id=options.deduplication_id,
        priority=options.priority or 0,
        queue_partition_key=options.queue_partition_key,
    )
    parent_step = None
    if parent is not None and position.function_id is not None:  # a start inside a workflow has a position
        parent_step = fenced_step(parent, position.function_id, entry.name, child_workflow_id=workflow_id)
    try:
        with executor.fenced_write(parent):
            inserted = executor.db.workflows.enqueue(start.new_workflow(), start.queue_placement(), parent_step)
    except DeduplicatedError as exc:
        raise DBOSQueueDeduplicatedError(workflow_id, queue.name, exc.deduplication_id) from None
    if not inserted:
        check_same_workflow(executor, workflow_id, entry, start.class_name, start.config_name)
    else:
        executor.hooks.queue_work_changed(queue.name)  # wake claimers: work is waiting
    return WorkflowHandle(workflow_id, source=executor)


def _check_queue_options(queue: Queue, options: StartOptions) -> None:
    """Refuse options the queue cannot serve (its claimers would never take such a workflow)."""
    if options.priority is not None and options.priority != 0 and not queue.priority_enabled:
        raise DBOSException(f"queue {queue.name!r} does not have priority_enabled; cannot enqueue with priority {options.priority}")
    if queue.partition_queue and options.queue_partition_key is None:
        raise DBOSException(f"queue {queue.name!r} is partitioned: enqueue with SetEnqueueOptions(queue_partition_key=...)")
    if not queue.partition_queue and options.queue_partition_key is not None:
        raise DBOSException(f"queue {queue.name!r} is not partitioned; queue_partition_key is not allowed")
