"""Takeover of dead members' workflows, and the leader's other housekeeping.

:func:`take_over_member` moves a dead (or leaving) member's PENDING workflows in batches, each
batch one compare-and-set statement (``take_over_member_workflows.sql``): queued workflows go
back to their queue, the others to live members that can run them, each with a fresh epoch.
Any member may call it (a leaving member hands its own work over; a supervisor fences a dead
child); two sweepers of one member never move a workflow twice.

:class:`LeaderDuties` is what the leader does every tick: declare silent members dead and take
their work over, move due delayed workflows to ENQUEUED, cancel workflows past their deadline,
and whatever extra duties the runtime adds (scheduled-workflow ticks). Every statement is fenced
on the leader's lease and term.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sysdb import SystemDatabase, now_ms
from sysdb.channels import ASSIGNMENT_PAYLOAD_PREFIX, QUEUE_CHANNEL
from sysdb.logs import get_logger

__all__ = ["take_over_member", "announce_moved", "LeaderDuties", "TAKEOVER_BATCH_SIZE"]

log = get_logger("pgfleet.cluster")

# Workflows moved per statement: large enough to empty a member quickly, small enough that a
# batch's row locks are held only briefly.
TAKEOVER_BATCH_SIZE = 200
# Declaring silent members dead runs every leader tick (it bounds takeover latency); the rest
# of the housekeeping runs this often, or at once after a member was declared dead. Claimers
# start due delayed workflows themselves and owners enforce their own deadlines at every
# step, so these are backstops.
HOUSEKEEPING_INTERVAL_SEC = 5.0


def take_over_member(
    db: SystemDatabase,
    dead_executor_id: str,
    dead_epoch: int,
    *,
    by_executor_id: str,
    member_timeout_sec: float,
    term: int | None = None,
) -> list[dict[str, Any]]:
    """Move every PENDING workflow of a dead/leaving member; returns the moved rows."""
    moved: list[dict[str, Any]] = []
    while True:
        batch = db.execute(
            "take_over_member_workflows",
            {
                "dead_executor_id": dead_executor_id,
                "dead_epoch": dead_epoch,
                "by_executor_id": by_executor_id,
                "term": term,
                "member_timeout_sec": member_timeout_sec,
                "batch_size": TAKEOVER_BATCH_SIZE,
                "now_ms": now_ms(),
            },
        )
        moved.extend(batch)
        if len(batch) < TAKEOVER_BATCH_SIZE:
            break
    if moved:
        log.info(
            "took over workflows of a dead member",
            dead_executor_id=dead_executor_id,
            dead_epoch=dead_epoch,
            count=len(moved),
            requeued=sum(1 for r in moved if r["queue_name"] is not None),
        )
    return moved


def announce_moved(db: SystemDatabase, moved: list[dict[str, Any]]) -> None:
    """Wake the claimers of the queues that got work back and the members that were assigned
    some (for a sweeper that runs no claimer of its own, such as the supervisor)."""
    for queue_name in {r["queue_name"] for r in moved if r.get("queue_name")}:
        db.notify(QUEUE_CHANNEL, queue_name)
    for executor_id in {r["to_executor_id"] for r in moved if r.get("to_executor_id")}:
        db.notify(QUEUE_CHANNEL, ASSIGNMENT_PAYLOAD_PREFIX + executor_id)


class LeaderDuties:
    """The leader's work for one tick, given its term."""

    def __init__(
        self,
        db: SystemDatabase,
        executor_id: str,
        member_timeout_sec: float,
        on_moved: Callable[[list[dict[str, Any]]], None],
        extra_duties: list[Callable[[int], None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._extra_duties = list(extra_duties or [])
        self._clock = clock
        self._next_housekeeping = 0.0
        self._executor_id = executor_id
        self._member_timeout_sec = member_timeout_sec
        self._on_moved = on_moved

    def __call__(self, term: int) -> None:
        newly_dead = self.declare_dead_members(term)
        if newly_dead or self._clock() >= self._next_housekeeping:
            self._next_housekeeping = self._clock() + HOUSEKEEPING_INTERVAL_SEC
            self.take_over_dead_members(term)
            self.promote_delayed(term)
            self.cancel_past_deadline(term)
        for duty in self._extra_duties:  # e.g. the runtime's scheduled-workflow ticks
            duty(term)

    def _log(self, term: int, action: str, detail: dict[str, Any]) -> None:
        self._db.execute(
            "log_leader_action",
            {"term": term, "executor_id": self._executor_id, "action": action, "detail": json.dumps(detail)},
        )

    def declare_dead_members(self, term: int) -> int:
        """Mark members silent for the member timeout dead; returns how many."""
        rows = self._db.execute(
            "mark_dead_members",
            {"term": term, "leader_id": self._executor_id, "member_timeout_sec": self._member_timeout_sec},
        )
        for row in rows:
            log.warning("member declared dead", dead_executor_id=row["executor_id"], epoch=row["epoch"])
            self._log(term, "declare_dead", {"executor_id": row["executor_id"], "epoch": row["epoch"]})
        return len(rows)

    def take_over_dead_members(self, term: int) -> int:
        """Move the PENDING workflows of every dead member that still has some."""
        total = 0
        for member in self._db.execute("list_dead_members_with_work"):
            moved = take_over_member(
                self._db,
                member["executor_id"],
                member["epoch"],
                by_executor_id=self._executor_id,
                member_timeout_sec=self._member_timeout_sec,
                term=term,
            )
            if moved:
                total += len(moved)
                self._log(term, "takeover", {"executor_id": member["executor_id"], "epoch": member["epoch"], "workflows": len(moved)})
                self._on_moved(moved)
        return total

    def promote_delayed(self, term: int) -> None:
        rows = self._db.execute("promote_delayed_workflows", {"term": term, "leader_id": self._executor_id})
        if rows:
            self._on_moved([{"queue_name": r["queue_name"], "to_executor_id": None} for r in rows])

    def cancel_past_deadline(self, term: int) -> None:
        rows = self._db.execute("cancel_past_deadline", {"term": term, "leader_id": self._executor_id})
        if rows:
            self._log(term, "cancel_past_deadline", {"workflows": [r["workflow_uuid"] for r in rows]})
