"""Database-backed schedules (``DBOS.create_schedule``): each tick fires once across the fleet,
from the leader, and a new leader carries on without a missed or a doubled tick.

The fleet tests drive two members' coordination objects in one process on a fake clock (as
tests/test_coordination_inprocess.py does), with the schedule ticker as the leader's extra duty
reading the same fake clock: nothing waits for a wall-clock tick. The last tests run a launched
DBOS, whose leader fires a schedule every second.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from cluster.coordination.leader import LeaderElector
from cluster.coordination.membership import Heartbeat, MemberInfo, Membership
from cluster.coordination.sweeper import LeaderDuties
from conftest import wait_until
from runtime import DBOS, DBOSClient, DBOSException
from runtime.scheduler import WorkflowScheduleTicker
from runtime.schedules import new_schedule
from sysdb import SystemDatabase
from sysdb.clock import FakeClock

MEMBER_TIMEOUT = 10.0
HEARTBEAT = 1.0
EVERY_SECOND = "* * * * * *"


@dataclass
class Member:
    db: SystemDatabase
    heartbeat: Heartbeat
    elector: LeaderElector
    ticker: WorkflowScheduleTicker

    def live(self) -> None:
        assert self.heartbeat.beat_once()
        self.elector.tick()


@pytest.fixture
def clock() -> FakeClock:
    # Half a second past a whole second, so that no tick falls on a step of the test.
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=500_000)
    return FakeClock(start=now)


@pytest.fixture
def join(sys_url: str, clock: FakeClock) -> Iterator[Callable[[str], Member]]:
    members: list[Member] = []

    def start(executor_id: str) -> Member:
        db = SystemDatabase(sys_url, pool_size=2, application_name=f"pgfleet-test-{executor_id}")
        db.coordination_clock = clock
        db.open(run_migrations=False)
        membership = Membership(db, MemberInfo(executor_id, "app", "v1", None), lambda: ["w"], MEMBER_TIMEOUT)
        ticker = WorkflowScheduleTicker(db, executor_id, "app", now=clock.database_now)
        duties = LeaderDuties(db, executor_id, MEMBER_TIMEOUT, lambda moved: None, extra_duties=[ticker])
        member = Member(
            db=db,
            heartbeat=Heartbeat(db, membership, HEARTBEAT, lambda reason: None, lambda epoch: None),
            elector=LeaderElector(db, executor_id, lambda: membership.epoch, HEARTBEAT, MEMBER_TIMEOUT, duties),
            ticker=ticker,
        )
        membership.register()
        members.append(member)
        return member

    yield start
    for member in members:
        member.elector.stop()
        member.heartbeat.stop()
        member.db.close()


def advance(clock: FakeClock, seconds: int, *alive: Member) -> None:
    """``seconds`` one by one, in each of which only the ``alive`` members beat and tick."""
    for _ in range(seconds):
        clock.advance(1)
        for member in alive:
            member.live()


def create(db: SystemDatabase, name: str, *, automatic_backfill: bool = False) -> None:
    db.workflow_schedules.create(new_schedule(
        schedule_name=name, workflow_name="w", workflow_class_name=None, schedule=EVERY_SECOND, context={"n": name},
        automatic_backfill=automatic_backfill, cron_timezone=None, queue_name=None, application_name="app",
    ))


def fired(db: psycopg.Connection, name: str) -> list[str]:
    rows = db.execute(
        "SELECT workflow_uuid FROM dbos.workflow_status WHERE schedule_name = %s ORDER BY workflow_uuid", (name,)
    ).fetchall()
    return [r[0] for r in rows]


def expected(name: str, after: datetime.datetime, until: datetime.datetime) -> list[str]:
    """DBOS's ids of every whole-second tick in ``(after, until]``."""
    tick = after.replace(microsecond=0) + datetime.timedelta(seconds=1)
    ids = []
    while tick <= until:
        ids.append(f"sched-{name}-{tick.isoformat()}")
        tick += datetime.timedelta(seconds=1)
    return ids


