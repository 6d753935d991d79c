"""The fleet as ``pgfleet status`` shows it: every member with its heartbeat age, and the
supervisors with their worker slots (each supervisor reports itself here)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from .door import Door, row_to

__all__ = ["Fleet", "FleetMember", "SupervisorRow", "SupervisorReport", "SlotReport"]


@dataclass(frozen=True)
class FleetMember:
    """A member as the fleet status shows it."""

    executor_id: str
    epoch: int
    host: str
    pid: int
    supervisor_id: str | None
    application_name: str | None
    application_version: str | None
    queues: list[str] | None
    status: str
    started_at: datetime.datetime
    last_heartbeat: datetime.datetime
    heartbeat_age_sec: float
    running_workflows: int
    # Whether it holds the valid lease (filled in by whoever also read the lease).
    is_leader: bool = False


class SlotReport(TypedDict):
    """One worker slot of a supervisor, as it reports it (a JSON document in its row)."""

    slot: int
    executor_id: str
    pid: int | None
    state: str
    restarts: int
    last_exit: str | None


@dataclass(frozen=True)
class SupervisorReport:
    """What a supervisor says about itself and its worker slots."""

    supervisor_id: str
    name: str
    host: str
    pid: int
    app: str
    workers: int
    state: str  # running, draining or stopped
    slots: Sequence[SlotReport]


@dataclass(frozen=True)
class SupervisorRow:
    """A supervisor's last report, with how long ago it was made (database clock)."""

    supervisor_id: str
    name: str
    host: str
    pid: int
    app: str
    workers: int
    state: str
    slots: list[SlotReport]
    started_at: datetime.datetime
    last_seen: datetime.datetime
    last_seen_age_sec: float


class Fleet(Door):
    """Members and supervisors, for the status views."""

    def members(self) -> list[FleetMember]:
        """Every known member with its heartbeat age and how many workflows it runs."""
        return [row_to(FleetMember, row) for row in self._execute("fleet_members", {"now": self._now()})]

    def supervisors(self) -> list[SupervisorRow]:
        """Every supervisor's last report."""
        return [row_to(SupervisorRow, row) for row in self._execute("list_supervisors")]

    def report_supervisor(self, report: SupervisorReport) -> None:
        """Record a supervisor's report of itself (its row's last_seen is now)."""
        self._execute(
            "upsert_supervisor",
            {
                "supervisor_id": report.supervisor_id,
                "name": report.name,
                "host": report.host,
                "pid": report.pid,
                "app": report.app,
                "workers": report.workers,
                "state": report.state,
                "slots": json.dumps(list(report.slots)),
            },
        )
