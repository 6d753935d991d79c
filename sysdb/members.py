"""Members: the rows of ``dbos.pgfleet_executors`` (registration, heartbeats, status).

Liveness is judged on the database clock (``now()`` in the statements, or the injected
:class:`~sysdb.clock.Clock`'s time in tests), so hosts with skewed clocks agree on who is silent.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .door import Door, row_to

__all__ = ["Members", "MemberRow", "Registration", "Beat", "MemberStatus"]

# A member is active, leaving (draining: no new work) or dead (its work is taken over).
MemberStatus = Literal["active", "leaving", "dead"]


@dataclass(frozen=True)
class MemberRow:
    """One member row, as a registering process sees it (``get_executor``)."""

    executor_id: str
    epoch: int
    host: str
    pid: int
    status: str
    last_heartbeat: datetime.datetime
    # Its last heartbeat is younger than the member timeout asked about.
    fresh: bool


@dataclass(frozen=True)
class Registration:
    """What a process says about itself when it registers under an executor id."""

    executor_id: str
    epoch: int  # drawn beforehand (Members.draw_epoch): the registration's attempt token
    host: str
    pid: int
    supervisor_id: str | None
    application_name: str
    application_version: str
    queues: Sequence[str] | None  # None: every queue it declares
    # The limits of the queues it declares (shown by `pgfleet status`), as a JSON document.
    queue_limits: Mapping[str, Any] | None
    workflow_names: Sequence[str]
    member_timeout_sec: float
    # The incarnation this process showed to be gone (same host, dead pid): replaced at once.
    replace_epoch: int | None


@dataclass(frozen=True)
class Beat:
    """An acknowledged heartbeat: the member's status, the database clock when it answered, and
    the leader lease while one is valid (its holder, and how long it has left)."""

    status: str
    db_now_ms: int
    leader_executor_id: str | None = None
    leader_remaining_sec: float | None = None


class Members(Door):
    """Registration, heartbeats and status of the fleet's members."""

    def get(self, executor_id: str, *, member_timeout_sec: float) -> MemberRow | None:
        """The row of ``executor_id``, with whether it beat within ``member_timeout_sec``."""
        rows = self._execute(
            "get_executor", {"executor_id": executor_id, "member_timeout_sec": member_timeout_sec, "now": self._now()}
        )
        return row_to(MemberRow, rows[0]) if rows else None

    def draw_epoch(self) -> int:
        """A fresh member epoch (incarnation), from a sequence in a logged table."""
        epoch: int = self._execute("draw_member_epoch")[0]["epoch"]
        return epoch

    def register(self, registration: Registration) -> int | None:
        """Register (again) under the registration's epoch; returns it, or None when another
        live process holds this executor id."""
        r = registration
        rows = self._execute(
            "register_executor",
            {
                "executor_id": r.executor_id,
                "epoch": r.epoch,
                "host": r.host,
                "pid": r.pid,
                "supervisor_id": r.supervisor_id,
                "application_name": r.application_name,
                "application_version": r.application_version,
                "queues": list(r.queues) if r.queues is not None else None,
                "queue_limits": json.dumps(r.queue_limits) if r.queue_limits is not None else None,
                "workflow_names": list(r.workflow_names),
                "member_timeout_sec": r.member_timeout_sec,
                "replace_epoch": r.replace_epoch,
                "now": self._now(),
            },
        )
        epoch: int | None = rows[0]["epoch"] if rows else None
        return epoch

    def heartbeat(self, executor_id: str, epoch: int | None, workflow_names: Sequence[str]) -> Beat | None:
        """One heartbeat of this incarnation; None: it was declared dead (or replaced)."""
        rows = self._execute(
            "heartbeat_executor",
            {"executor_id": executor_id, "epoch": epoch, "workflow_names": list(workflow_names), "now": self._now()},
        )
        return row_to(Beat, rows[0]) if rows else None

    def set_status(self, executor_id: str, epoch: int, status: MemberStatus) -> bool:
        """Announce ``leaving`` or ``dead`` for this incarnation; False if it is not the current one."""
        return bool(self._execute("set_executor_status", {"executor_id": executor_id, "epoch": epoch, "status": status}))
