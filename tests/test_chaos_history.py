"""The chaos history door (``db.chaos_history``, sysdb/chaos_history.py): what its triggers log as
each transaction commits, and what ``load()`` reads back, against a real executor.

- A small workflow run (a step, an event, a stream value, a child, an enqueue on a limited
  queue) logs each workflow's ownership changes (insert, claim, finish) written by sessions
  that name this process and executor, a write record of each kind carrying the row's owner
  at its commit, the ledger's step starts, final statuses, events and the queue's limits.
- A takeover (the in-process coordination of tests/test_coordination_inprocess.py) is a
  takeover record and an ownership change written by the leader's executor.
- A change's ``at`` is its commit's time, and a write's owner is the row's at that commit.
- ``install()`` twice is fine; ``uninstall()`` removes the triggers and the logs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from conftest import wait_until
from runtime import DBOS, Queue, SetWorkflowID
from runtime.serialization import deserialize
from sysdb import SystemDatabase, SystemDatabaseError
from sysdb.chaos_history import ChaosHistoryRows, EventValue, QueueLimits, parse_writer
from sysdb.session_names import executor_session_name
from test_coordination_inprocess import MEMBER_TIMEOUT, advance, clock, insert_pending, join  # noqa: F401 (fixtures)

EXECUTOR = "history-executor"
TRIGGERS = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgfleet_chaos%'"


@pytest.fixture
def history_db(sys_url: str) -> Iterator[SystemDatabase]:
    """The test's database with the chaos instrumentation installed, before anything runs on it."""
    db = SystemDatabase(sys_url, pool_size=2, application_name="pgfleet-chaos-test")
    db.open(run_migrations=False)
    db.chaos_history.install()
    yield db
    db.close()