def leader(db: psycopg.Connection) -> tuple[str, int]:
    row = db.execute("SELECT executor_id, term FROM dbos.pgfleet_leader").fetchone()
    assert row is not None
    return row[0], row[1]


def test_two_members_fire_each_tick_once_and_a_new_leader_fills_the_gap_without_doubles(join, clock, db):
    a, b = join("a"), join("b")
    a.live()
    b.live()
    assert leader(db)[0] == "a"
    create(a.db, "every-second")
    a.live()  # the leader reads the schedule: it ticks from now on
    start = clock.database_now()
    advance(clock, 5, a, b)
    assert fired(db, "every-second") == expected("every-second", start, clock.database_now())
    assert len(fired(db, "every-second")) == 5
    last = db.execute("SELECT last_fired_at FROM dbos.workflow_schedules").fetchone()[0]
    assert last == fired(db, "every-second")[-1].removeprefix("sched-every-second-")

    # The leader goes silent: b takes over once its lease expires, under a new term, and fires
    # the ticks nobody fired meanwhile (from last_fired_at), each once.
    _, old_term = leader(db)
    advance(clock, int(MEMBER_TIMEOUT) + 3, b)
    assert leader(db)[0] == "b" and leader(db)[1] > old_term
    assert fired(db, "every-second") == expected("every-second", start, clock.database_now())

    # The old leader's ticker, still believing in its term, fires nothing.
    clock.advance(1)
    assert a.ticker(old_term) == set()
    assert fired(db, "every-second")[-1] < expected("every-second", start, clock.database_now())[-1]
    b.live()
    assert fired(db, "every-second") == expected("every-second", start, clock.database_now())


def test_a_paused_schedule_fires_nothing_and_resumes_at_its_next_tick_or_backfills(join, clock, db):
    a = join("a")
    a.live()
    create(a.db, "plain")
    create(a.db, "backfilled", automatic_backfill=True)
    a.live()
    start = clock.database_now()
    advance(clock, 2, a)
    assert len(fired(db, "plain")) == len(fired(db, "backfilled")) == 2

    a.db.workflow_schedules.set_status("plain", "PAUSED")
    a.db.workflow_schedules.set_status("backfilled", "PAUSED")
    paused_at = clock.database_now()
    advance(clock, 3, a)
    assert fired(db, "plain") == expected("plain", start, paused_at)
    assert fired(db, "backfilled") == expected("backfilled", start, paused_at)

    a.db.workflow_schedules.set_status("plain", "ACTIVE")
    a.db.workflow_schedules.set_status("backfilled", "ACTIVE")
    resumed_at = clock.database_now()
    a.live()  # seen again: "plain" starts at its next tick, "backfilled" after its last fired one
    advance(clock, 2, a)
    now = clock.database_now()
    assert fired(db, "plain") == expected("plain", start, paused_at) + expected("plain", resumed_at, now)
    assert fired(db, "backfilled") == expected("backfilled", start, now)

    # A deleted schedule stops at once; its runs stay.
    a.db.workflow_schedules.delete("plain")
    before = fired(db, "plain")
    advance(clock, 2, a)
    assert fired(db, "plain") == before


def test_a_replaced_definition_fires_on_its_new_cron_from_its_next_tick(join, clock, db):
    a = join("a")
    a.live()
    create(a.db, "s")
    a.live()
    advance(clock, 2, a)
    before = fired(db, "s")
    assert len(before) == 2
    a.db.workflow_schedules.apply([new_schedule(
        schedule_name="s", workflow_name="w2", workflow_class_name=None, schedule="*/2 * * * * *", context="new",
        automatic_backfill=False, cron_timezone=None, queue_name=None, application_name="app",
    )])
    advance(clock, 5, a)  # read at the first second; then four seconds of the new cron
    after = [w for w in fired(db, "s") if w not in before]
    assert len(after) == 2
    assert all(datetime.datetime.fromisoformat(w.removeprefix("sched-s-")).second % 2 == 0 for w in after)
    names = {r[0] for r in db.execute("SELECT name FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)", (after,))}
    assert names == {"w2"}


