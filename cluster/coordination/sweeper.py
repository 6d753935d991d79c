"""Takeover of dead members' workflows, and the leader's other housekeeping.

:func:`take_over_member` moves a dead (or leaving) member's PENDING workflows in batches, each
batch one compare-and-set statement (``take_over_member_workflows.sql``): queued workflows go
back to their queue, the others to live members that can run them, each with a fresh epoch.
Any member may call it (a leaving member hands its own work over; a supervisor fences a dead
child); two sweepers of one member never move a workflow twice.

:class:`LeaderDuties` is what the leader does every tick: record the members its elector's
renewal declared dead and take their work over, move due delayed workflows to ENQUEUED, cancel
workflows past their deadline (one statement every few seconds), and whatever extra duties the
runtime adds (scheduled-workflow ticks). Every statement is fenced on the leader's lease and term.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sysdb import SystemDatabase
from sysdb.leadership import LeaderAction
from sysdb.logs import get_logger
from sysdb.takeover import MemberIncarnation, MovedWorkflow

__all__ = ["take_over_member", "announce_moved", "WorkMoved", "LeaderDuties", "TAKEOVER_BATCH_SIZE"]

log = get_logger("pgfleet.cluster")

# Workflows moved per statement: large enough to empty a member quickly, small enough that a
# batch's row locks are held only briefly.
TAKEOVER_BATCH_SIZE = 200
# Declaring silent members dead runs at every leader tick where one can have died (it bounds
# takeover latency; the elector's renewal does it in the same statement); the rest of the
# housekeeping runs this often, or at once after a member was declared dead. Claimers
# start due delayed workflows themselves and owners enforce their own deadlines at every
# step, so these are backstops.
HOUSEKEEPING_INTERVAL_SEC = 5.0


@dataclass(frozen=True)
class WorkMoved:
    """Where work went, and so whom to wake: queues that got work (back), members that were
    given workflows, and how many workflows a takeover moved."""

    queues: frozenset[str] = frozenset()
    assignees: frozenset[str] = frozenset()
    taken_over: int = 0

    @staticmethod
    def by_takeover(moved: Iterable[MovedWorkflow]) -> WorkMoved:
        rows = list(moved)
        return WorkMoved(
            queues=frozenset(r.queue_name for r in rows if r.queue_name),
            assignees=frozenset(r.to_executor_id for r in rows if r.to_executor_id),
            taken_over=len(rows),
        )


def take_over_member(
    db: SystemDatabase,
    dead_executor_id: str,
    dead_epoch: int,
    *,
    by_executor_id: str,
    member_timeout_sec: float,
    term: int | None = None,
) -> list[MovedWorkflow]:
    """Move every PENDING workflow of a dead/leaving member; returns the moved rows."""
    dead = MemberIncarnation(dead_executor_id, dead_epoch)
    moved: list[MovedWorkflow] = []
    while True:
        batch = db.takeover.move_member_workflows(
            dead, by_executor_id=by_executor_id, member_timeout_sec=member_timeout_sec, term=term, batch_size=TAKEOVER_BATCH_SIZE
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
            requeued=sum(1 for r in moved if r.queue_name is not None),
        )
    return moved


def announce_moved(db: SystemDatabase, moved: WorkMoved) -> None:
    """Wake the claimers of the queues that got work back and the members that were assigned
    some (for a sweeper that runs no claimer of its own, such as the supervisor)."""
    for queue_name in moved.queues:
        db.claims.wake_queue(queue_name)
    for executor_id in moved.assignees:
        db.claims.wake_member(executor_id)


class LeaderDuties:
    """The leader's work for one tick, given its term."""

    def __init__(
        self,
        db: SystemDatabase,
        executor_id: str,
        member_timeout_sec: float,
        on_moved: Callable[[WorkMoved], None],
        extra_duties: list[Callable[[int], None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` (monotonic seconds) paces the housekeeping; by default the database's
        ``coordination_clock``."""
        self._db = db
        self._extra_duties = list(extra_duties or [])
        self._clock = clock if clock is not None else db.coordination_clock.monotonic
        self._next_housekeeping = 0.0
        self._executor_id = executor_id
        self._member_timeout_sec = member_timeout_sec
        self._on_moved = on_moved

    def __call__(self, term: int, dead: Sequence[MemberIncarnation] | None = None) -> None:
        """One tick. ``dead``: the members the elector declared dead in this tick's renewal (it
        checks in the same statement, when one can have died); None: check here."""
        newly_dead = self.declare_dead_members(term) if dead is None else self.record_dead(term, dead)
        if newly_dead or self._clock() >= self._next_housekeeping:
            self._next_housekeeping = self._clock() + HOUSEKEEPING_INTERVAL_SEC
            self.housekeeping(term)
        for duty in self._extra_duties:  # e.g. the runtime's scheduled-workflow ticks
            duty(term)

    def declare_dead_members(self, term: int) -> int:
        """Mark members silent for the member timeout dead; returns how many."""
        return self.record_dead(term, self._db.takeover.mark_dead_members(term, self._executor_id, self._member_timeout_sec))

    def record_dead(self, term: int, dead: Sequence[MemberIncarnation]) -> int:
        """Log the members declared dead (in the leader's log too); returns how many."""
        for member in dead:
            log.warning("member declared dead", dead_executor_id=member.executor_id, epoch=member.epoch)
            self._db.leadership.log_action(
                term, self._executor_id, LeaderAction.DECLARE_DEAD, {"executor_id": member.executor_id, "epoch": member.epoch}
            )
        return len(dead)

    def housekeeping(self, term: int) -> None:
        """One round trip: release due delayed workflows, cancel those past their deadline, and
        list the dead members that still own work, whose work is then taken over."""
        found = self._db.takeover.housekeeping(term, self._executor_id)
        self.take_over_dead_members(term, found.dead_with_work)
        queues = frozenset(q for q in found.promoted_queues if q)
        if queues:
            self._on_moved(WorkMoved(queues=queues))
        if found.cancelled:
            self._db.leadership.log_action(
                term, self._executor_id, LeaderAction.CANCEL_PAST_DEADLINE, {"workflows": list(found.cancelled)}
            )

    def take_over_dead_members(self, term: int, members: Iterable[MemberIncarnation]) -> int:
        """Move the PENDING workflows of these dead members (each one compare-and-set per batch)."""
        total = 0
        for member in members:
            moved = take_over_member(
                self._db,
                member.executor_id,
                member.epoch,
                by_executor_id=self._executor_id,
                member_timeout_sec=self._member_timeout_sec,
                term=term,
            )
            if moved:
                total += len(moved)
                self._db.leadership.log_action(
                    term, self._executor_id, LeaderAction.TAKEOVER, {"executor_id": member.executor_id, "epoch": member.epoch, "workflows": len(moved)}
                )
                self._on_moved(WorkMoved.by_takeover(moved))
        return total