@pytest.fixture
def configured(sys_url: str, history_db: SystemDatabase) -> Iterator[type]:
    """DBOS configured with the attempt ledger on; the test declares its queue, then launches."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "history-test", "system_database_url": sys_url, "executor_id": EXECUTOR, "attempt_ledger": True})
    yield DBOS
    DBOS.destroy(destroy_registry=True)


def database_time(db: psycopg.Connection) -> float:
    return db.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]


def of(history: ChaosHistoryRows, workflow_id: str) -> list[tuple[str, str | None, int | None]]:
    return [(c.status, c.executor_id, c.owner_epoch) for c in history.ownership if c.workflow_uuid == workflow_id]


def run_the_small_workflow() -> None:
    queue = Queue("limited-q", concurrency=2, worker_concurrency=1, limiter={"limit": 5, "period": 2.0})

    @DBOS.step()
    def double(x: int) -> int:
        return 2 * x

    @DBOS.workflow()
    def queued_child(x: int) -> int:
        return double(x)

    @DBOS.workflow()
    def child(x: int) -> int:
        return x + 1

    @DBOS.workflow()
    def parent(x: int) -> int:
        y = double(x)
        DBOS.set_event("doubled", y)
        DBOS.write_stream("progress", y)
        z = DBOS.start_workflow(child, y).get_result()
        with SetWorkflowID("queued-1"):
            handle = queue.enqueue(queued_child, z)
        return handle.get_result()

    DBOS.launch()  # after the queue's declaration: the member records its limits as it registers
    with SetWorkflowID("parent-1"):
        assert parent(1) == 6


def test_a_workflow_run_logs_ownership_writes_and_starts_by_this_process(configured, history_db, db):
    began = database_time(db)
    run_the_small_workflow()
    ended = database_time(db)
    history = history_db.chaos_history.load()
    child = next(s.workflow_uuid for s in history.statuses if s.workflow_uuid not in ("parent-1", "queued-1"))

    # Ownership: started directly (inserted PENDING, owned) or enqueued (unowned), claimed, finished.
    [parent_epoch] = {e for _, _, e in of(history, "parent-1")}
    assert of(history, "parent-1") == [("PENDING", EXECUTOR, parent_epoch), ("SUCCESS", EXECUTOR, parent_epoch)]
    assert [s for s, _, _ in of(history, child)] == ["PENDING", "SUCCESS"]
    queued = [c for c in history.ownership if c.workflow_uuid == "queued-1"]
    queued_epoch = queued[1].owner_epoch
    assert [(c.status, c.executor_id, c.owner_epoch) for c in queued] == [
        ("ENQUEUED", None, None), ("PENDING", EXECUTOR, queued_epoch), ("SUCCESS", EXECUTOR, queued_epoch)
    ]
    assert {c.queue_name for c in queued} == {"limited-q"}
    assert queued[1].rate_limited and queued[1].started_at_epoch_ms is not None  # a claim on a rate-limited queue
    # Every change and write was made by this process's sessions, named for its executor.
    assert {parse_writer(c.writer) for c in history.ownership} == {(os.getpid(), EXECUTOR)}
    assert {parse_writer(w.writer) for w in history.writes} == {(os.getpid(), EXECUTOR)}
    assert all(began <= c.at <= ended for c in history.ownership + history.writes)  # the database's clock

    # Writes, each with the row's owner at its commit (a finish: the owner that finished it).
    parent_writes = [w for w in history.writes if w.workflow_uuid == "parent-1"]
    assert [w.kind for w in parent_writes] == ["output", "output", "event", "output", "stream", "output", "output", "output",
                                               "output", "finish"]
    assert {(w.row_status, w.row_executor_id, w.row_owner_epoch) for w in parent_writes if w.kind != "finish"} == {
        ("PENDING", EXECUTOR, parent_epoch)
    }
    assert (parent_writes[-1].row_status, parent_writes[-1].row_executor_id, parent_writes[-1].row_owner_epoch) == (
        "SUCCESS", EXECUTOR, parent_epoch
    )
    outputs = [(w.function_id, w.function_name) for w in parent_writes if w.kind == "output"]
    assert [(i, n.rsplit(".", 1)[-1] if "<locals>" in n else n) for i, n in outputs] == [
        (1, "double"), (2, "DBOS.setEvent"), (3, "DBOS.writeStream"), (4, "child"), (5, "DBOS.getResult"), (6, "queued_child"),
        (7, "DBOS.getResult")
    ]
    event, stream = (next(w for w in parent_writes if w.kind == k) for k in ("event", "stream"))
    assert (event.key, event.function_id) == ("doubled", None)
    assert (stream.key, stream.function_id) == ("progress", 3)
    assert [(w.kind, w.function_id, w.row_owner_epoch) for w in history.writes if w.workflow_uuid == "queued-1"] == [
        ("output", 1, queued_epoch), ("finish", None, queued_epoch)
    ]

    # The ledger's starts, final statuses, events, queue limits and the member.
    assert [(s.workflow_uuid, s.function_id, s.owner_epoch, s.pid, s.attempt) for s in history.starts] == [
        ("parent-1", 1, parent_epoch, os.getpid(), 1), ("queued-1", 1, queued_epoch, os.getpid(), 1)
    ]
    assert all(began <= s.at <= ended for s in history.starts)
    statuses = {s.workflow_uuid: s for s in history.statuses}
    assert {k: s.status for k, s in statuses.items()} == {"parent-1": "SUCCESS", child: "SUCCESS", "queued-1": "SUCCESS"}
    assert deserialize(statuses["parent-1"].output, statuses["parent-1"].serialization) == 6
    assert statuses["queued-1"].queue_name == "limited-q" and statuses["parent-1"].error is None
    # Who started whom: the children's rows name their parent, the parent's outputs name them.
    assert {k: s.parent_workflow_id for k, s in statuses.items()} == {"parent-1": None, child: "parent-1", "queued-1": "parent-1"}
    assert [(w.function_id, w.child_workflow_id) for w in parent_writes if w.child_workflow_id] == [
        (4, child), (5, child), (6, "queued-1"), (7, "queued-1")  # each start, and each DBOS.getResult of it
    ]
    assert began - 1 <= statuses["parent-1"].created_at <= statuses["parent-1"].updated_at <= ended + 1  # milliseconds
    assert [(e.workflow_uuid, e.key) for e in history.events] == [("parent-1", "doubled")]
    assert deserialize(history.events[0].value, history.events[0].serialization) == 2
    assert isinstance(history.events[0], EventValue)
    assert history.queues == [QueueLimits("limited-q", 2, 1, 5, 2.0, False)]
    assert [(m.executor_id, m.pid, m.status) for m in history.members] == [(EXECUTOR, os.getpid(), "active")]
    assert history.takeovers == []


def test_an_executors_sessions_name_its_pid_and_executor_id(configured, history_db, db):
    run_the_small_workflow()
    mine = f"pgfleet {os.getpid()} {EXECUTOR}"
    expected = {mine, f"{mine} heartbeat", f"{mine} leader", f"{mine} listener"}

    def names() -> set[str]:
        return {r[0] for r in db.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgfleet %'"
        )}

    wait_until(lambda: expected <= names(), f"sessions named {expected}", 15)  # the heartbeat's opens at its first beat
    assert {parse_writer(n) for n in names() if n.startswith(mine)} == {(os.getpid(), EXECUTOR)}


def test_a_takeover_is_a_takeover_record_and_a_change_written_by_the_leader(history_db, join, clock, db):  # noqa: F811
    a, b = join("a"), join("b")
    a.live()
    b.live()
    first_epoch = insert_pending(db, "wf-run", "b")
    advance(clock, MEMBER_TIMEOUT / 2 + 1, a)
    advance(clock, MEMBER_TIMEOUT / 2 + 1, a)  # B declared dead, its work taken over in that tick

    history = history_db.chaos_history.load()
    [takeover] = history.takeovers
    changes = [c for c in history.ownership if c.workflow_uuid == "wf-run"]
    assert [(c.status, c.executor_id) for c in changes] == [("PENDING", "b"), ("PENDING", "a")]
    assert changes[0].owner_epoch == first_epoch and changes[1].owner_epoch == takeover.to_epoch != first_epoch
    assert (takeover.workflow_uuid, takeover.from_executor_id, takeover.from_epoch, takeover.to_executor_id) == (
        "wf-run", "b", first_epoch, "a"
    )
    assert (takeover.by_executor_id, takeover.leader_term) == ("a", a.elector.term)
    # The test's own session inserted the row; the leader's executor moved it, in the takeover's
    # transaction (logged at its start; the change at its commit).
    assert parse_writer(changes[0].writer) is None
    assert parse_writer(changes[1].writer) == (os.getpid(), "a")
    assert changes[1].at >= takeover.at
    assert {(m.executor_id, m.status) for m in history.members} == {("a", "active"), ("b", "dead")}
    assert history.leader_actions and {x.executor_id for x in history.leader_actions} == {"a"}


def test_a_change_is_logged_at_its_commit_with_the_row_owner_at_that_commit(history_db, sys_url, db):
    insert_pending(db, "wf-slow", "x")
    with psycopg.connect(sys_url, application_name=executor_session_name(4242, "y")) as conn:
        conn.execute("INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, function_name) VALUES ('wf-slow', 1, 's')")
        updated = database_time(conn)
        conn.execute("UPDATE dbos.workflow_status SET executor_id = 'y', owner_epoch = owner_epoch + 1 WHERE workflow_uuid = 'wf-slow'")
        conn.execute("SELECT pg_sleep(0.3)")
        slept = database_time(conn)
    # (the block commits here)
    history = history_db.chaos_history.load()
    change = [c for c in history.ownership if c.workflow_uuid == "wf-slow"][-1]
    assert (change.executor_id, parse_writer(change.writer)) == ("y", (4242, "y"))
    assert change.at >= slept > updated  # the commit's time, not the UPDATE's
    [output] = [w for w in history.writes if w.workflow_uuid == "wf-slow"]
    # Inserted while x owned the row, committed after y took it: the owner at commit is y's.
    assert (output.kind, output.row_executor_id, output.row_owner_epoch) == ("output", "y", change.owner_epoch)
    assert output.at >= slept


def test_install_twice_is_fine_and_uninstall_removes_the_triggers_and_logs(history_db, db):
    assert db.execute(TRIGGERS).fetchone()[0] == 6
    insert_pending(db, "wf-before", "x")
    history_db.chaos_history.install()  # again: nothing changes, nothing logged is lost
    assert db.execute(TRIGGERS).fetchone()[0] == 6
    assert [c.workflow_uuid for c in history_db.chaos_history.load().ownership] == ["wf-before"]

    history_db.chaos_history.uninstall()
    history_db.chaos_history.uninstall()  # again: fine
    assert db.execute(TRIGGERS).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgfleet_chaos'").fetchone()[0] == 0
    insert_pending(db, "wf-after", "x")  # pgfleet's tables work as before
    with pytest.raises(SystemDatabaseError, match="no chaos history"):
        history_db.chaos_history.load()
    history_db.chaos_history.install()  # and it can come back
    assert history_db.chaos_history.load().ownership == []


@pytest.mark.parametrize(("name", "expected"), [
    ("pgfleet 123 exec-1", (123, "exec-1")),
    ("pgfleet 123 exec-1 heartbeat", (123, "exec-1")),
    ("pgfleet 123 exec-1 leader", (123, "exec-1")),
    ("pgfleet 123 exec-1 listener", (123, "exec-1")),
    ("pgfleet 123 exec-1 app", (123, "exec-1")),
    ("pgfleet 123 my executor", (123, "my executor")),  # an id with a space, no purpose
    ("pgfleet-client", None),
    ("pgfleet-supervisor-node-1", None),
    ("pgfleet:old-style", None),
    ("pgfleet 12x exec", None),
    ("psql", None),
    ("", None),
])
def test_parse_writer(name: str, expected: tuple[int, str] | None) -> None:
    assert parse_writer(name) == expected


def test_a_long_executor_id_is_cut_but_never_the_pid() -> None:
    long_id = "node-" + "x" * 80
    name = executor_session_name(4194304, long_id, "heartbeat")
    assert len(name.encode()) == 63
    pid, executor_id = parse_writer(name) or (0, "")
    assert pid == 4194304 and long_id.startswith(executor_id) and len(executor_id) > 40
    assert executor_session_name(7, "é" * 40).encode().decode() == executor_session_name(7, "é" * 40)  # no split character
