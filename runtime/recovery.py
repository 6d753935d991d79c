"""Taking workflows over and running them again: recovery at launch and after rejoining,
workflows claimed from queues, workflows a takeover assigned here, and resumed ones.

Each takes a PENDING row that names this executor with a fresh ownership epoch (or moves the
row there by compare-and-set) and replays the workflow in a thread of its own: recorded steps
return their recorded outcomes, the first unfinished one runs.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from sysdb import now_ms

from . import metrics
from .context import WorkflowContext
from .errors import DBOSException
from .registry import CLASS_METHOD, INSTANCE_METHOD, RegisteredWorkflow, registry
from .serialization import deserialize_args

if TYPE_CHECKING:
    from .executor import Executor

__all__ = [
    "recover_pending_workflows",
    "recover_workflow",
    "run_claimed",
    "run_assigned",
    "resume_owned",
    "recover_after_outage",
    "replay",
    "DEFAULT_MAX_RECOVERY_ATTEMPTS",
]

DEFAULT_MAX_RECOVERY_ATTEMPTS = 100
# Backoff between attempts to take up a workflow that a database outage stopped here.
OUTAGE_RECOVERY_BACKOFF_SEC = (1.0, 30.0)
# What _resolve_bound returns when the object a method workflow needs is not registered here.
_MISSING = object()


def recover_pending_workflows(executor: "Executor") -> list[str]:
    """Resume this executor's PENDING workflows from their first unfinished step."""
    requeued = executor.db.execute("requeue_executor_workflows", {"executor_id": executor.executor_id, "now_ms": now_ms()})
    if requeued:
        executor.log.info("returned this executor's unfinished queued workflows to their queues", count=len(requeued))
    recovered = []
    for row in executor.db.list_pending_for_executor(executor.executor_id):
        workflow_id = recover_workflow(executor, row["workflow_uuid"], executor.executor_id, row["owner_epoch"])
        if workflow_id is not None:
            recovered.append(workflow_id)
    if recovered:
        executor.log.info("recovered pending workflows", count=len(recovered))
    return recovered

def recover_workflow(executor: "Executor", workflow_id: str, previous_executor_id: str, previous_epoch: int | None) -> str | None:
    """Take a PENDING workflow over (compare-and-set to a fresh epoch) and replay it here."""
    row = executor.db.get_workflow_status(workflow_id)
    if row is None:
        return None
    entry = registry.workflow(row["name"])
    if entry is None:
        executor.log.error(
            "cannot recover workflow: its function is not registered in this process",
            recover_workflow_id=workflow_id,
            function=row["name"],
        )
        return None
    bound = _resolve_bound(entry, row)
    if bound is _MISSING:
        executor.log.error(
            "cannot recover workflow: its configured instance is not registered",
            recover_workflow_id=workflow_id,
            class_name=row["class_name"],
            config_name=row["config_name"],
        )
        return None
    # The epoch is drawn and held first: it is the take-over's attempt token (runtime.ownership).
    token = executor.db.reserve_epoch()
    executor.hold_epoch(token)
    try:
        taken = executor.db.take_over_for_recovery(
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
    executor: "Executor", row: dict[str, Any], entry: RegisteredWorkflow, bound: Any, taken: dict[str, Any] | None
) -> str | None:
    workflow_id = row["workflow_uuid"]
    if taken is None:
        return None  # someone else moved it meanwhile
    max_attempts = entry.max_recovery_attempts or DEFAULT_MAX_RECOVERY_ATTEMPTS
    if taken["recovery_attempts"] > max_attempts + 1:
        executor.db.dead_letter_workflow(workflow_id=workflow_id, executor_id=executor.executor_id, owner_epoch=taken["owner_epoch"])
        executor.log.error(
            "workflow exceeded its recovery attempts; marked MAX_RECOVERY_ATTEMPTS_EXCEEDED",
            recover_workflow_id=workflow_id,
            max_recovery_attempts=max_attempts,
        )
        return None
    replay(executor, row, entry, bound, taken["owner_epoch"])
    return workflow_id