def test_a_pause_that_commits_first_wins_over_a_tick_the_leader_is_about_to_fire(join, clock, db):
    a = join("a")
    a.live()
    create(a.db, "s")
    a.live()
    _, term = leader(db)
    # The leader read the schedule as ACTIVE on its last pass; it is paused before the next.
    a.db.workflow_schedules.set_status("s", "PAUSED")
    row = a.db.workflow_schedules.get("s")
    assert row is not None
    clock.advance(1)
    from runtime.schedules import run_of, tick_workflow_id

    tick = clock.database_now().replace(microsecond=0)
    outcome = a.db.workflow_schedules.fire_tick(
        term, "a", row, run_of(row, tick_workflow_id("s", tick), tick, "app"), tick.isoformat()
    )
    assert (outcome.leading, outcome.active, outcome.enqueued) == (True, False, 0)
    assert fired(db, "s") == []


def test_a_schedule_that_cannot_fire_does_not_stop_the_others(join, clock, db):
    a = join("a")
    a.live()
    a.db.workflow_schedules.create(new_schedule(
        schedule_name="past-year", workflow_name="w", workflow_class_name=None, schedule="0 0 0 1 1 * 2020",
        context=None, automatic_backfill=False, cron_timezone=None, queue_name=None, application_name=None,
    ))
    a.db.workflow_schedules.create(new_schedule(
        schedule_name="nowhere", workflow_name="w", workflow_class_name=None, schedule=EVERY_SECOND,
        context=None, automatic_backfill=False, cron_timezone="Nowhere/Land", queue_name=None, application_name=None,
    ))  # (the API refuses such a zone; a row written by hand may still have one)
    create(a.db, "fine")
    a.live()
    start = clock.database_now()
    advance(clock, 2, a)
    assert fired(db, "fine") == expected("fine", start, clock.database_now())
    assert fired(db, "past-year") == fired(db, "nowhere") == []


# -- a launched DBOS ------------------------------------------------------------------------------


def test_a_launched_fleet_runs_the_schedule_with_tick_and_context(dbos, sys_url, db):
    @DBOS.workflow()
    def every_second(at, context):
        return [at.isoformat(), context]

    DBOS.create_schedule(schedule_name="sec", workflow_fn=every_second, schedule=EVERY_SECOND, context={"k": 1})
    client = DBOSClient(system_database_url=sys_url)
    try:
        client.create_schedule(schedule_name="by-name", workflow_name=every_second.__qualname__, schedule=EVERY_SECOND, context="c")
        for name, context in (("sec", {"k": 1}), ("by-name", "c")):
            workflow_id = wait_until(
                lambda name=name: db.execute(
                    "SELECT workflow_uuid FROM dbos.workflow_status WHERE schedule_name = %s AND status = 'SUCCESS' LIMIT 1", (name,)
                ).fetchone(),
                f"a run of schedule {name}",
            )[0]
            tick, seen = DBOS.retrieve_workflow(workflow_id).get_result()
            assert workflow_id == f"sched-{name}-{tick}" and seen == context
        assert DBOS.get_schedule("by-name")["last_fired_at"] is not None
    finally:
        client.destroy()


