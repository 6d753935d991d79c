"""Taking workflows over and running them again: recovery at launch and after rejoining,
workflows claimed from queues, workflows a takeover assigned here, and resumed ones.

Each takes a PENDING row that names this executor with a fresh ownership epoch (or moves the
row there by compare-and-set) and replays the workflow in a thread of its own: recorded steps
return their recorded outcomes, the first unfinished one runs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sysdb import OwnershipLostError
from sysdb.recovery import PendingWorkflow, TakenOver
from sysdb.workflow_rows import AcquiredWorkflow, WorkflowRow

from . import metrics
from .context import WorkflowContext
from .errors import DBOSSerializationError
from .registry import CLASS_METHOD, DEFAULT_MAX_RECOVERY_ATTEMPTS, INSTANCE_METHOD, RegisteredWorkflow, Registry
from .serialization import deserialize_args, serialize_exception
from .tracing import FROM_ROW, tracing_enabled
from .validation import prepare_args

if TYPE_CHECKING:
    from .executor import Executor

__all__ = [
    "requeue_unfinished",
    "list_recoverable",
    "warn_of_unregistered_owners",
    "recover_rows",
    "recover_workflow",
    "run_claimed",
    "run_assigned",
    "replay",
    "DEFAULT_MAX_RECOVERY_ATTEMPTS",
]

# What _resolve_bound returns when the object a method workflow needs is not registered here.
_MISSING = object()


def requeue_unfinished(executor: Executor) -> None:
    """At launch: this executor id's unfinished queued workflows go back to their queues (no
    thread of this process can be running them), to be claimed again under the queue limits."""
    requeued = executor.db.takeover.requeue_executor_workflows(executor.executor_id)
    if requeued:
        executor.log.info("returned this executor's unfinished queued workflows to their queues", count=len(requeued))


def warn_of_unregistered_owners(executor: Executor) -> None:
    """At launch: name the executor ids that own PENDING workflows but never joined the fleet
    (a DBOS process, whose default id is "local", before the switch to pgfleet). pgfleet takes
    over only members it saw die, so those workflows wait until an executor of that id
    launches: say so, and how, rather than leave them PENDING in silence."""
    owners = executor.db.recovery.unregistered_owners()
    if owners:
        executor.log.warning(
            "PENDING workflows belong to executor ids that never joined this fleet (a DBOS process?);"
            " each is recovered when an executor of that id launches: once that process is stopped,"
            " launch one pgfleet executor with that executor_id (ops/RUNBOOK.md, 'Switching from DBOS')",
            unregistered_owners=", ".join(f"{owner} ({count})" for owner, count in owners.items()),
        )


def list_recoverable(executor: Executor) -> list[PendingWorkflow]:
    """This executor's PENDING rows, read before it takes new work (so none of them was just
    claimed or assigned here); :func:`recover_rows` replays them, in the background."""
    return executor.db.recovery.pending_for(executor.executor_id)


def recover_rows(
    executor: Executor, rows: list[PendingWorkflow], keep_going: Callable[[], bool] = lambda: True
) -> tuple[list[PendingWorkflow], list[PendingWorkflow]]:
    """Resume listed PENDING workflows from their first unfinished step. Returns the rows to
    try again later: those whose previous execution here is still running (after this executor
    was declared dead and rejoined, an abandoned thread may be inside a step body: replaying
    now would run that step twice at once), and those whose recovery failed. Stops early (the
    rest dropped) once ``keep_going`` says so: a stopping or abandoned executor recovers nothing."""
    running: list[PendingWorkflow] = []
    failed: list[PendingWorkflow] = []
    recovered = 0
    for row in rows:
        if not keep_going():
            break
        workflow_id = row.workflow_uuid
        generation = executor.local_generation(workflow_id)
        if generation == executor.generation:
            continue  # running here now, under the current membership: nothing to recover
        if generation is not None:
            running.append(row)  # an abandoned execution still runs: wait for it to stop
            continue
        if row.owner_epoch in executor.running_epochs():
            # Held here with no execution yet: a start, claim or adoption whose row committed
            # and whose thread is not up. Look again once it runs (then it is skipped above)
            # or has stopped.
            running.append(row)
            continue
        try:
            if recover_workflow(executor, workflow_id, executor.executor_id, row.owner_epoch) is not None:
                recovered += 1
        except _ReplayFailed as exc:  # taken over, not started: retry from the epoch it took
            executor.log.error("recovering a workflow failed; will retry", recover_workflow_id=workflow_id, error=repr(exc.__cause__))
            failed.append(replace(row, owner_epoch=exc.owner_epoch))
        except Exception as exc:  # one row must never stop the others' recovery
            executor.log.error("recovering a workflow failed; will retry", recover_workflow_id=workflow_id, error=repr(exc))
            failed.append(row)
    if recovered:
        executor.log.info("recovered pending workflows", count=recovered)
    return running, failed


def recover_workflow(executor: Executor, workflow_id: str, previous_executor_id: str, previous_epoch: int | None) -> str | None:
    """Take a PENDING workflow over (compare-and-set to a fresh epoch) and replay it here."""
    row = executor.db.workflows.status(workflow_id)
    if row is None:
        return None
    entry = executor.registry.workflow(row.name)
    if entry is None:
        executor.log.error(
            "cannot recover workflow: its function is not registered in this process",
            recover_workflow_id=workflow_id,
            function=row.name,
        )
        return None
    bound = _resolve_bound(executor.registry, entry, row)
    if bound is _MISSING:
        executor.log.error(
            "cannot recover workflow: its configured instance is not registered",
            recover_workflow_id=workflow_id,
            class_name=row.class_name,
            config_name=row.config_name,
        )
        return None
    # The epoch is drawn and held first: it is the take-over's attempt token (runtime.ownership).
    token = executor.db.workflows.reserve_epoch()
    executor.hold_epoch(token)
    try:
        taken = executor.db.recovery.take_over(
            workflow_id=workflow_id,
            executor_id=executor.executor_id,
            previous_executor_id=previous_executor_id,
            previous_epoch=previous_epoch,
            owner_epoch=token,
        )
        recovered = _run_taken(executor, row, entry, bound, taken)
    except BaseException:
        executor.release_epoch(token)
        raise
    if recovered is None:
        executor.release_epoch(token)  # once replayed, the workflow's thread holds it
    return recovered


def _run_taken(
    executor: Executor, row: WorkflowRow, entry: RegisteredWorkflow, bound: Any, taken: TakenOver | None
) -> str | None:
    workflow_id = row.workflow_uuid
    if taken is None:
        return None  # someone else moved it meanwhile
    max_attempts = entry.max_recovery_attempts
    if _exceeded(max_attempts, taken.recovery_attempts):
        executor.db.recovery.dead_letter(workflow_id=workflow_id, executor_id=executor.executor_id, owner_epoch=taken.owner_epoch)
        executor.log.error(
            "workflow exceeded its recovery attempts; marked MAX_RECOVERY_ATTEMPTS_EXCEEDED",
            recover_workflow_id=workflow_id,
            max_recovery_attempts=max_attempts,
        )
        return None
    try:
        replay(executor, row, entry, bound, taken.owner_epoch)
    except Exception as exc:
        # The row is ours at the new epoch now: a retry must compare-and-set from that one.
        raise _ReplayFailed(taken.owner_epoch) from exc
    return workflow_id


def _exceeded(max_attempts: int | None, recovery_attempts: int) -> bool:
    """Whether a workflow started ``recovery_attempts`` times is past its limit: the first start
    counts as one, so ``max_attempts`` recoveries allow ``max_attempts + 1`` starts. ``None`` is
    no limit, as in DBOS."""
    return max_attempts is not None and recovery_attempts > max_attempts + 1


class _ReplayFailed(Exception):
    """A workflow was taken over (``owner_epoch``) but could not be started."""

    def __init__(self, owner_epoch: int) -> None:
        super().__init__(owner_epoch)
        self.owner_epoch = owner_epoch


def run_claimed(executor: Executor, rows: list[AcquiredWorkflow], generation: int | None = None) -> None:
    """Run queued workflows this executor just claimed (each row is fenced to us), as part of
    executor ``generation`` (by default the current one): the one the claim was made in."""
    for row in rows:
        _guarded(executor, "claimed", row, functools.partial(_run_claimed_row, generation=generation))


def run_assigned(executor: Executor, rows: list[AcquiredWorkflow], generation: int | None = None) -> None:
    """Run workflows a takeover assigned to this executor (replaying their steps), as part of
    executor ``generation`` (by default the current one): the one they were read in."""
    for row in rows:
        _guarded(executor, "assigned", row, functools.partial(_run_assigned_row, generation=generation))


def _guarded(executor: Executor, what: str, row: AcquiredWorkflow, run: Any) -> None:
    """Start one row of a batch; a failure is logged and never stops the rest of the batch."""
    try:
        run(executor, row)
    except Exception as exc:
        executor.log.exception(f"could not start a {what} workflow", failed_workflow_id=row.workflow_uuid, error=str(exc))


def _run_claimed_row(executor: Executor, row: AcquiredWorkflow, generation: int | None = None) -> None:
    workflow_id = row.workflow_uuid
    metrics.CLAIMS.labels(row.queue_name).inc()
    entry = executor.registry.workflow(row.name)
    bound = _resolve_bound(executor.registry, entry, row) if entry is not None else _MISSING
    if entry is None or bound is _MISSING:
        # Claims pick only what this process can bind (MethodBindings): not expected, handled alike.
        _requeue_unbindable(executor, row, "claimed")
        return
    if _exceeded(entry.max_recovery_attempts, row.recovery_attempts):
        executor.db.recovery.dead_letter(workflow_id=workflow_id, executor_id=executor.executor_id, owner_epoch=row.owner_epoch)
        return
    # A first claim has nothing recorded; a re-claimed or resumed one replays its steps.
    replay(executor, row, entry, bound, row.owner_epoch, load_steps=row.has_steps, generation=generation)


def _run_assigned_row(executor: Executor, row: AcquiredWorkflow, generation: int | None = None) -> None:
    entry = executor.registry.workflow(row.name)
    bound = _resolve_bound(executor.registry, entry, row) if entry is not None else _MISSING
    if entry is None or bound is _MISSING:
        # A takeover picks the new owner by workflow name: the method's instance may be missing here.
        _requeue_unbindable(executor, row, "assigned")
        return
    replay(executor, row, entry, bound, row.owner_epoch, generation=generation)


def _requeue_unbindable(executor: Executor, row: AcquiredWorkflow, how: str) -> None:
    """Hand back a workflow this process cannot bind (its class or configured instance is not
    registered here): onto its queue, or the internal one, for an executor that has it."""
    queue = executor.db.recovery.requeue_unbindable(
        workflow_id=row.workflow_uuid, executor_id=executor.executor_id, owner_epoch=row.owner_epoch
    )
    executor.log.error(
        f"{how} a workflow this process cannot run; put back on a queue for an executor that can",
        acquired_workflow_id=row.workflow_uuid, function=row.name, class_name=row.class_name, config_name=row.config_name,
        queue=queue,
    )
    if queue is not None:
        executor.db.claims.wake_queue(queue)


def replay(
    executor: Executor,
    row: WorkflowRow | AcquiredWorkflow,
    entry: RegisteredWorkflow,
    bound: Any,
    owner_epoch: int,
    *,
    load_steps: bool = True,
    generation: int | None = None,
) -> None:
    """Run a workflow from the start in a thread, skipping its recorded steps. A workflow whose
    inputs cannot be decoded here is dead-lettered instead (see :func:`fail_undecodable`)."""
    workflow_id = row.workflow_uuid
    try:
        args, kwargs, roles = _decode(row)
    except DBOSSerializationError as exc:
        fail_undecodable(executor, row, owner_epoch, exc)
        return
    try:
        args, kwargs = prepare_args(entry, row.serialization, args, kwargs)
    except Exception as exc:  # its validate_args rejected them: as DBOS, the workflow's outcome
        fail_undecodable(executor, row, owner_epoch, exc, recorded=exc)
        return
    ctx = WorkflowContext(
        workflow_id=workflow_id,
        name=entry.name,
        executor_id=executor.executor_id,
        owner_epoch=owner_epoch,
        # The generation the work was acquired in: if this executor abandoned its work since,
        # this execution is abandoned too and stops before its first step.
        generation=executor.generation if generation is None else generation,
        executor=executor,
        recorded=executor.db.steps.load_outputs(workflow_id) if load_steps else None,
        queue_name=row.queue_name,
        serialization=row.serialization,
        authenticated_user=row.authenticated_user,
        authenticated_roles=roles,
        assumed_role=row.assumed_role,
        deadline_epoch_ms=row.workflow_deadline_epoch_ms,
        timeout_ms=row.workflow_timeout_ms,
        # Its trace carrier, if any, is read from the row when its span starts (tracing on).
        trace_parent=FROM_ROW if tracing_enabled() else None,
    )
    executor.spawn(ctx, entry, bound, args, kwargs)


def _decode(row: WorkflowRow | AcquiredWorkflow) -> tuple[tuple[Any, ...], dict[str, Any], list[str] | None]:
    """A row's arguments and caller roles, or :class:`DBOSSerializationError`."""
    args, kwargs = deserialize_args(row.inputs, row.serialization) if row.inputs else ((), {})
    try:
        roles = json.loads(row.authenticated_roles) if row.authenticated_roles else None
    except ValueError as exc:
        raise DBOSSerializationError(f"cannot deserialize the recorded authenticated_roles: {exc}") from exc
    return args, kwargs, roles


