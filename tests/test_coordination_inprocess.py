"""Leader election, heartbeat loss and takeover, driven in one process on a fake clock.

Each member is the coordination objects an executor builds (Membership and its Heartbeat, a
LeaderElector whose ticks run the LeaderDuties), on its own SystemDatabase pool of the test's
database. Nothing runs in the background: the test calls the one-step methods (``beat_once``,
``tick``, ``poll_once``) itself, and moves time with a :class:`FakeClock` that every member's
database and local lease clocks share. The liveness statements read its time as their "now", so
advancing it past the member timeout is exactly what a silent member looks like to the leader.
No sleeps (River's elector tests are the model): the only waits are for Postgres to end a
backend, on a condition.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest

from cluster.coordination.assignments import AssignmentPoller
from cluster.coordination.leader import LeaderElector
from cluster.coordination.membership import Heartbeat, MemberInfo, Membership
from cluster.coordination.sweeper import LeaderDuties, WorkMoved
from conftest import wait_until
from sysdb import SystemDatabase
from sysdb.clock import FakeClock
from sysdb.session import DedicatedSession
from sysdb.session_names import executor_session_name
from sysdb.workflow_rows import AcquiredWorkflow

MEMBER_TIMEOUT = 10.0
HEARTBEAT = 1.0
# As an executor wires it: the lease lasts a member timeout, the leader ticks every heartbeat.
LEASE_TTL = MEMBER_TIMEOUT


@dataclass
class Member:
    """One member's coordination objects, and what their callbacks were told."""

    db: SystemDatabase
    membership: Membership
    heartbeat: Heartbeat
    elector: LeaderElector
    duties: LeaderDuties
    moved: list[WorkMoved] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    rejoined: list[int] = field(default_factory=list)

    @property
    def executor_id(self) -> str:
        return self.membership.executor_id

    def live(self) -> None:
        """One heartbeat and one leader tick, as this member's loops would do them."""
        assert self.heartbeat.beat_once(), f"{self.executor_id}'s heartbeat failed"
        self.elector.tick()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def join(sys_url: str, clock: FakeClock) -> Iterator[Callable[[str], Member]]:
    """Registers a member on a pool of its own; everything is stopped at the end of the test."""
    members: list[Member] = []

    def start(executor_id: str) -> Member:
        # Named as an executor's pool (its heartbeat and leader sessions add their purpose).
        db = SystemDatabase(sys_url, pool_size=2, application_name=executor_session_name(os.getpid(), executor_id))
        db.coordination_clock = clock  # before the coordination objects read it
        db.open(run_migrations=False)
        membership = Membership(db, MemberInfo(executor_id, "app", "v1", None), lambda: ["w"], MEMBER_TIMEOUT)
        moved: list[WorkMoved] = []
        duties = LeaderDuties(db, executor_id, MEMBER_TIMEOUT, moved.append)
        heartbeat = Heartbeat(db, membership, HEARTBEAT, lambda reason: member.lost.append(reason),
                              lambda epoch: member.rejoined.append(epoch))
        member = Member(
            db=db,
            membership=membership,
            heartbeat=heartbeat,
            elector=LeaderElector(db, executor_id, lambda: membership.epoch, HEARTBEAT, LEASE_TTL, duties,
                                  member_timeout_sec=MEMBER_TIMEOUT, lease_seen=heartbeat.lease_seen),
            duties=duties,
            moved=moved,
        )
        membership.register()
        members.append(member)
        return member

    yield start
    for member in members:
        member.elector.stop()
        member.heartbeat.stop()
        member.db.close()


def advance(clock: FakeClock, seconds: float, *alive: Member) -> None:
    """Let ``seconds`` pass in which only the ``alive`` members beat and tick, about once a
    heartbeat interval as their loops do (a leader's idle tick renews only when it is due)."""
    steps = max(1, math.ceil(seconds / HEARTBEAT))
    for _ in range(steps):
        clock.advance(seconds / steps)
        for member in alive:
            member.live()


