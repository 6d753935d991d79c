"""What the fleet looks like now: members, the leader, queues and recent takeovers.

``pgfleet status`` prints this; tests and operators call :func:`fleet_status` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sysdb import SystemDatabase

__all__ = ["FleetStatus", "fleet_status"]


@dataclass
class FleetStatus:
    """A snapshot of the cluster, read from the system database."""

    members: list[dict[str, Any]] = field(default_factory=list)
    leader: dict[str, Any] | None = None
    queues: list[dict[str, Any]] = field(default_factory=list)
    recent_takeovers: list[dict[str, Any]] = field(default_factory=list)
    supervisors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def leader_term(self) -> int | None:
        return self.leader["term"] if self.leader and self.leader["valid"] else None

    def member(self, executor_id: str) -> dict[str, Any] | None:
        return next((m for m in self.members if m["executor_id"] == executor_id), None)


def fleet_status(db: SystemDatabase, *, takeovers: int = 20) -> FleetStatus:
    """Read the fleet's state (five short queries)."""
    leader_rows = db.execute("get_leader")
    leader = leader_rows[0] if leader_rows else None
    members = db.execute("fleet_members")
    for member in members:
        member["is_leader"] = bool(
            leader and leader["valid"] and leader["executor_id"] == member["executor_id"]
            and leader["executor_epoch"] == member["epoch"]
        )
    return FleetStatus(
        members=members,
        leader=leader,
        queues=db.execute("fleet_queue_counts"),
        recent_takeovers=db.execute("recent_takeovers", {"limit": takeovers}),
        supervisors=db.execute("list_supervisors"),
    )