def test_a_create_whose_commit_reply_was_lost_finds_its_own_row_instead_of_a_taken_name(sys_url, db):
    from faults.proxy import PgProxy

    with PgProxy.start(sys_url) as proxy:
        DBOS.destroy(destroy_registry=True)
        DBOS(config={"name": "pgfleet-test", "system_database_url": proxy.url, "executor_id": "test-executor"})
        DBOS.launch()
        try:
            @DBOS.workflow()
            def yearly(at, context):
                return context

            rule = proxy.drop_reply("-- Create a database-backed schedule")
            DBOS.create_schedule(schedule_name="once", workflow_fn=yearly, schedule="0 0 1 1 *")
            assert rule.fired.is_set()
            assert db.execute("SELECT count(*) FROM dbos.workflow_schedules WHERE schedule_name = 'once'").fetchone()[0] == 1
            with pytest.raises(DBOSException, match="Schedule 'once' already exists"):
                DBOS.create_schedule(schedule_name="once", workflow_fn=yearly, schedule="0 0 1 1 *")
        finally:
            DBOS.destroy(destroy_registry=True)


def test_an_idle_leader_rereads_the_schedules_only_every_refresh_or_after_its_own_change(join, clock, db):
    """The leader fires from the schedules as it last read them: it reads them again every
    refresh_sec (scheduler_polling_interval_sec), at once after a change made through its own process, and when a tick finds its
    schedule changed (a pause elsewhere is honoured at the very next tick: each tick's statement
    checks the definition)."""
    a, b = join("a"), join("b")
    a.live()
    b.live()
    reads: list[datetime.datetime] = []
    listing = a.db.workflow_schedules.list

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(clock.database_now())
        return listing(*args, **kwargs)

    a.db.workflow_schedules.list = counted  # type: ignore[method-assign]
    advance(clock, 3, a, b)
    assert reads == []  # the term's first tick read them (before the count began); these did not
    create(a.db, "mine")
    a.live()
    assert len(reads) == 1 and fired(db, "mine") == []  # re-read at once; fires from its next tick
    create(b.db, "theirs")  # another process: seen at the next refresh
    advance(clock, int(a.ticker.refresh_sec), a, b)
    assert len(reads) == 2  # the refresh, which found "theirs": it fires from its next tick
    advance(clock, 1, a, b)
    assert len(fired(db, "theirs")) == 1 and len(fired(db, "mine")) == int(a.ticker.refresh_sec) + 1
    b.db.workflow_schedules.set_status("mine", "PAUSED")  # elsewhere: the leader's copy is stale
    count = len(fired(db, "mine"))
    advance(clock, 2, a, b)
    assert len(fired(db, "mine")) == count  # refused by the tick's statement
    assert len(reads) == 3  # which made the leader read them again


def test_scheduler_polling_interval_sec_sets_how_soon_another_process_s_schedule_starts(sys_url, db):
    """DBOS's ``scheduler_polling_interval_sec``: the leader re-reads the schedules that other
    processes wrote that often. A client's schedule, created once the leader has read them,
    fires within about that interval (pgfleet's default of 10 s would leave it unseen here)."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor",
                 "scheduler_polling_interval_sec": 1})
    client = None
    try:
        @DBOS.workflow()
        def from_the_client(at, context):
            return context

        DBOS.launch()
        wait_until(lambda: db.execute("SELECT term FROM dbos.pgfleet_leader WHERE executor_id = 'test-executor'").fetchone(),
                   "the executor leading")
        client = DBOSClient(system_database_url=sys_url)
        created = datetime.datetime.now(datetime.timezone.utc)
        client.create_schedule(schedule_name="client", workflow_name=from_the_client.__qualname__, schedule=EVERY_SECOND, context="c")
        first = wait_until(
            lambda: db.execute(
                "SELECT workflow_uuid FROM dbos.workflow_status WHERE schedule_name = 'client' ORDER BY workflow_uuid LIMIT 1"
            ).fetchone(),
            "a run of the client's schedule", timeout=8,
        )[0]
        tick = datetime.datetime.fromisoformat(first.removeprefix("sched-client-"))
        assert tick - created < datetime.timedelta(seconds=4), f"first tick {tick}, {tick - created} after the create"
    finally:
        if client is not None:
            client.destroy()
        DBOS.destroy(destroy_registry=True)