def leader_row(db: psycopg.Connection) -> tuple[str, int]:
    row = db.execute("SELECT executor_id, term FROM dbos.pgfleet_leader").fetchone()
    assert row is not None
    return row[0], row[1]


def member_status(db: psycopg.Connection, executor_id: str) -> str:
    return db.execute("SELECT status FROM dbos.pgfleet_executors WHERE executor_id = %s", (executor_id,)).fetchone()[0]


def end_backend(db: psycopg.Connection, application_name: str) -> None:
    """End a member's session from outside, as a dropped connection would (waits until it is gone)."""
    ended = db.execute(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
        (application_name,),
    ).fetchall()
    assert ended == [(True,)], ended


def insert_pending(db: psycopg.Connection, workflow_id: str, owner: str, *, name: str = "w", queue: str | None = None) -> int:
    """A PENDING workflow row owned by ``owner`` (what a running execution leaves); returns its epoch."""
    return db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, executor_id, owner_epoch, queue_name, created_at) "
        "VALUES (%s, 'PENDING', %s, %s, nextval('dbos.pgfleet_epoch_seq'), %s, 0) RETURNING owner_epoch",
        (workflow_id, name, owner, queue),
    ).fetchone()[0]


# -- leader election -----------------------------------------------------------------------------


def test_one_leader_is_elected_and_its_valid_lease_blocks_a_candidate_even_one_holding_the_lock(join, clock, db):
    a, b = join("a"), join("b")
    a.live()
    b.live()
    assert a.elector.is_leader and not b.elector.is_leader
    first_term = a.elector.term
    assert leader_row(db) == ("a", first_term)

    # A's session drops silently: its advisory lock is gone, its lease is not.
    end_backend(db, executor_session_name(os.getpid(), "a", "leader"))
    candidate = DedicatedSession(b.db, purpose="candidate-b")
    try:
        door = b.db.leadership.on(candidate)
        assert door.try_lock()  # the lock is free now...
        assert door.acquire("b", b.membership.epoch or 0, LEASE_TTL) is None  # ...the lease still holds
    finally:
        candidate.close()
    b.elector.tick()
    assert not b.elector.is_leader and leader_row(db) == ("a", first_term)

    # Nobody renews the lease (A's member heartbeat goes on on its own session): once the lease
    # has expired, B takes the next term, and A trusts its own no longer.
    clock.advance(LEASE_TTL + 1)
    assert a.heartbeat.beat_once()
    assert not a.elector.is_leader  # its own clock: trusted until start + TTL - one interval
    b.live()
    assert b.elector.is_leader and b.elector.term is not None and b.elector.term > first_term
    a.live()  # its renewal fails (the session is gone); it campaigns again and sees B's lease
    assert not a.elector.is_leader and a.elector.term is None
    a.live()
    assert not a.elector.is_leader
    assert leader_row(db) == ("b", b.elector.term)


def test_a_paused_leader_is_ended_once_its_lease_expires_and_its_stale_term_declares_nobody_dead(join, clock, db):
    a, b = join("a"), join("b")
    a.live()
    b.live()
    join("silent")  # registered, never beats
    stale_term = a.elector.term
    assert stale_term is not None

    # A pauses (no ticks, no renewals) while its session keeps holding the leader lock.
    advance(clock, MEMBER_TIMEOUT + 1, b)
    assert not b.elector.is_leader  # it found the lock held and ended the stale holder's backend
    # The stale leader's duties are fenced on its expired lease: nobody is declared dead.
    assert a.duties.declare_dead_members(stale_term) == 0
    assert member_status(db, "silent") == "active"

    def b_leads() -> bool:
        b.elector.tick()  # the lock moves once Postgres has ended A's backend
        return b.elector.is_leader

    wait_until(b_leads, "B to take the lock the stale leader held", timeout=10)
    assert b.elector.term is not None and b.elector.term > stale_term
    # Declared by B, in B's term: the silent member, and A (paused, so silent as well).
    assert member_status(db, "silent") == "dead" and member_status(db, "a") == "dead"
    log = db.execute("SELECT term, executor_id, action FROM dbos.pgfleet_leader_log ORDER BY id").fetchall()
    assert log == [(b.elector.term, "b", "declare_dead")] * 2
    a.elector.tick()  # A wakes up: its renewal fails, it is no leader
    assert not a.elector.is_leader and a.elector.term is None