def fail_undecodable(
    executor: Executor, row: WorkflowRow | AcquiredWorkflow, owner_epoch: int, exc: Exception, *, recorded: Exception | None = None
) -> None:
    """Record a workflow whose inputs cannot be decoded in this process (a class that existed
    only in the enqueuer's ``__main__``, one renamed by a deploy, corrupt data) as ERROR, fenced
    on its owner like every final status. It can never run, and retrying it would fail every
    recovery and every claim pass; its inputs stay in the row for whoever repairs it. The error
    is a builtin exception, so any reader (DBOS's client too) can unpickle it. With
    ``recorded`` (the error of a ``validate_args`` that rejected the inputs) that error is the
    outcome instead, as DBOS records it."""
    workflow_id = row.workflow_uuid
    reason = f"workflow {workflow_id!r} ({row.name}) cannot run: its inputs could not be decoded: {exc}"
    if recorded is not None:
        reason = f"workflow {workflow_id!r} ({row.name}) cannot run: its validate_args rejected its inputs: {exc}"
    error = serialize_exception(recorded or Exception(f"DBOSSerializationError: {reason}"), row.serialization)
    try:
        executor.db.workflows.finish(
            workflow_id=workflow_id, executor_id=executor.executor_id, owner_epoch=owner_epoch,
            status="ERROR", output=None, error=error,
        )
    except OwnershipLostError:
        executor.log.warning("undecodable workflow moved on before it was dead-lettered", dead_workflow_id=workflow_id)
        return
    metrics.count_finished("ERROR")
    executor.log.error("dead-lettered a workflow whose inputs cannot be decoded (status ERROR)", dead_workflow_id=workflow_id, reason=reason)
    if row.queue_name is not None:
        executor.hooks.queue_work_changed(row.queue_name)


def _resolve_bound(registry: Registry, entry: RegisteredWorkflow, row: WorkflowRow | AcquiredWorkflow) -> Any:
    if entry.kind == INSTANCE_METHOD:
        instance = registry.instance(row.class_name or "", row.config_name or "")
        return _MISSING if instance is None else instance
    if entry.kind == CLASS_METHOD:
        cls = registry.classes.get(row.class_name or "")
        return _MISSING if cls is None else cls
    return None
