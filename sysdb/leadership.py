"""Leadership: the leader advisory lock, the lease row with its term, and the leader's log.

The lock is a session advisory lock, so its statements run on the candidate's own session
(``db.leadership.on(session)``). Every lease comparison is on the database clock (or the
injected clock's time in tests): renewal matches holder, term and an unexpired lease; a new
term is taken only once the previous lease has expired.
"""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .door import Door, row_to
from .takeover import MemberIncarnation

__all__ = ["Leadership", "Lease", "Renewal", "LeaderAction", "LEADER_LOCK_KEY"]

# The session advisory lock every candidate tries to take (an arbitrary constant).
LEADER_LOCK_KEY = 0x7067_666C_6C64  # "pgflld"


class LeaderAction(enum.Enum):
    """What the leader's log records it did (``dbos.pgfleet_leader_log.action``)."""

    DECLARE_DEAD = "declare_dead"
    TAKEOVER = "takeover"
    CANCEL_PAST_DEADLINE = "cancel_past_deadline"
    PRUNE = "prune"


@dataclass(frozen=True)
class Lease:
    """The leader lease row, judged on the database clock when it was read."""

    term: int
    executor_id: str
    executor_epoch: int
    backend_pid: int | None
    acquired_at: datetime.datetime
    expires_at: datetime.datetime
    valid: bool
    remaining_sec: float


@dataclass(frozen=True)
class Renewal:
    """A renewed lease and what the same round trip found: the members it declared dead, and in
    how many seconds the next one could be (None: no member is counted alive)."""

    dead: tuple[MemberIncarnation, ...]
    next_death_sec: float | None


class Leadership(Door):
    """The leader lock, lease and log."""

    def current(self) -> Lease | None:
        """The lease as it stands (valid or expired), or None before any leader was elected."""
        rows = self._execute("get_leader", {"now": self._now()})
        return row_to(Lease, rows[0]) if rows else None

    def try_lock(self) -> bool:
        """Take the leader advisory lock on this session if nobody holds it."""
        rows = self._execute("try_leader_lock", {"lock_key": LEADER_LOCK_KEY})
        return bool(rows and rows[0]["locked"])

    def release_lock(self) -> None:
        """Give the leader advisory lock up (conceding, or shutting down)."""
        self._execute("release_leader_lock", {"lock_key": LEADER_LOCK_KEY})

    def end_stale_holder(self) -> None:
        """End the backend of a leader whose lease expired but whose session still holds the lock."""
        self._execute("terminate_stale_leader", {"lock_key": LEADER_LOCK_KEY, "now": self._now()})

    def acquire(self, executor_id: str, executor_epoch: int, ttl_sec: float) -> int | None:
        """Take the lease with a new term once the previous one has expired; returns the term,
        or None while another lease is still valid."""
        rows = self._execute(
            "acquire_leader_lease",
            {"executor_id": executor_id, "executor_epoch": executor_epoch, "ttl_sec": ttl_sec, "now": self._now()},
        )
        term: int | None = rows[0]["term"] if rows else None
        return term

    def renew(self, term: int, executor_id: str, ttl_sec: float) -> bool:
        """Extend this holder's unexpired lease of ``term``; False: the lease is lost."""
        rows = self._execute(
            "renew_leader_lease", {"term": term, "executor_id": executor_id, "ttl_sec": ttl_sec, "now": self._now()}
        )
        return bool(rows)

    def renew_and_mark_dead(self, term: int, executor_id: str, ttl_sec: float, member_timeout_sec: float) -> Renewal | None:
        """The leader's tick in one statement: :meth:`renew`, and only if that took, declare dead
        every member silent for ``member_timeout_sec``. None: the lease is lost (nobody was
        declared dead)."""
        rows = self._execute(
            "renew_lease_and_mark_dead",
            {"term": term, "executor_id": executor_id, "ttl_sec": ttl_sec, "member_timeout_sec": member_timeout_sec, "now": self._now()},
        )
        if not rows:
            return None
        dead = tuple(MemberIncarnation(row["executor_id"], row["epoch"]) for row in rows if row["executor_id"] is not None)
        return Renewal(dead, rows[0]["next_death_sec"])

    def release(self, term: int, executor_id: str) -> None:
        """End this holder's lease of ``term`` now, so the next leader need not wait for it."""
        self._execute("release_leader_lease", {"term": term, "executor_id": executor_id, "now": self._now()})

    def log_action(self, term: int, executor_id: str, action: LeaderAction, detail: Mapping[str, Any]) -> bool:
        """Record what the leader did, only while its lease is valid; False when it was not."""
        rows = self._execute(
            "log_leader_action",
            {"term": term, "executor_id": executor_id, "action": action.value, "detail": json.dumps(detail), "now": self._now()},
        )
        return bool(rows)
