"""Takeover and claiming always make progress, and never hand work to a member that cannot run it.

- A claim is fenced in SQL on the claimer's own member row (executor id, epoch, active): a member
  declared dead claims nothing, even while its heartbeat has not noticed yet, and a claim racing
  the declaration either waits for it and claims nothing, or commits first (then the takeover
  that follows finds its rows).
- A dead member's movable workflows are moved even when hundreds of its older workflows belong
  to a function no live member has.
- Queued work nobody serving the queue can run is not claimed and stranded.

Claims are driven in-process with ``QueueClaimer.claim_once`` on a real Postgres: deterministic,
no timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from cluster.coordination.claimer import QueueClaimer, QueueSpec
from conftest import wait_until
from sysdb import SystemDatabase
from sysdb.claims import MethodBindings
from sysdb.links import SessionTimeouts
from sysdb.workflow_rows import AcquiredWorkflow

SPEC = QueueSpec(name="q", concurrency=None, worker_concurrency=None, rate_limit=None, partitioned=False, polling_interval_sec=1.0)


@pytest.fixture
def sysdb(sys_url: str) -> Iterator[SystemDatabase]:
    database = SystemDatabase(sys_url, pool_size=4)
    database.open(run_migrations=False)
    yield database
    database.close()


def add_member(db: psycopg.Connection, executor_id: str, *, status: str = "active", names: tuple[str, ...] = ("w",)) -> int:
    """A member row as registration writes it; returns its epoch."""
    return db.execute(
        "INSERT INTO dbos.pgfleet_executors (executor_id, epoch, host, pid, status, workflow_names) "
        "VALUES (%s, nextval('dbos.pgfleet_member_epoch_seq'), 'h', 1, %s, %s) RETURNING epoch",
        (executor_id, status, list(names)),
    ).fetchone()[0]


def enqueue_rows(db: psycopg.Connection, count: int, *, queue: str = "q", name: str = "w", prefix: str = "e", **columns: Any) -> None:
    extra = "".join(f", {c}" for c in columns)
    marks = "".join(", %s" for _ in columns)
    with db.cursor() as cur:
        cur.executemany(
            f"INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, created_at{extra}) "
            f"VALUES (%s, 'ENQUEUED', %s, %s, %s{marks})",
            [(f"{prefix}{i}", name, queue, i, *columns.values()) for i in range(count)],
        )


def claimer(
    sysdb: SystemDatabase, executor_id: str, epoch: int, claimed: list[AcquiredWorkflow], instances: list[tuple[str, str]] | None = None,
    bindings: MethodBindings | None = None,
) -> QueueClaimer:
    bound = bindings if bindings is not None else MethodBindings(instances=instances or [])
    return QueueClaimer(
        sysdb, executor_id, "v1", queues=lambda: [SPEC], workflow_names=lambda: ["w", "Shop.restock", "Shop.open"],
        run_claimed=claimed.extend, member_epoch=lambda: epoch, bindings=lambda: bound,
    )


def statuses(db: psycopg.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT status, count(*) FROM dbos.workflow_status GROUP BY status").fetchall())


# -- claims are fenced on the claimer's membership ----------------------------------------------


def test_an_active_member_claims_and_a_dead_or_replaced_one_claims_nothing(sysdb, db):
    epoch = add_member(db, "m1")
    enqueue_rows(db, 3)
    claimed: list[AcquiredWorkflow] = []
    # Declared dead: its heartbeat has not noticed, its claimer still runs. It claims nothing.
    db.execute("UPDATE dbos.pgfleet_executors SET status = 'dead' WHERE executor_id = 'm1'")
    assert claimer(sysdb, "m1", epoch, claimed).claim_once() == 0
    assert claimed == [] and statuses(db) == {"ENQUEUED": 3}
    # Re-registered under the same id with a new epoch: the old incarnation claims nothing either.
    db.execute("UPDATE dbos.pgfleet_executors SET status = 'active', epoch = nextval('dbos.pgfleet_member_epoch_seq') WHERE executor_id = 'm1'")
    assert claimer(sysdb, "m1", epoch, claimed).claim_once() == 0
    assert statuses(db) == {"ENQUEUED": 3}
    # The current incarnation claims (the fence is not simply closed).
    current = db.execute("SELECT epoch FROM dbos.pgfleet_executors WHERE executor_id = 'm1'").fetchone()[0]
    assert claimer(sysdb, "m1", current, claimed).claim_once() == 3
    assert {r.workflow_uuid for r in claimed} == {"e0", "e1", "e2"}
    assert statuses(db) == {"PENDING": 3}


def test_a_claim_racing_the_declaration_of_death_waits_for_it_and_claims_nothing(sysdb, db, sys_url):
    """The leader's "declare dead" is in flight (uncommitted) when the claim statement runs: the
    claim must wait for it and then see the member dead. A check that only read its snapshot
    would claim, and the claimed workflows would start on a member the leader already gave up."""
    epoch = add_member(db, "m1")
    enqueue_rows(db, 2)
    claimed: list[AcquiredWorkflow] = []
    result: list[int] = []
    with psycopg.connect(sys_url) as leader:  # a transaction held open: the declaration in flight
        leader.execute("UPDATE dbos.pgfleet_executors SET status = 'dead' WHERE executor_id = 'm1'")
        thread = threading.Thread(target=lambda: result.append(claimer(sysdb, "m1", epoch, claimed).claim_once()))
        thread.start()
        wait_until(
            lambda: db.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '-- Claim up to the free budget%%'"
            ).fetchone(),
            "the claim to wait for the member row",
            timeout=10,
        )
        leader.commit()
    thread.join(10)
    assert result == [0]
    assert statuses(db) == {"ENQUEUED": 2}


def test_declaring_members_dead_skips_a_member_row_held_by_its_own_claim(sysdb, db, sys_url):
    """The claim's share lock on its member row must never block the leader's tick."""
    add_member(db, "m1")
    db.execute("UPDATE dbos.pgfleet_executors SET last_heartbeat = now() - interval '1 hour'")
    db.execute(
        "INSERT INTO dbos.pgfleet_leader (term, executor_id, executor_epoch, expires_at) VALUES (7, 'leader', 1, now() + interval '1 minute')"
    )
    # A leader whose statements fail after 5 s: waiting behind the claim's lock would raise.
    leader = SystemDatabase(sys_url, pool_size=1, timeouts=SessionTimeouts(statement_timeout_sec=5.0))
    leader.open(run_migrations=False)
    try:
        with psycopg.connect(sys_url) as claim:  # a claim transaction in flight holds the row FOR SHARE
            claim.execute("SELECT 1 FROM dbos.pgfleet_executors WHERE executor_id = 'm1' FOR SHARE")
            assert leader.takeover.mark_dead_members(7, "leader", member_timeout_sec=5) == []
    finally:
        leader.close()
    assert [m.executor_id for m in sysdb.takeover.mark_dead_members(7, "leader", member_timeout_sec=5)] == ["m1"]


# -- takeover moves what can move -------------------------------------------------------------


def test_movable_work_moves_past_hundreds_of_older_workflows_nobody_can_run(sysdb, db):
    """More than a batch of the dead member's oldest workflows belong to a function no live
    member has: its younger movable ones (assignable or queued) must still be moved."""
    from cluster.coordination.sweeper import TAKEOVER_BATCH_SIZE, take_over_member

    db.execute("INSERT INTO dbos.pgfleet_executors (executor_id, epoch, host, pid, status, workflow_names) VALUES ('dead', 1, 'h', 1, 'dead', '{w,gone}')")
    add_member(db, "live", names=("w",))
    unmovable = TAKEOVER_BATCH_SIZE + 50
    rows = [(f"u{i}", "gone", None, i) for i in range(unmovable)]
    rows += [(f"m{i}", "w", None, 10_000 + i) for i in range(5)]  # the live member runs w
    rows += [(f"q{i}", "gone", "q", 20_000 + i) for i in range(3)]  # queued: back to the queue
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, executor_id, owner_epoch, queue_name, created_at) "
            "VALUES (%s, 'PENDING', %s, 'dead', 1, %s, %s)",
            rows,
        )
    moved = take_over_member(sysdb, "dead", 1, by_executor_id="live", member_timeout_sec=60)
    assert sorted(r.workflow_uuid for r in moved) == sorted([f"m{i}" for i in range(5)] + [f"q{i}" for i in range(3)])
    placed = dict(db.execute(
        "SELECT status || '/' || coalesce(executor_id, '-'), count(*) FROM dbos.workflow_status GROUP BY 1"
    ).fetchall())
    # The unmovable ones wait where they are for a member that registers their function.
    assert placed == {"PENDING/dead": unmovable, "PENDING/live": 5, "ENQUEUED/-": 3}


# -- queued work is claimed only where it can run ---------------------------------------------


def test_a_queued_method_of_an_instance_the_claimer_lacks_is_left_for_one_that_has_it(sysdb, db):
    epoch = add_member(db, "m1")
    enqueue_rows(db, 2, prefix="inst", class_name="Shop", config_name="east")
    enqueue_rows(db, 1, prefix="plain")
    claimed: list[AcquiredWorkflow] = []
    assert claimer(sysdb, "m1", epoch, claimed, instances=[("Shop", "west")]).claim_once() == 1
    assert [r.workflow_uuid for r in claimed] == ["plain0"]
    assert statuses(db) == {"ENQUEUED": 2, "PENDING": 1}  # not claimed and stranded here
    assert claimer(sysdb, "m1", epoch, claimed, instances=[("Shop", "east")]).claim_once() == 2
    assert statuses(db) == {"PENDING": 3}


def test_a_queued_method_without_what_it_binds_to_here_is_never_claimed(sysdb, db):
    """An instance method enqueued with no instance (or a classmethod with no or another class)
    was claimed and left PENDING by a process that could not bind it: a stranded workflow that
    held a concurrency slot (found by running the same enqueues under dbos 2.30, which fails
    them). Now it waits, ENQUEUED, for an executor that has what it names."""
    epoch = add_member(db, "m1")
    enqueue_rows(db, 1, prefix="no-instance", name="Shop.restock", class_name="Shop")
    enqueue_rows(db, 1, prefix="no-class", name="Shop.open")
    enqueue_rows(db, 1, prefix="other-class", name="Shop.open", class_name="Mall")
    enqueue_rows(db, 1, prefix="runnable-method", name="Shop.restock", class_name="Shop", config_name="east")
    enqueue_rows(db, 1, prefix="runnable-class", name="Shop.open", class_name="Shop")
    bindings = MethodBindings(instances=[("Shop", "east")], instance_methods=["Shop.restock"], class_methods=["Shop.open"], classes=["Shop"])
    claimed: list[AcquiredWorkflow] = []
    assert claimer(sysdb, "m1", epoch, claimed, bindings=bindings).claim_once() == 2
    assert sorted(r.workflow_uuid for r in claimed) == ["runnable-class0", "runnable-method0"]
    assert statuses(db) == {"ENQUEUED": 3, "PENDING": 2}


def test_a_client_enqueue_whose_partition_key_the_queue_cannot_serve_fails_clearly(sys_url, db):
    from runtime import DBOSClient
    from runtime.errors import DBOSException

    db.execute(
        "INSERT INTO dbos.pgfleet_executors (executor_id, epoch, host, pid, queue_limits) VALUES "
        "('m1', 1, 'h', 1, %s)",
        ('{"parts": {"partitioned": true}, "plain": {"partitioned": false}}',),
    )
    client = DBOSClient(system_database_url=sys_url)
    try:
        with pytest.raises(DBOSException, match="'plain' is not partitioned"):
            client.enqueue({"workflow_name": "w", "queue_name": "plain", "queue_partition_key": "k"})
        with pytest.raises(DBOSException, match="'parts' is partitioned"):
            client.enqueue({"workflow_name": "w", "queue_name": "parts"})
        assert db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()[0] == 0
        client.enqueue({"workflow_name": "w", "queue_name": "parts", "queue_partition_key": "k"})
        client.enqueue({"workflow_name": "w", "queue_name": "plain"})
        client.enqueue({"workflow_name": "w", "queue_name": "undeclared", "queue_partition_key": "k"})
    finally:
        client.destroy()
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE status = 'ENQUEUED'").fetchone()[0] == 3


def test_an_assigned_method_whose_instance_is_missing_here_goes_to_the_internal_queue(dbos, db):
    """A takeover picks the new owner by workflow name, so it can hand over a method of an
    instance the owner lacks. The owner logged it and left it PENDING under itself: stranded
    while it lived. Now it puts it on DBOS's internal queue, fenced on its ownership, where
    only an executor with that instance claims it; here it stays ENQUEUED."""
    from runtime import DBOS, DBOSConfiguredInstance
    from runtime import recovery as runtime_recovery
    from runtime.current import current_process, executor_for

    @DBOS.dbos_class()
    class Shop(DBOSConfiguredInstance):
        @DBOS.workflow()
        def restock(self, n: int) -> int:
            return n

    Shop("here")
    executor = executor_for("test")
    db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, class_name, config_name, executor_id, owner_epoch) "
        "VALUES ('far-shop', 'PENDING', %s, 'Shop', 'elsewhere', %s, 41), "
        "       ('stale-shop', 'PENDING', %s, 'Shop', 'elsewhere', %s, 40)",
        (Shop.restock.__qualname__, executor.executor_id, Shop.restock.__qualname__, "another-executor"),
    )
    def assigned(workflow_id: str) -> AcquiredWorkflow:  # as a takeover hands it over, under epoch 41
        return AcquiredWorkflow(
            workflow_uuid=workflow_id, owner_epoch=41, recovery_attempts=1, name=Shop.restock.__qualname__,
            class_name="Shop", config_name="elsewhere", inputs=None, serialization=None, authenticated_user=None,
            authenticated_roles=None, assumed_role=None, workflow_timeout_ms=None, workflow_deadline_epoch_ms=None,
            queue_name=None,
        )

    runtime_recovery.run_assigned(executor, [assigned("far-shop"), assigned("stale-shop")])
    placed = dict(db.execute("SELECT workflow_uuid, (status, queue_name, executor_id) FROM dbos.workflow_status").fetchall())
    assert placed["far-shop"] == ("ENQUEUED", "_dbos_internal_queue", None)
    assert placed["stale-shop"] == ("PENDING", None, "another-executor")  # not this owner's to hand back
    process = current_process()
    assert process is not None and process.services is not None
    assert process.services.claimer.claim_once() == 0  # this executor lacks the instance: never claims it
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'far-shop'").fetchone() == ("ENQUEUED",)