# -- heartbeat loss -------------------------------------------------------------------------------


def test_a_member_silent_past_the_timeout_is_declared_dead_and_its_next_beat_finds_it_lost(join, clock, db):
    a, b = join("a"), join("b")
    a.live()
    b.live()
    old_epoch = b.membership.epoch

    advance(clock, MEMBER_TIMEOUT / 2 + 1, a)  # B is silent, but not for long enough
    assert member_status(db, "b") == "active" and b.heartbeat.lease_valid()
    advance(clock, MEMBER_TIMEOUT / 2 + 1, a)  # now it has been silent past the member timeout
    assert member_status(db, "b") == "dead"
    assert db.execute("SELECT term, action FROM dbos.pgfleet_leader_log").fetchall() == [(a.elector.term, "declare_dead")]

    # B's next beat learns it was declared dead: it stops executing, its local lease is gone.
    assert not b.heartbeat.beat_once()
    assert b.lost == ["declared dead by the cluster"] and not b.heartbeat.lease_valid()
    # The beat after that rejoins under a new epoch, with a fresh lease.
    assert b.heartbeat.beat_once()
    assert b.rejoined == [b.membership.epoch] and b.membership.epoch != old_epoch
    assert member_status(db, "b") == "active" and b.heartbeat.lease_valid()


def test_a_silent_members_local_lease_ends_before_the_leader_can_declare_it_dead(join, clock):
    a, b = join("a"), join("b")
    a.live()
    b.live()
    advance(clock, b.heartbeat.fence_after_sec + 0.1, a)  # member timeout less one interval
    # B fenced itself on its own clock, before the timeout: nobody declared it dead yet.
    assert not b.heartbeat.lease_valid() and b.lost and b.lost[0].startswith("no successful heartbeat")
    assert a.moved == [] and a.duties.declare_dead_members(a.elector.term or 0) == 0


# -- takeover -------------------------------------------------------------------------------------


def test_a_dead_members_pending_workflows_move_to_a_live_member_or_back_to_their_queue(join, clock, db):
    a, b = join("a"), join("b")
    a.live()
    b.live()
    run_epoch = insert_pending(db, "wf-run", "b")
    insert_pending(db, "wf-queued", "b", queue="q")
    insert_pending(db, "wf-nobody-runs", "b", name="unregistered")

    advance(clock, MEMBER_TIMEOUT / 2 + 1, a)
    advance(clock, MEMBER_TIMEOUT / 2 + 1, a)  # B declared dead, its work taken over in that tick

    rows = dict(
        (r[0], r[1:]) for r in db.execute("SELECT workflow_uuid, status, executor_id, owner_epoch FROM dbos.workflow_status")
    )
    assert rows["wf-run"][:2] == ("PENDING", "a") and rows["wf-run"][2] != run_epoch
    assert rows["wf-queued"] == ("ENQUEUED", None, None)
    assert rows["wf-nobody-runs"][:2] == ("PENDING", "b")  # waits for a member that can run it
    assert a.moved == [WorkMoved(queues=frozenset({"q"}), assignees=frozenset({"a"}), taken_over=2)]
    takeovers = db.execute("SELECT workflow_uuid, to_executor_id, requeued_to, leader_term FROM dbos.pgfleet_takeovers ORDER BY 1").fetchall()
    assert takeovers == [("wf-queued", None, "q", a.elector.term), ("wf-run", "a", None, a.elector.term)]
    # Each remembers when its lost owner was last heard from: B's last heartbeat, whatever its
    # member row says later (a restarted slot overwrites it).
    (last_beat,) = db.execute("SELECT last_heartbeat FROM dbos.pgfleet_executors WHERE executor_id = 'b'").fetchone()
    seen = db.execute("SELECT DISTINCT owner_last_seen FROM dbos.pgfleet_takeovers").fetchall()
    assert seen == [(last_beat,)]

    # The assignee's poller picks the assigned row up, under the membership it read it in.
    picked: list[AcquiredWorkflow] = []
    poller = AssignmentPoller(a.db, "a", lambda: [], picked.extend, member_epoch=lambda: a.membership.epoch)
    assert poller.poll_once() == 1
    assert [(w.workflow_uuid, w.owner_epoch, w.acquired_member_epoch) for w in picked] == [
        ("wf-run", rows["wf-run"][2], a.membership.epoch)
    ]


