"""What the fleet looks like now: members, the leader, queues and recent takeovers.

``pgfleet status`` prints this; tests and operators call :func:`fleet_status` directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sysdb import SystemDatabase
from sysdb.claims import QueueCounts
from sysdb.fleet import FleetMember, SupervisorRow
from sysdb.leadership import Lease
from sysdb.takeover import TakeoverRecord

__all__ = ["FleetStatus", "fleet_status"]


@dataclass
class FleetStatus:
    """A snapshot of the cluster, read from the system database."""

    members: list[FleetMember] = field(default_factory=list)
    leader: Lease | None = None
    queues: list[QueueCounts] = field(default_factory=list)
    recent_takeovers: list[TakeoverRecord] = field(default_factory=list)
    supervisors: list[SupervisorRow] = field(default_factory=list)

    @property
    def leader_term(self) -> int | None:
        return self.leader.term if self.leader and self.leader.valid else None

    def member(self, executor_id: str) -> FleetMember | None:
        return next((m for m in self.members if m.executor_id == executor_id), None)


def fleet_status(db: SystemDatabase, *, takeovers: int = 20) -> FleetStatus:
    """Read the fleet's state (five short queries)."""
    leader = db.leadership.current()
    members = [
        dataclasses.replace(member, is_leader=bool(
            leader and leader.valid and leader.executor_id == member.executor_id and leader.executor_epoch == member.epoch
        ))
        for member in db.fleet.members()
    ]
    return FleetStatus(
        members=members,
        leader=leader,
        queues=db.claims.counts(),
        recent_takeovers=db.takeover.recent(takeovers),
        supervisors=db.fleet.supervisors(),
    )
