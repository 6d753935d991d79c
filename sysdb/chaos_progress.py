"""A chaos run's view of its work while it runs: how far the workflows it started have got."""

from __future__ import annotations

from collections.abc import Sequence

from .door import Door

__all__ = ["ChaosProgress"]


class ChaosProgress(Door):
    """Counts for the progress line of ``pgfleet chaos``."""

    def status_counts(self, workflow_ids: Sequence[str]) -> dict[str, int]:
        """status → how many of ``workflow_ids`` have it (ids without a row are not counted)."""
        rows = self._execute("count_workflows_by_status", {"workflow_ids": list(workflow_ids)})
        return {str(r["status"]): int(r["n"]) for r in rows}

    def all_status_counts(self) -> dict[str, int]:
        """status → how many workflows of the database have it (children and internal ones too)."""
        return {str(r["status"]): int(r["n"]) for r in self._execute("count_all_workflows_by_status")}
