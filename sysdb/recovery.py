"""The door to the rows an executor takes up again: its PENDING workflows after a restart or a
rejoin, workflows it owns but runs nothing for (a lost reply's orphans), and those that ran out
of recovery attempts.

Recovery takes a row over by compare-and-set from the epoch that was read to a fresh one the
caller drew (:meth:`sysdb.workflows.Workflows.reserve_epoch`), its attempt token.
"""

from __future__ import annotations

from dataclasses import dataclass

from .door import Door
from .queue_rows import INTERNAL_QUEUE_NAME
from .timestamps import now_ms
from .workflow_rows import AcquiredWorkflow

__all__ = ["Recovery", "PendingWorkflow", "TakenOver"]


@dataclass(frozen=True)
class PendingWorkflow:
    """A PENDING workflow of an executor, as listed for its recovery."""

    workflow_uuid: str
    name: str
    queue_name: str | None
    owner_epoch: int | None
    recovery_attempts: int


@dataclass(frozen=True)
class TakenOver:
    """The row after a recovery take-over: the epoch it now bears, and its attempts so far."""

    owner_epoch: int
    recovery_attempts: int


class Recovery(Door):
    """PENDING rows to take up again: list them, take one over, or dead-letter it."""

    def pending_for(self, executor_id: str) -> list[PendingWorkflow]:
        """The workflows an executor was running when it stopped, oldest first."""
        rows = self._execute("list_pending_for_executor", {"executor_id": executor_id})
        return [PendingWorkflow(**row) for row in rows]

    def unregistered_owners(self) -> dict[str, int]:
        """The executor ids (at most 20) that own PENDING workflows without ever having
        registered as a member, with how many each owns."""
        return {row["executor_id"]: int(row["pending"]) for row in self._execute("list_unregistered_owners", {})}

    def owned_not_running(self, executor_id: str, running_epochs: list[int]) -> list[AcquiredWorkflow]:
        """PENDING workflows naming ``executor_id`` under an epoch not in ``running_epochs``:
        the orphans of an ownership write whose reply was lost (see runtime/ownership.py)."""
        rows = self._execute("list_owned_not_running", {"executor_id": executor_id, "running_epochs": running_epochs})
        return [AcquiredWorkflow(**row) for row in rows]

    def take_over(
        self, *, workflow_id: str, executor_id: str, previous_executor_id: str, previous_epoch: int | None, owner_epoch: int
    ) -> TakenOver | None:
        """Compare-and-set a PENDING workflow to the fresh epoch ``owner_epoch`` (drawn
        beforehand, so a retry after a lost reply recognises its own take-over) owned by
        ``executor_id``. None: someone else moved the row meanwhile."""
        rows = self._execute(
            "take_over_for_recovery",
            {
                "workflow_id": workflow_id,
                "executor_id": executor_id,
                "previous_executor_id": previous_executor_id,
                "previous_epoch": previous_epoch,
                "owner_epoch": owner_epoch,
                "now_ms": now_ms(),
            },
        )
        return TakenOver(**rows[0]) if rows else None

    def dead_letter(self, *, workflow_id: str, executor_id: str, owner_epoch: int) -> bool:
        """Mark a workflow that ran out of recovery attempts MAX_RECOVERY_ATTEMPTS_EXCEEDED,
        fenced on its owner. False when this owner no longer holds it."""
        params = {"workflow_id": workflow_id, "executor_id": executor_id, "owner_epoch": owner_epoch, "now_ms": now_ms()}
        return self._db._execute_count("dead_letter_workflow", params) > 0

    def requeue_unbindable(self, *, workflow_id: str, executor_id: str, owner_epoch: int) -> str | None:
        """Put a workflow this owner cannot bind here back on its queue (DBOS's internal one if
        it had none), fenced on the owner; the queue it went to, or None when this owner no
        longer held it (a retry after a lost reply finds it moved already)."""
        params = {"workflow_id": workflow_id, "executor_id": executor_id, "owner_epoch": owner_epoch,
                  "internal_queue": INTERNAL_QUEUE_NAME, "now_ms": now_ms()}
        rows = self._execute("requeue_unbindable_workflow", params)
        return str(rows[0]["queue_name"]) if rows else None