def test_a_takeover_under_a_stale_term_moves_nothing(join, clock, db):
    from cluster.coordination.sweeper import take_over_member

    a, b = join("a"), join("b")
    a.live()
    b.live()
    insert_pending(db, "wf-run", "b")
    db.execute("UPDATE dbos.pgfleet_executors SET status = 'dead' WHERE executor_id = 'b'")
    stale_term = a.elector.term
    clock.advance(LEASE_TTL + 1)  # A's lease expires unrenewed; A itself stays a live member
    assert a.heartbeat.beat_once()

    def take_over(term: int | None) -> list[str]:
        moved = take_over_member(a.db, "b", b.membership.epoch or 0, by_executor_id="a", member_timeout_sec=MEMBER_TIMEOUT, term=term)
        return [w.workflow_uuid for w in moved]

    assert take_over(stale_term) == []
    assert db.execute("SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid = 'wf-run'").fetchone() == ("b",)
    # Without a term (a leaving member handing its own work over, a supervisor) it moves.
    assert take_over(None) == ["wf-run"]


# -- the leader's idle cost (issue #14) ----------------------------------------------------------


def lease_expires_in(db: psycopg.Connection, clock: FakeClock) -> float:
    """Seconds from the clock's "now" to the lease's expiry (what the last renewal set)."""
    (expires_at,) = db.execute("SELECT expires_at FROM dbos.pgfleet_leader").fetchone()
    return round((expires_at - clock.database_now()).total_seconds(), 3)


def test_a_leader_that_lost_its_lease_declares_nobody_dead_in_its_merged_tick(join, clock, db):
    a = join("a")
    a.live()
    join("silent")  # registered, never beats
    term = a.elector.term
    assert term is not None

    # Its lease expired unrenewed (A paused): the renewal is refused, and with it the declaration.
    clock.advance(LEASE_TTL + 1)  # also past the silent member's timeout
    assert a.heartbeat.beat_once()
    assert a.db.leadership.renew_and_mark_dead(term, "a", LEASE_TTL, MEMBER_TIMEOUT) is None
    assert member_status(db, "silent") == "active"
    # Its lease moved on to another term (a new leader): the same.
    db.execute("UPDATE dbos.pgfleet_leader SET term = term + 1, expires_at = %s",
               (clock.database_now() + datetime.timedelta(seconds=LEASE_TTL),))
    assert a.db.leadership.renew_and_mark_dead(term, "a", LEASE_TTL, MEMBER_TIMEOUT) is None
    a.elector.tick()
    assert a.elector.term is None and not a.elector.is_leader
    assert member_status(db, "silent") == "active"
    assert db.execute("SELECT count(*) FROM dbos.pgfleet_leader_log").fetchone() == (0,)


def test_idle_leader_ticks_send_nothing_until_a_renewal_or_a_death_is_due(join, clock, db):
    a, b = join("a"), join("b")
    a.live()
    b.live()
    assert a.elector.is_leader and lease_expires_in(db, clock) == LEASE_TTL
    seen = []
    for second in range(1, 14):
        clock.advance(1)
        assert a.heartbeat.beat_once()
        if second <= 2:  # then B falls silent: its last beat is at second 2
            assert b.heartbeat.beat_once()
        a.elector.tick()
        assert a.elector.is_leader
        seen.append((second, lease_expires_in(db, clock), member_status(db, "b")))
    trust = LEASE_TTL - HEARTBEAT  # from each renewal; renewed once 1.5 intervals of it are left
    renewed_at = 8
    assert trust - renewed_at <= 1.5 * HEARTBEAT < trust - (renewed_at - 1)
    expected = [(s, LEASE_TTL - s, "active") for s in range(1, renewed_at)]  # nothing sent
    expected += [(s, LEASE_TTL - (s - renewed_at), "active") for s in range(renewed_at, 12)]  # renewed at 8
    # B's deadline (last beat + timeout) comes at 12: looked at (renewing too), not past yet;
    # at 13 it is, and B is declared dead, within a tick of its deadline as before.
    expected += [(12, LEASE_TTL, "active"), (13, LEASE_TTL, "dead")]
    assert seen == expected
    assert db.execute("SELECT term, action FROM dbos.pgfleet_leader_log").fetchall() == [(a.elector.term, "declare_dead")]


