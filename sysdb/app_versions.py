"""The door to application versions (``dbos.application_versions``, DBOS's table) and to
renaming an application's rows.

Every launch records its version (the first launch of a version stamps its time); the latest
version of an application is the one with the newest timestamp, which
``set_latest_application_version`` moves to now.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from .door import Door, row_to
from .queue_rows import OwnedWrite

__all__ = ["ApplicationVersions", "VersionRow", "RenameCounts"]


@dataclass(frozen=True)
class VersionRow:
    """One application version (times in epoch milliseconds)."""

    version_id: str
    version_name: str
    version_timestamp: int
    created_at: int
    application_name: str | None


@dataclass(frozen=True)
class RenameCounts:
    """How many rows a rename moved, by table."""

    queues: int
    schedules: int
    versions: int
    workflows: int
    steps: int


class ApplicationVersions(Door):
    """Record, list and promote application versions; re-own an application's rows."""

    def register(self, version_name: str, application_name: str | None) -> OwnedWrite:
        """Record ``version_name`` for ``application_name`` (claiming an unclaimed row; never
        one another application owns: see :class:`OwnedWrite`)."""
        params = {"version_id": str(uuid.uuid4()), "version_name": version_name, "application_name": application_name}
        return row_to(OwnedWrite, self._execute("register_application_version", params)[0])

    def list(self, application_name: str | None, *, limit: int | None = None) -> list[VersionRow]:
        """The application's versions and the unclaimed ones, latest first (None: all)."""
        rows = self._execute("list_app_versions", {"application_name": application_name, "limit": limit})
        return [row_to(VersionRow, row) for row in rows]

    def latest(self, application_name: str | None) -> VersionRow | None:
        """The application's latest version (None: no version is recorded)."""
        rows = self.list(application_name, limit=1)
        return rows[0] if rows else None

    def promote(self, version_name: str, application_name: str | None) -> OwnedWrite:
        """Make ``version_name`` the latest (its timestamp becomes the database's now)."""
        params = {"version_name": version_name, "application_name": application_name}
        return row_to(OwnedWrite, self._execute("promote_application_version", params)[0])

    def rename(self, old_name: str | None, new_name: str, *, batch_size: int | None, adopt_unclaimed: bool) -> RenameCounts:
        """Give ``new_name`` the rows of ``old_name`` (and the unclaimed ones when
        ``adopt_unclaimed``): the live rows in one transaction, the rest in batches."""
        params = {"old_name": old_name, "new_name": new_name, "adopt_unclaimed": adopt_unclaimed, "batch_size": batch_size}
        live = self._execute("rename_application_live_rows", params)[0]
        workflows, steps = int(live["workflows"]), 0
        while True:
            batch = self._execute("rename_application_terminal_batch", params)[0]
            workflows += int(batch["workflows"])
            steps += int(batch["steps"])
            if batch_size is None or (batch["workflows"] < batch_size and batch["steps"] < batch_size):
                break
        return RenameCounts(int(live["queues"]), int(live["schedules"]), int(live["versions"]), workflows, steps)
