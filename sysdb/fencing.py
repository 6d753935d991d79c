"""What the fenced writes share: recognising a write's own effect after a lost reply, and
saying why a fenced write matched no row.

A fenced write names the owner executor and the ownership epoch and succeeds only while the
workflow row still names both. A COMMIT can succeed and its reply be lost; the retry then
meets its own effect: a step row it wrote (a unique violation on the step's key, with the same
operation name), or a status row bearing the epoch it drew beforehand (its attempt token).
Both are success, never a duplicate (see ``runtime/ownership.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import psycopg

from .errors import OwnershipLostError

if TYPE_CHECKING:
    from .database import DictConnection, SystemDatabase
    from .steps import StepRecord, StepRow

__all__ = ["STEP_KEY_CONSTRAINT", "counting_attempts", "is_own_row", "ownership_lost", "with_own_step"]

T = TypeVar("T")

# The key of step rows: a retry that meets it on its own step found its own committed write.
STEP_KEY_CONSTRAINT = "operation_outputs_pkey"


def counting_attempts(fn: Callable[[], T]) -> tuple[Callable[[], T], Callable[[], int]]:
    """``fn`` counting its calls: more than one means a retry, which may follow a lost reply."""
    count = 0

    def counted() -> T:
        nonlocal count
        count += 1
        return fn()

    return counted, lambda: count


def is_own_row(db: SystemDatabase, workflow_id: str, executor_id: str, owner_epoch: int) -> bool:
    """Whether the workflow is PENDING under this owner and epoch (an attempt token's own row)."""
    row = db.workflows.status(workflow_id)
    return bool(row and row.status == "PENDING" and row.executor_id == executor_id and row.owner_epoch == owner_epoch)


def ownership_lost(
    db: SystemDatabase, workflow_id: str, executor_id: str, owner_epoch: int, connection: DictConnection | None = None
) -> OwnershipLostError:
    """The error of a fenced write that matched no row, describing the row as it is now."""
    # Inside a transaction, read on the connection already held: a second checkout from the
    # pool while holding one deadlocks a pool that a burst of fenced writes has exhausted.
    row = db.workflows.status(workflow_id, connection=connection)
    return OwnershipLostError(
        workflow_id,
        executor_id,
        owner_epoch,
        status=row.status if row else None,
        owner=row.executor_id if row else None,
        current_epoch=row.owner_epoch if row else None,
    )


def with_own_step(db: SystemDatabase, fn: Callable[[], T], step: StepRecord | None, on_own: Callable[[StepRow], T]) -> T:
    """Run ``fn``, a transaction that commits a fenced step row (``step``) with its effect,
    with retries. A retry after a lost COMMIT reply meets its own step row (a unique violation
    on the step's key, with the same operation name): the effect committed, so that is
    success, and ``on_own`` builds the result from the recorded step."""
    run, attempts = counting_attempts(fn)
    try:
        return db.with_retries(run)
    except psycopg.errors.UniqueViolation as exc:
        if step is None or attempts() < 2 or exc.diag.constraint_name != STEP_KEY_CONSTRAINT:
            raise
        recorded = db.steps.get(step.workflow_id, step.function_id)
        if recorded is None or recorded.function_name != step.function_name:
            raise
        return on_own(recorded)
