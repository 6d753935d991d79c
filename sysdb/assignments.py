"""Assignments: PENDING workflows that name this executor and that it does not run yet.

Two reads: the rows a takeover assigned here (only an epoch a takeover handed out counts), and
the orphans of an ownership write whose reply was lost (any epoch no thread here runs).
"""

from __future__ import annotations

from collections.abc import Sequence

from .door import Door, row_to
from .workflow_rows import AcquiredWorkflow

__all__ = ["Assignments"]


class Assignments(Door):
    """What this executor owns and should be running."""

    def assigned_not_running(
        self, executor_id: str, running_epochs: Sequence[int], member_epoch: int | None
    ) -> list[AcquiredWorkflow]:
        """Workflows a takeover assigned to ``executor_id`` under an epoch not in
        ``running_epochs``, stamped with the membership (``member_epoch``) the read was made under."""
        rows = self._execute(
            "list_assigned_not_running",
            {"executor_id": executor_id, "running_epochs": list(running_epochs), "member_epoch": member_epoch},
        )
        return [row_to(AcquiredWorkflow, row) for row in rows]
