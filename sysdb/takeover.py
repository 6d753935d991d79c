"""Takeover: declaring silent members dead, moving a dead member's workflows (compare-and-set,
in batches), returning an executor's queued work at its start, the takeover log, and the
leader's deadline sweep.

Every leader statement is fenced on the leader's lease (holder, term, not expired) on the
database clock (or the injected clock's time in tests): a stale leader changes nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from .door import Door, row_to
from .timestamps import now_ms

__all__ = ["Takeover", "MemberIncarnation", "MovedWorkflow", "TakeoverRecord", "Housekeeping"]


@dataclass(frozen=True)
class MemberIncarnation:
    """One incarnation of a member: its executor id and the epoch it registered with."""

    executor_id: str
    epoch: int


@dataclass(frozen=True)
class MovedWorkflow:
    """A workflow a takeover moved: to a live member (``to_executor_id``, a fresh epoch) or
    back to its queue (``to_executor_id`` None)."""

    workflow_uuid: str
    name: str
    queue_name: str | None
    to_executor_id: str | None
    to_epoch: int | None
    recovery_attempts: int


@dataclass(frozen=True)
class TakeoverRecord:
    """One line of the takeover log."""

    at: datetime.datetime
    workflow_uuid: str
    from_executor_id: str
    from_epoch: int | None
    to_executor_id: str | None
    to_epoch: int | None
    requeued_to: str | None
    by_executor_id: str
    leader_term: int | None


@dataclass(frozen=True)
class Housekeeping:
    """What one round of the leader's housekeeping did and found: the queue of each delayed
    workflow it released (None for one of no queue), the workflows it cancelled past their
    deadline, and the dead members that still own PENDING workflows."""

    promoted_queues: tuple[str | None, ...]
    cancelled: tuple[str, ...]
    dead_with_work: tuple[MemberIncarnation, ...]


class Takeover(Door):
    """Death, takeover and the leader's sweeps."""

    def mark_dead_members(self, term: int, leader_id: str, member_timeout_sec: float) -> list[MemberIncarnation]:
        """Declare dead every member silent for ``member_timeout_sec`` (skipping one whose own
        claim holds its row), while ``leader_id`` holds the lease of ``term``."""
        rows = self._execute(
            "mark_dead_members",
            {"term": term, "leader_id": leader_id, "member_timeout_sec": member_timeout_sec, "now": self._now()},
        )
        return [row_to(MemberIncarnation, row) for row in rows]

    def move_member_workflows(
        self,
        dead: MemberIncarnation,
        *,
        by_executor_id: str,
        member_timeout_sec: float,
        term: int | None,
        batch_size: int,
    ) -> list[MovedWorkflow]:
        """Move one batch of a dead or leaving incarnation's PENDING workflows, as one
        compare-and-set; with a ``term``, only while ``by_executor_id`` holds that lease."""
        rows = self._execute(
            "take_over_member_workflows",
            {
                "dead_executor_id": dead.executor_id,
                "dead_epoch": dead.epoch,
                "by_executor_id": by_executor_id,
                "term": term,
                "member_timeout_sec": member_timeout_sec,
                "batch_size": batch_size,
                "now_ms": now_ms(),
                "now": self._now(),
            },
        )
        return [row_to(MovedWorkflow, row) for row in rows]

    def requeue_executor_workflows(self, executor_id: str) -> list[str]:
        """At an executor's start: its unfinished queued workflows go back to their queues;
        returns their ids."""
        rows = self._execute("requeue_executor_workflows", {"executor_id": executor_id, "now_ms": now_ms()})
        return [row["workflow_uuid"] for row in rows]

    def recent(self, limit: int) -> list[TakeoverRecord]:
        """The latest ``limit`` takeovers, newest first."""
        return [row_to(TakeoverRecord, row) for row in self._execute("recent_takeovers", {"limit": limit})]

    def housekeeping(self, term: int, leader_id: str) -> Housekeeping:
        """The leader's housekeeping in one fenced statement, while ``leader_id`` holds the lease
        of ``term``: due delayed workflows go to ENQUEUED, workflows past their deadline are
        cancelled, and the dead members that still own PENDING workflows are listed."""
        rows = self._execute("leader_housekeeping", {"term": term, "leader_id": leader_id, "now": self._now()})
        return Housekeeping(
            promoted_queues=tuple(row["queue_name"] for row in rows if row["kind"] == "promoted"),
            cancelled=tuple(row["id"] for row in rows if row["kind"] == "cancelled"),
            dead_with_work=tuple(MemberIncarnation(row["id"], row["epoch"]) for row in rows if row["kind"] == "dead"),
        )
