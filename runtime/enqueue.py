"""Putting a workflow on a queue: ``Queue.enqueue``, ``DBOS.enqueue_workflow`` (by queue name)
and ``DBOS.enqueue_workflow_with_options`` (by workflow name), from anywhere or from inside a
workflow.

From inside a workflow the enqueue is a checkpointed child start: the parent's step row naming
the child commits with the child's ENQUEUED row, and a replay returns the same handle. A
deduplication id held by a live workflow of the queue raises ``DBOSQueueDeduplicatedError``,
or, under ``duplication_policy="return-existing"``, returns a handle on the holder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sysdb.errors import DeduplicatedError

from .context import StartOptions, WorkflowContext, current_workflow, take_start_options
from .current import executor_for
from .errors import DBOSException, DBOSQueueDeduplicatedError
from .handles import WorkflowHandle
from .operations import fenced_step
from .registry import RegisteredWorkflow, split_bound, workflow_of
from .starts import check_same_workflow
from .workflow_start import WorkflowStart, call_start, start_timeout, take_start_position, validate_input

if TYPE_CHECKING:
    from .executor import Executor
    from .queues import Queue

__all__ = ["enqueue_call", "enqueue_workflow", "persist_enqueue", "check_duplication_policy"]

# How often a "return-existing" enqueue tries again when the holder of the deduplication id
# finished between the refused insert and the look-up (then the id is free to take).
_RETURN_EXISTING_TRIES = 10


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
    if parent is not None:
        parent.refuse_workflow_start("enqueue", entry.name)
        executor.check_running(parent)
    options = take_start_options()
    validate_input(entry, args, kwargs)
    check_queue_options(queue, options)
    check_duplication_policy(options.duplication_policy, queue.name, options.deduplication_id)

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

    def existing() -> None:
        check_same_workflow(executor, workflow_id, entry, start.class_name, start.config_name)

    held_by = persist_enqueue(executor, parent, position.function_id, start, options.duplication_policy, existing)
    return WorkflowHandle(held_by, source=executor)


def persist_enqueue(
    executor: Executor,
    parent: WorkflowContext | None,
    function_id: int | None,
    start: WorkflowStart,
    duplication_policy: str | None,
    on_existing: Callable[[], None],
) -> str:
    """Write a queued start (with the parent's fenced step row, inside a workflow) and wake
    the queue's claimers; returns the id of the workflow the caller gets a handle on: the new
    one, or the holder of its deduplication id under "return-existing". ``on_existing`` runs
    when the id exists already (it raises if that is another workflow)."""
    placement = start.queue_placement()
    parent_step = None
    if parent is not None and function_id is not None:  # a start inside a workflow has a position
        parent_step = fenced_step(parent, function_id, start.name, child_workflow_id=start.workflow_id)
    for _ in range(_RETURN_EXISTING_TRIES):
        try:
            with executor.fenced_write(parent):
                inserted = executor.db.workflows.enqueue(start.new_workflow(), placement, parent_step)
        except DeduplicatedError as exc:
            if duplication_policy != "return-existing":
                raise DBOSQueueDeduplicatedError(start.workflow_id, placement.queue_name, exc.deduplication_id) from None
            holder = executor.db.queue_rows.deduplication_holder(placement.queue_name, exc.deduplication_id)
            if holder is None:
                continue  # the holder finished meanwhile: the id is free, take it
            if parent_step is not None:  # the parent's step names the holder: a replay returns it
                with executor.fenced_write(parent):
                    executor.db.steps.record(dataclasses.replace(parent_step, child_workflow_id=holder))
            return holder
        if not inserted:
            on_existing()
        else:
            executor.hooks.queue_work_changed(placement.queue_name)  # wake claimers: work is waiting
        return start.workflow_id
    raise DBOSQueueDeduplicatedError(start.workflow_id, placement.queue_name, placement.deduplication_id or "")


def check_queue_options(queue: Queue, options: StartOptions) -> None:
    """Refuse options the queue cannot serve (its claimers would never take such a workflow),
    with DBOS's texts. A database-backed queue is not checked (as in DBOS: no round trip)."""
    if options.queue_partition_key is not None and options.deduplication_id is not None:
        raise Exception("Deduplication is not supported for partitioned queues")
    if queue.database_backed_queue:
        return
    if options.priority is not None and not queue.priority_enabled:
        raise Exception(f"Priority is not enabled for queue {queue.name}. Setting priority will not have any effect.")
    if queue.partition_queue and options.queue_partition_key is None:
        raise Exception(f"A workflow cannot be enqueued on partitioned queue {queue.name} without a partition key")
    if not queue.partition_queue and options.queue_partition_key is not None:
        raise Exception(
            "You can only use a partition key on a partition-enabled queue. "
            f"Key {options.queue_partition_key} was used with non-partitioned queue {queue.name}"
        )


def check_duplication_policy(policy: str | None, queue_name: str | None, deduplication_id: str | None) -> None:
    """DBOS's checks of a duplication policy (DBOSException, DBOS's texts)."""
    if policy is None or policy == "reject":
        return
    if policy != "return-existing":
        raise DBOSException(f"Invalid duplication_policy {policy}. Must be either 'reject' or 'return-existing'.")
    if queue_name is None:
        raise DBOSException(
            "duplication_policy 'return-existing' requires a queue. It is only "
            "supported when enqueueing a workflow onto a queue."
        )
    if deduplication_id is None:
        raise DBOSException("duplication_policy 'return-existing' requires a deduplication_id.")