def test_a_follower_reads_the_lease_from_its_heartbeat_and_takes_over_at_once_after_a_step_down(join, clock, db):
    a, b = join("a"), join("b")
    a.live()
    advance(clock, 2 * LEASE_TTL, a, b)  # longer than a lease: a follower reading it would have
    assert a.elector.is_leader and not b.elector.is_leader
    seen = b.heartbeat.lease_seen()
    assert seen is not None and seen[0] == "a" and seen[1] > clock.monotonic()
    b_leader_session = executor_session_name(os.getpid(), "b", "leader")
    sessions = db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (b_leader_session,))
    assert sessions.fetchone() == (0,)  # B never needed its leader session: no statement of its own

    a.elector.step_down("test")  # the lease ends now: B's next beat sees no lease, and B campaigns
    clock.advance(HEARTBEAT)
    b.live()
    assert b.heartbeat.lease_seen() is None
    assert b.elector.is_leader and leader_row(db) == ("b", b.elector.term)


def test_the_housekeeping_statement_is_fenced_and_does_all_three_chores_in_one_round_trip(join, clock, db):
    a, b = join("a"), join("b")
    a.live()
    b.live()
    term = a.elector.term
    assert term is not None
    db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, delay_until_epoch_ms, deduplication_id, "
        "is_debounced, created_at) VALUES ('wf-due', 'DELAYED', 'w', 'q', 0, 'key', TRUE, 0), "
        "('wf-later', 'DELAYED', 'w', 'q', 99999999999999, NULL, FALSE, 0)"
    )
    db.execute("INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, workflow_deadline_epoch_ms, created_at) "
               "VALUES ('wf-late', 'ENQUEUED', 'w', 'q', 1, 0)")
    insert_pending(db, "wf-orphan", "b")
    db.execute("UPDATE dbos.pgfleet_executors SET status = 'dead' WHERE executor_id = 'b'")

    def statuses() -> dict[str, tuple[str, str | None]]:
        rows = db.execute("SELECT workflow_uuid, status, deduplication_id FROM dbos.workflow_status").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    before = statuses()
    found = a.db.takeover.housekeeping(term + 1, "a")  # not its term: nothing done, nothing listed
    assert (found.promoted_queues, found.cancelled, found.dead_with_work) == ((), (), ())
    assert statuses() == before
    found = a.db.takeover.housekeeping(term, "a")
    assert found.promoted_queues == ("q",) and found.cancelled == ("wf-late",)
    assert [m.executor_id for m in found.dead_with_work] == ["b"]
    assert statuses() == {**before, "wf-due": ("ENQUEUED", None), "wf-late": ("CANCELLED", None)}


def test_duties_that_ran_long_renew_the_lease_before_the_next_tick(join, clock, db):
    a = join("a")
    trust = LEASE_TTL - HEARTBEAT

    def slow_duties(term: int, dead: object) -> None:
        clock.advance(trust - HEARTBEAT / 2)  # leaves half an interval of trust: the next tick would be late

    slow = LeaderElector(a.db, "a", lambda: a.membership.epoch, HEARTBEAT, LEASE_TTL, slow_duties, member_timeout_sec=MEMBER_TIMEOUT)
    try:
        assert a.heartbeat.beat_once()
        slow.tick()  # elected (the lease set from now), then the duties take almost all the trust
        assert slow.is_leader and lease_expires_in(db, clock) == LEASE_TTL  # renewed after them
    finally:
        slow.stop()
