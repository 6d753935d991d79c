"""The door to waiting on several workflows at once (``DBOS.wait_first``)."""

from __future__ import annotations

from collections.abc import Sequence

from .door import Door

__all__ = ["Waits"]


class Waits(Door):
    """Which of a set of workflows has finished."""

    def first_finished(self, workflow_ids: Sequence[str]) -> str | None:
        """The id of one of ``workflow_ids`` that is no longer PENDING, ENQUEUED or DELAYED
        (None: all still run, or do not exist)."""
        rows = self._execute("first_finished_workflow", {"workflow_ids": list(workflow_ids)})
        return str(rows[0]["workflow_uuid"]) if rows else None