def recover_after_outage(executor: "Executor", workflow_id: str, owner_epoch: int) -> None:
    """Take up again, once the database answers, a workflow that an outage (or a pool that
    stayed busy) stopped here without recording anything.

    A member that stayed in the cluster would otherwise leave it PENDING until its next start.
    The compare-and-set from this very epoch makes it safe against everyone else who may take
    it meanwhile (this member's own recovery after rejoining, a takeover): the first wins, the
    others find the epoch moved and stop.
    """

    def attempt() -> None:
        delay = OUTAGE_RECOVERY_BACKOFF_SEC[0]
        while not executor.stop_event.wait(delay):
            try:
                recover_workflow(executor, workflow_id, executor.executor_id, owner_epoch)
                return
            except Exception as exc:  # still unreachable: try again later
                executor.log.warning("cannot take up a workflow stopped by an outage yet", error=str(exc), stopped_workflow_id=workflow_id)
                delay = min(delay * 2, OUTAGE_RECOVERY_BACKOFF_SEC[1])

    threading.Thread(target=attempt, name=f"outage-recovery-{workflow_id}", daemon=True).start()


def run_claimed(executor: "Executor", rows: list[dict[str, Any]]) -> None:
    """Run queued workflows this executor just claimed (each row is fenced to us)."""
    for row in rows:
        workflow_id = row["workflow_uuid"]
        metrics.CLAIMS.labels(row["queue_name"]).inc()
        entry = registry.workflow(row["name"])
        bound = _resolve_bound(entry, row) if entry is not None else _MISSING
        if entry is None or bound is _MISSING:
            # Claims only pick registered names, so this is a missing configured instance.
            executor.log.error("claimed a workflow this process cannot run", claimed_workflow_id=workflow_id, function=row["name"])
            continue
        max_attempts = entry.max_recovery_attempts or DEFAULT_MAX_RECOVERY_ATTEMPTS
        if row["recovery_attempts"] > max_attempts + 1:
            executor.db.dead_letter_workflow(workflow_id=workflow_id, executor_id=executor.executor_id, owner_epoch=row["owner_epoch"])
            continue
        # A first claim has nothing recorded; a re-claimed or resumed one replays its steps.
        replay(executor, row, entry, bound, row["owner_epoch"], load_steps=row["has_steps"])

def run_assigned(executor: "Executor", rows: list[dict[str, Any]]) -> None:
    """Run workflows a takeover assigned to this executor (replaying their steps)."""
    for row in rows:
        entry = registry.workflow(row["name"])
        bound = _resolve_bound(entry, row) if entry is not None else _MISSING
        if entry is None or bound is _MISSING:
            executor.log.error("assigned a workflow this process cannot run", assigned_workflow_id=row["workflow_uuid"], function=row["name"])
            continue
        replay(executor, row, entry, bound, row["owner_epoch"])

def resume_owned(executor: "Executor", workflow_id: str, owner_epoch: int) -> None:
    """Replay a workflow that was just made PENDING under this executor (resume)."""
    row = executor.db.get_workflow_status(workflow_id)
    entry = registry.workflow(row["name"]) if row else None
    if row is None or entry is None:
        raise DBOSException(f"cannot resume workflow {workflow_id!r}: its function is not registered here")
    bound = _resolve_bound(entry, row)
    if bound is _MISSING:
        raise DBOSException(f"cannot resume workflow {workflow_id!r}: its configured instance is not registered")
    replay(executor, row, entry, bound, owner_epoch)


def replay(
    executor: "Executor", row: dict[str, Any], entry: RegisteredWorkflow, bound: Any, owner_epoch: int, *, load_steps: bool = True
) -> None:
    """Run a workflow from the start in a thread, skipping its recorded steps."""
    workflow_id = row["workflow_uuid"]
    args, kwargs = deserialize_args(row["inputs"], row.get("serialization")) if row["inputs"] else ((), {})
    ctx = WorkflowContext(
        workflow_id=workflow_id,
        name=entry.name,
        executor_id=executor.executor_id,
        owner_epoch=owner_epoch,
        generation=executor.generation,
        executor=executor,
        recorded=executor.db.load_step_outputs(workflow_id) if load_steps else None,
        queue_name=row.get("queue_name"),
        serialization=row.get("serialization"),
        authenticated_user=row["authenticated_user"],
        authenticated_roles=json.loads(row["authenticated_roles"]) if row["authenticated_roles"] else None,
        assumed_role=row["assumed_role"],
        deadline_epoch_ms=row["workflow_deadline_epoch_ms"],
        timeout_ms=row["workflow_timeout_ms"],
    )
    executor.spawn(ctx, entry, bound, args, kwargs)


def _resolve_bound(entry: RegisteredWorkflow, row: dict[str, Any]) -> Any:
    if entry.kind == INSTANCE_METHOD:
        instance = registry.instance(row["class_name"] or "", row["config_name"] or "")
        return _MISSING if instance is None else instance
    if entry.kind == CLASS_METHOD:
        cls = registry.classes.get(row["class_name"] or "")
        return _MISSING if cls is None else cls
    return None
