"""One bad row never stops a process or a batch (issue #8, item 5), and lifecycle edges.

Workflows whose inputs cannot be decoded here (a class that lived only in the enqueuer, corrupt
data) are dead-lettered as ERROR with a clear error and their inputs kept, wherever they are
met: in a claim batch, at launch, during a rejoin. A failed launch stops what it started; every
pgfleet error survives pickling (errors are recorded pickled); a leaving member never rejoins.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import pickle
import subprocess
import threading

import pytest

import cluster.coordination.membership
import cluster.process.cli.errors
import cluster.process.settings
import runtime.errors
import sysdb.embedded
import sysdb.errors
import sysdb.listing
from conftest import wait_until
from faults.rows import GARBAGE_INPUTS, make_pending_here, vanishing_value
from runtime import DBOS, DBOSClient, Queue
from runtime.serialization import deserialize_exception, serialize_exception

EXECUTOR = "bad-rows"


@pytest.fixture
def fresh():
    DBOS.destroy(destroy_registry=True)
    yield
    DBOS.destroy(destroy_registry=True)


def launch(sys_url: str, **extra) -> None:
    DBOS(config={"name": "bad-rows", "system_database_url": sys_url, "executor_id": EXECUTOR, **extra})
    DBOS.launch()


def register_echo():
    @DBOS.workflow(name="echo")
    def echo(x):
        return x

    return echo


def enqueue(sys_url: str, queue: str, items: list[tuple[str, object]]) -> None:
    client = DBOSClient(system_database_url=sys_url)
    try:
        for workflow_id, arg in items:
            client.enqueue({"workflow_name": "echo", "queue_name": queue, "workflow_id": workflow_id}, arg)
    finally:
        client.destroy()


def status(db, workflow_id: str) -> str:
    return db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()[0]


def inputs(db, workflow_id: str) -> str:
    return db.execute("SELECT inputs FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()[0]


def assert_dead_lettered(db, workflow_id: str, original_inputs: str, cause: str) -> None:
    wait_until(lambda: status(db, workflow_id) == "ERROR", f"{workflow_id} to be dead-lettered", 20)
    assert inputs(db, workflow_id) == original_inputs  # nothing is lost
    with pytest.raises(Exception, match="inputs could not be decoded") as info:
        DBOS.retrieve_workflow(workflow_id).get_result()
    assert cause in str(info.value)
    # A builtin exception: any reader of the row (DBOS's own client too) can unpickle it.
    assert type(info.value) is Exception


def test_an_undecodable_row_in_a_claim_batch_is_dead_lettered_and_the_rest_run(sys_url, db, fresh):
    register_echo()
    Queue("bad-rows-q")
    value, forget = vanishing_value()
    # Enqueued by a process where the class exists; this one has never heard of it.
    enqueue(sys_url, "bad-rows-q", [("row-0", "a"), ("row-1", value), ("row-2", "b"), ("row-3", "c")])
    forget()
    before = inputs(db, "row-1")
    launch(sys_url)
    for workflow_id, expected in (("row-0", "a"), ("row-2", "b"), ("row-3", "c")):
        wait_until(lambda: status(db, workflow_id) == "SUCCESS", f"{workflow_id} to run after the bad row", 20)
        assert DBOS.retrieve_workflow(workflow_id).get_result() == expected
    assert_dead_lettered(db, "row-1", before, "pgfleet_vanished_module")


def test_launch_succeeds_with_undecodable_pending_rows(sys_url, db, fresh):
    register_echo()
    value, forget = vanishing_value()
    enqueue(sys_url, "unserved", [("pend-gone", value), ("pend-garbage", "x"), ("pend-roles", "y"), ("pend-good", "ok")])
    forget()
    make_pending_here(db, "pend-gone", EXECUTOR)
    make_pending_here(db, "pend-garbage", EXECUTOR, inputs=GARBAGE_INPUTS)
    make_pending_here(db, "pend-roles", EXECUTOR)
    db.execute("UPDATE dbos.workflow_status SET authenticated_roles = '[not json' WHERE workflow_uuid = 'pend-roles'")
    make_pending_here(db, "pend-good", EXECUTOR)
    gone_inputs = inputs(db, "pend-gone")
    launch(sys_url)  # raised DBOSSerializationError on every start before
    wait_until(lambda: status(db, "pend-good") == "SUCCESS", "the good pending row to be recovered", 20)
    assert_dead_lettered(db, "pend-gone", gone_inputs, "pgfleet_vanished_module")
    assert_dead_lettered(db, "pend-garbage", GARBAGE_INPUTS, "cannot deserialize")
    assert_dead_lettered(db, "pend-roles", inputs(db, "pend-roles"), "authenticated_roles")


def test_a_rejoin_that_meets_an_undecodable_row_keeps_heartbeating(sys_url, db, fresh):
    register_echo()
    launch(sys_url, heartbeat_interval_sec=0.2, member_timeout_sec=2)
    value, forget = vanishing_value()
    enqueue(sys_url, "unserved", [("rejoin-gone", value)])
    forget()
    make_pending_here(db, "rejoin-gone", EXECUTOR)
    before = inputs(db, "rejoin-gone")
    (epoch,) = db.execute("SELECT epoch FROM dbos.pgfleet_executors WHERE executor_id = %s", (EXECUTOR,)).fetchone()
    # Declared dead by the cluster: the member abandons its work and rejoins, recovering it.
    db.execute("UPDATE dbos.pgfleet_executors SET status = 'dead' WHERE executor_id = %s", (EXECUTOR,))
    assert_dead_lettered(db, "rejoin-gone", before, "pgfleet_vanished_module")
    heartbeat = DBOS._process().services.heartbeat
    row = wait_until(
        lambda: db.execute(
            "SELECT epoch, status, last_heartbeat FROM dbos.pgfleet_executors WHERE executor_id = %s AND epoch > %s",
            (EXECUTOR, epoch),
        ).fetchone(),
        "the member to rejoin with a new epoch",
    )
    assert row[1] == "active"
    # Still beating after the rejoin met the bad row: its heartbeat advances.
    wait_until(
        lambda: db.execute(
            "SELECT last_heartbeat > %s FROM dbos.pgfleet_executors WHERE executor_id = %s", (row[2], EXECUTOR)
        ).fetchone()[0],
        "a heartbeat after the rejoin", 10,
    )
    assert heartbeat._thread.is_alive() and not heartbeat.lost


def _pgfleet_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("pgfleet-")}


def _connections(db) -> int:
    return db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s AND pid <> pg_backend_pid()", (f"%{EXECUTOR}%",)
    ).fetchone()[0]


def test_a_failed_launch_stops_what_it_started_and_launch_can_be_retried(sys_url, db, fresh, caplog):
    @DBOS.scheduled("0 0 1 1 *")
    @DBOS.workflow(name="yearly")
    def yearly(scheduled_time, actual_time):
        return None

    threads_before = _pgfleet_threads()
    # Declaring schedules is the last thing launch does before taking work: make it fail.
    db.execute("ALTER TABLE dbos.pgfleet_schedules RENAME TO pgfleet_schedules_away")
    DBOS(config={"name": "bad-rows", "system_database_url": sys_url, "executor_id": EXECUTOR, "database_retry_timeout_sec": 1})
    with pytest.raises(Exception, match="pgfleet_schedules"):
        DBOS.launch()
    wait_until(lambda: _pgfleet_threads() <= threads_before, "the failed launch's threads to stop", 10)
    wait_until(lambda: _connections(db) == 0, "the failed launch's connections to close", 10)
    assert db.execute("SELECT status FROM dbos.pgfleet_executors WHERE executor_id = %s", (EXECUTOR,)).fetchone()[0] != "active"

    db.execute("ALTER TABLE dbos.pgfleet_schedules_away RENAME TO pgfleet_schedules")
    DBOS.launch()  # the same instance launches once the fault is gone
    assert db.execute("SELECT status FROM dbos.pgfleet_executors WHERE executor_id = %s", (EXECUTOR,)).fetchone()[0] == "active"
    executor = DBOS._process().executor
    with caplog.at_level(logging.WARNING, logger="dbos"):
        DBOS.launch()  # a second launch is not a silent no-op: it warns, as DBOS does
    assert "DBOS was already launched" in caplog.text
    assert DBOS._process().executor is executor  # and changes nothing


def test_destroy_never_rejoins_to_take_back_what_it_handed_over(sys_url, db, fresh):
    release = threading.Event()

    @DBOS.workflow(name="blocked")
    def blocked():
        release.wait(30)
        return "done"

    launch(sys_url, heartbeat_interval_sec=0.05, member_timeout_sec=2)
    DBOS.start_workflow(blocked)
    wait_until(lambda: db.execute("SELECT count(*) FROM dbos.workflow_status WHERE name = 'blocked'").fetchone()[0], "the workflow to start")
    services = DBOS._process().services
    # Hold the leader's stop (the last step before the heartbeat stops) for a few beats: a
    # heartbeat that sees its own row marked dead by the hand-over must not rejoin.
    leader_stop = services.leader.stop

    def slow_leader_stop():
        threading.Event().wait(1.0)
        leader_stop()

    services.leader.stop = slow_leader_stop
    release.set()
    DBOS.destroy()
    member = db.execute("SELECT status FROM dbos.pgfleet_executors WHERE executor_id = %s", (EXECUTOR,)).fetchone()[0]
    assert member == "dead"


def _exception_classes(module) -> list[type]:
    return [
        obj for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__
    ]


def _instance(cls: type) -> BaseException:
    """An instance built from made-up arguments of the types its constructor names."""
    args = []
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or parameter.default is not parameter.empty:
            continue
        annotation = str(parameter.annotation)
        args.append(7 if annotation.startswith("int") else [ValueError("inner")] if "list" in annotation else f"<{parameter.name}>")
    return cls(*args)


ERROR_MODULES = [
    runtime.errors,
    sysdb.errors,
    sysdb.embedded,
    sysdb.listing,
    cluster.coordination.membership,
    cluster.process.settings,
    cluster.process.cli.errors,
]


@pytest.mark.parametrize(
    "cls", [c for m in ERROR_MODULES for c in _exception_classes(m)], ids=lambda c: f"{c.__module__}.{c.__name__}"
)
def test_every_error_survives_pickling(cls):
    error = _instance(cls)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cls and str(again) == str(error)
    assert {k: repr(v) for k, v in vars(again).items()} == {k: repr(v) for k, v in vars(error).items()}
    # ... and the way a workflow's error is recorded and read back.
    assert str(deserialize_exception(serialize_exception(error))) == str(error)
    assert type(deserialize_exception(serialize_exception(error))) is cls


def test_a_rejoin_never_replays_a_workflow_whose_abandoned_execution_is_still_in_a_step(sys_url, db, fresh):
    inside, release = threading.Event(), threading.Event()
    lock, running, peak, runs = threading.Lock(), [0], [0], [0]

    @DBOS.step()
    def slow_step():
        with lock:
            running[0] += 1
            runs[0] += 1
            peak[0] = max(peak[0], running[0])
        inside.set()
        release.wait(30)
        with lock:
            running[0] -= 1
        return "stepped"

    @DBOS.workflow(name="in_step")
    def in_step():
        return slow_step()

    launch(sys_url, heartbeat_interval_sec=0.1, member_timeout_sec=2)
    handle = DBOS.start_workflow(in_step)
    assert inside.wait(10)
    (epoch,) = db.execute("SELECT epoch FROM dbos.pgfleet_executors WHERE executor_id = %s", (EXECUTOR,)).fetchone()
    db.execute("UPDATE dbos.pgfleet_executors SET status = 'dead' WHERE executor_id = %s", (EXECUTOR,))
    wait_until(lambda: db.execute(
        "SELECT status = 'active' FROM dbos.pgfleet_executors WHERE executor_id = %s AND epoch > %s", (EXECUTOR, epoch)
    ).fetchone(), "the member to rejoin")
    # The rejoin lists the workflow; recovery must wait for the abandoned execution to stop.
    assert not wait_until_or_none(lambda: peak[0] > 1, 1.5), "the step ran twice at once"
    release.set()
    # The abandoned execution stops at its checkpoint (writes nothing); recovery then replays it.
    assert handle.get_result() == "stepped"
    assert peak[0] == 1 and runs[0] == 2
    assert db.execute(
        "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = %s", (handle.workflow_id,)
    ).fetchone()[0] == 1


def wait_until_or_none(predicate, timeout: float):
    """``predicate`` if it comes true within ``timeout`` (a bounded check that something does not happen)."""
    try:
        return wait_until(predicate, "", timeout)
    except AssertionError:
        return None


def test_a_heartbeat_outlives_a_failing_rejoin_and_rejoins_again(sys_url, db):
    from cluster.coordination.membership import Heartbeat, MemberInfo, Membership
    from sysdb import SystemDatabase

    system_db = SystemDatabase(sys_url, pool_size=2)
    system_db.open()
    membership = Membership(system_db, MemberInfo("hb-member", "app", "v1", None), lambda: [], 2.0)
    membership.register()
    lost, rejoined = [], []

    def on_rejoined(epoch):
        rejoined.append(epoch)
        if len(rejoined) == 1:
            raise RuntimeError("the first rejoin callback fails")

    heartbeat = Heartbeat(system_db, membership, 0.05, lost.append, on_rejoined)
    heartbeat.start()
    try:
        db.execute("UPDATE dbos.pgfleet_executors SET status = 'dead' WHERE executor_id = 'hb-member'")
        wait_until(lambda: len(rejoined) >= 2 and not heartbeat.lost, "a second rejoin after the failed one", 10)
        assert len(lost) == 1 and heartbeat._thread.is_alive()
        assert db.execute("SELECT status, epoch FROM dbos.pgfleet_executors WHERE executor_id = 'hb-member'").fetchone() == (
            "active", rejoined[-1],
        )
    finally:
        heartbeat.stop()
        system_db.close()


READ_DEAD_LETTER_WITH_DBOS = """
import json, sys
from dbos import DBOSClient
client = DBOSClient(system_database_url=sys.argv[1])
handle = client.retrieve_workflow(sys.argv[2])
try:
    handle.get_result()
    failed = None
except Exception as exc:
    failed = [type(exc).__name__, str(exc)]
print(json.dumps({"status": handle.get_status().status, "failed": failed}))
client.destroy()
"""


@pytest.mark.skipif(not os.environ.get("PGFLEET_DBOS_PYTHON"), reason="set PGFLEET_DBOS_PYTHON to a Python with dbos installed")
def test_dbos_client_reads_a_dead_lettered_row(sys_url, db, fresh):
    from test_dbos_client_compat import as_url

    register_echo()
    value, forget = vanishing_value()
    enqueue(sys_url, "unserved", [("dbos-reads-gone", value)])
    forget()
    make_pending_here(db, "dbos-reads-gone", EXECUTOR)
    launch(sys_url)
    wait_until(lambda: status(db, "dbos-reads-gone") == "ERROR", "the row to be dead-lettered", 20)
    out = subprocess.run(
        [os.environ["PGFLEET_DBOS_PYTHON"], "-c", READ_DEAD_LETTER_WITH_DBOS, as_url(sys_url), "dbos-reads-gone"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["status"] == "ERROR"
    assert seen["failed"][0] == "Exception" and "inputs could not be decoded" in seen["failed"][1]
