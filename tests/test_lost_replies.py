"""Lost replies are harmless (issue #8, item 2).

Every test runs an executor whose system-database connections all pass through the lost-reply
proxy (tests/faults/proxy.py), arms it to let exactly one statement commit and then lose its
reply, and checks that the retry recognised its own effect: the workflow ends SUCCESS, the
effect is there exactly once, and nobody hangs (every wait is bounded).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runtime import DBOS, Queue, SetEnqueueOptions, SetWorkflowID
from sysdb import SystemDatabase
from sysdb.workflow_rows import NewWorkflow
from tests.conftest import wait_until
from tests.faults.proxy import PgProxy

# Long enough for a loaded machine, short enough that a hang fails the test instead of the run.
BOUND_SEC = 30.0
EXECUTOR_ID = "test-executor"
# What the orphan sweep logs when it has to rescue a row (runtime/ownership.py).
ORPHAN_ADOPTED = "adopting workflows this executor owns but was not running"


@pytest.fixture
def proxy(sys_url: str) -> Iterator[PgProxy]:
    with PgProxy.start(sys_url) as proxy:
        yield proxy


def configure(proxy: PgProxy) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-test", "system_database_url": proxy.url, "executor_id": EXECUTOR_ID})


@pytest.fixture
def fleet(proxy: PgProxy) -> Iterator[type]:
    """A launched DBOS whose every connection to the system database goes through ``proxy``."""
    configure(proxy)
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


@pytest.fixture
def unlaunched(proxy: PgProxy) -> Iterator[type]:
    """Like ``fleet``, but the test launches it (to lose a reply during launch)."""
    configure(proxy)
    yield DBOS
    DBOS.destroy(destroy_registry=True)


def within(fn: Callable[[], Any], what: str, timeout: float = BOUND_SEC) -> Any:
    """Call ``fn`` in a thread and return its result; fail, instead of hanging, if it does not
    return within ``timeout`` seconds."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{what} did not return within {timeout}s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def status_of(db, workflow_id: str) -> str | None:
    row = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()
    return row[0] if row else None


def steps_of(db, workflow_id: str) -> list[str]:
    rows = db.execute(
        "SELECT function_name FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY function_id", (workflow_id,)
    )
    return [r[0] for r in rows]


def count(db, query: str, *params: Any) -> int:
    return db.execute(query, params).fetchone()[0]


class Effects:
    """A step body's visible effect: each call is recorded, so a re-run would show."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self._lock = threading.Lock()

    def add(self, value: Any) -> Any:
        with self._lock:
            self.calls.append(value)
        return value


# -- starting workflows --------------------------------------------------------------------------


def test_start_whose_insert_reply_was_lost_runs_its_own_row(fleet, proxy, db):
    effects = Effects()

    @DBOS.step()
    def effect(x):
        return effects.add(x)

    @DBOS.workflow()
    def doubled(x):
        return effect(x) * 2

    def start() -> int:
        with SetWorkflowID("lost-start"):
            return doubled(21)

    rule = proxy.drop_reply("-- Create a workflow that this executor will run at once")
    assert within(start, "a start whose insert reply was lost") == 42
    assert rule.fired.is_set()
    assert effects.calls == [21]
    assert status_of(db, "lost-start") == "SUCCESS"
    assert len(steps_of(db, "lost-start")) == 1
    assert count(db, "SELECT count(*) FROM dbos.workflow_status") == 1


def test_child_start_whose_reply_was_lost_runs_the_child_once(fleet, proxy, db):
    effects = Effects()

    @DBOS.step()
    def effect(x):
        return effects.add(x)

    @DBOS.workflow()
    def child(x):
        return effect(x) + 1

    @DBOS.workflow()
    def parent():
        return DBOS.start_workflow(child, 1).get_result() + child(10)

    def start() -> int:
        with SetWorkflowID("parent"):
            return parent()

    rule = proxy.drop_reply("-- Start a child workflow from a running parent")
    assert within(start, "a parent whose child start reply was lost") == 2 + 11
    assert rule.fired.is_set()
    assert sorted(effects.calls) == [1, 10]
    assert status_of(db, "parent") == "SUCCESS"
    assert status_of(db, "parent-1") == "SUCCESS"
    assert count(db, "SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'parent' AND child_workflow_id = 'parent-1' AND function_id = 1") == 1
    assert count(db, "SELECT count(*) FROM dbos.workflow_status WHERE parent_workflow_id = 'parent' AND status <> 'SUCCESS'") == 0



def test_step_checkpoint_whose_reply_was_lost_counts_once(fleet, proxy, db):
    effects = Effects()

    @DBOS.step()
    def effect(x):
        return effects.add(x)

    @DBOS.workflow()
    def stepper():
        return effect(1) + effect(2)

    def start() -> int:
        with SetWorkflowID("stepper"):
            return stepper()

    rule = proxy.drop_reply("-- Checkpoint one step")
    assert within(start, "a workflow whose step checkpoint reply was lost") == 3
    assert rule.fired.is_set()
    assert effects.calls == [1, 2]  # the retry found its own checkpoint: the body ran once
    assert status_of(db, "stepper") == "SUCCESS"
    assert len(steps_of(db, "stepper")) == 2  # one checkpoint per step, none twice


# -- queues ----------------------------------------------------------------------------------------


def test_claim_whose_reply_was_lost_does_not_stop_a_limited_queue(fleet, proxy, db):
    effects = Effects()
    limited = Queue("limited", concurrency=1)

    @DBOS.step()
    def effect(x):
        return effects.add(x)

    @DBOS.workflow()
    def job(i):
        return effect(i)

    # The first claim takes one row (concurrency 1) and its reply is lost: that row is PENDING
    # under this live executor, and it fills the whole queue's budget until someone runs it.
    rule = proxy.drop_reply("-- Claim up to the free budget of a queue")
    handles = []
    for i in range(3):
        with SetWorkflowID(f"job-{i}"):
            handles.append(limited.enqueue(job, i))
    results = [within(lambda h=h: h.get_result(timeout_seconds=BOUND_SEC), f"{h.workflow_id}") for h in handles]
    assert results == [0, 1, 2]
    assert rule.fired.is_set()
    assert sorted(effects.calls) == [0, 1, 2]
    assert count(db, "SELECT count(*) FROM dbos.workflow_status WHERE queue_name = 'limited' AND status = 'SUCCESS'") == 3


def test_enqueue_from_a_workflow_whose_reply_was_lost_enqueues_once(fleet, proxy, db):
    effects = Effects()
    work = Queue("work")

    @DBOS.step()
    def effect(x):
        return effects.add(x)

    @DBOS.workflow()
    def job(i):
        return effect(i)

    @DBOS.workflow()
    def parent():
        return work.enqueue(job, 7).get_result()

    def start() -> int:
        with SetWorkflowID("enqueuer"):
            return parent()

    rule = proxy.drop_reply("-- Put a workflow on a queue")
    assert within(start, "a workflow whose enqueue reply was lost") == 7
    assert rule.fired.is_set()
    assert effects.calls == [7]
    assert status_of(db, "enqueuer") == "SUCCESS"
    assert count(db, "SELECT count(*) FROM dbos.workflow_status WHERE queue_name = 'work'") == 1


# -- messages, events, streams -----------------------------------------------------------------------


def test_send_whose_reply_was_lost_sends_once(fleet, proxy, db):
    @DBOS.workflow()
    def inbox():
        return DBOS.recv("t", timeout_seconds=BOUND_SEC)

    @DBOS.workflow()
    def sender():
        DBOS.send("inbox", "hello", "t")
        return "sent"

    with SetWorkflowID("inbox"):
        handle = DBOS.start_workflow(inbox)

    def start() -> str:
        with SetWorkflowID("sender"):
            return sender()

    rule = proxy.drop_reply("-- Send a message to a workflow")
    assert within(start, "a sender whose send reply was lost") == "sent"
    assert rule.fired.is_set()
    assert within(lambda: handle.get_result(), "the receiver") == "hello"
    assert status_of(db, "sender") == "SUCCESS"
    assert count(db, "SELECT count(*) FROM dbos.notifications WHERE destination_uuid = 'inbox'") == 1


def test_recv_whose_reply_was_lost_consumes_one_message(fleet, proxy, db):
    @DBOS.workflow()
    def inbox():
        return [DBOS.recv("t", timeout_seconds=BOUND_SEC), DBOS.recv("t", timeout_seconds=BOUND_SEC)]

    rule = proxy.drop_reply("-- Take the oldest unconsumed message")
    with SetWorkflowID("inbox"):
        handle = DBOS.start_workflow(inbox)
    DBOS.send("inbox", "first", "t")
    DBOS.send("inbox", "second", "t")
    # The first receive's reply is lost; its retry must not take "second" for itself.
    assert within(lambda: handle.get_result(), "a receiver whose receive reply was lost") == ["first", "second"]
    assert rule.fired.is_set()
    assert status_of(db, "inbox") == "SUCCESS"
    assert steps_of(db, "inbox").count("DBOS.recv") == 2
    assert count(db, "SELECT count(*) FROM dbos.notifications WHERE destination_uuid = 'inbox' AND consumed") == 2


def test_set_event_whose_reply_was_lost_publishes_once(fleet, proxy, db):
    @DBOS.workflow()
    def publisher():
        DBOS.set_event("state", "ready")
        return "done"

    def start() -> str:
        with SetWorkflowID("publisher"):
            return publisher()

    rule = proxy.drop_reply("-- Publish a workflow's event")
    assert within(start, "a workflow whose set_event reply was lost") == "done"
    assert rule.fired.is_set()
    assert DBOS.get_event("publisher", "state", timeout_seconds=1) == "ready"
    assert status_of(db, "publisher") == "SUCCESS"
    assert count(db, "SELECT count(*) FROM dbos.workflow_events_history WHERE workflow_uuid = 'publisher'") == 1


def test_write_stream_whose_reply_was_lost_appends_once(fleet, proxy, db):
    @DBOS.workflow()
    def writer():
        DBOS.write_stream("out", "a")
        DBOS.write_stream("out", "b")
        return "done"

    def start() -> str:
        with SetWorkflowID("writer"):
            return writer()

    rule = proxy.drop_reply("-- Append a value to one of a workflow's streams")
    assert within(start, "a workflow whose stream write reply was lost") == "done"
    assert rule.fired.is_set()
    assert status_of(db, "writer") == "SUCCESS"
    assert [r[0] for r in db.execute("SELECT \"offset\" FROM dbos.streams WHERE workflow_uuid = 'writer' ORDER BY 1")] == [0, 1]


# -- recovery, resume, registration ------------------------------------------------------------------


def _seed_pending(sys_url: str, workflow_id: str, name: str, args: tuple[Any, ...]) -> None:
    """A PENDING row of this executor id that no process runs: what a killed incarnation leaves."""
    from runtime.serialization import SERIALIZATION_FORMAT, serialize_args

    seed = SystemDatabase(sys_url, pool_size=1)
    seed.open(run_migrations=False)
    try:
        seed.workflows.insert(NewWorkflow(
            workflow_id=workflow_id, name=name, class_name=None, config_name=None,
            authenticated_user=None, assumed_role=None, authenticated_roles=None,
            application_id="", application_name="pgfleet-test",
            inputs=serialize_args(args, {}, workflow_name=name), parent_workflow_id=None,
            serialization=SERIALIZATION_FORMAT, executor_id=EXECUTOR_ID, application_version="",
        ), owner_epoch=seed.workflows.reserve_epoch())
    finally:
        seed.close()


def test_recovery_take_over_whose_reply_was_lost_runs_the_workflow(unlaunched, proxy, sys_url, db, caplog):
    effects = Effects()

    @DBOS.step()
    def effect(x):
        return effects.add(x)

    @DBOS.workflow(name="recovered")
    def recovered(x):
        return effect(x) + 1

    _seed_pending(sys_url, "left-behind", "recovered", (4,))
    rule = proxy.drop_reply("-- Recover one workflow")
    within(DBOS.launch, "a launch whose recovery take-over reply was lost")
    # Recovery runs in the background after launch: the result comes once its take-over did.
    assert within(lambda: DBOS.retrieve_workflow("left-behind").get_result(), "the recovered workflow") == 5
    assert rule.fired.is_set()
    assert effects.calls == [4]
    assert status_of(db, "left-behind") == "SUCCESS"
    # The retried take-over counted its attempt once (the insert counts 1, the recovery 1).
    assert count(db, "SELECT recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid = 'left-behind'") == 2
    assert ORPHAN_ADOPTED not in caplog.text  # the retry knew its own take-over; no rescue needed


def test_resume_whose_reply_was_lost_runs_the_workflow(fleet, proxy, db, caplog):
    effects = Effects()

    @DBOS.step()
    def effect(x):
        return effects.add(x)

    @DBOS.workflow()
    def later(x):
        return effect(x)

    with SetWorkflowID("resumed"), SetEnqueueOptions(delay_seconds=3600):
        Queue("parked").enqueue(later, 3)
    DBOS.cancel_workflow("resumed")
    assert status_of(db, "resumed") == "CANCELLED"
    rule = proxy.drop_reply("-- Resume a workflow that has not finished, as DBOS does")
    handle = within(lambda: DBOS.resume_workflow("resumed"), "a resume whose reply was lost")
    assert rule.fired.is_set()
    assert within(lambda: handle.get_result(), "the resumed workflow") == 3
    assert effects.calls == [3]
    assert status_of(db, "resumed") == "SUCCESS"
    assert ORPHAN_ADOPTED not in caplog.text  # the retry knew its own resume; no rescue needed


def test_register_whose_reply_was_lost_joins_the_cluster(unlaunched, proxy, db):
    @DBOS.workflow()
    def hello():
        return "hello"

    rule = proxy.drop_reply("-- Register this process as executor_id")
    within(DBOS.launch, "a launch whose registration reply was lost")
    assert rule.fired.is_set()
    with SetWorkflowID("after-register"):
        assert within(hello, "a workflow after the registration") == "hello"
    rows = db.execute("SELECT executor_id, status FROM dbos.pgfleet_executors").fetchall()
    assert rows == [(EXECUTOR_ID, "active")]


# -- the orphan sweep's own safety ------------------------------------------------------------------


def test_the_orphan_sweep_never_takes_a_row_a_claim_is_about_to_run(fleet, sys_url, db):
    from runtime import ownership, recovery

    effects = Effects()

    @DBOS.workflow(name="claimed-late")
    def claimed_late(x):
        return effects.add(x)

    executor = DBOS._executor_or_raise("the test")
    writes = DBOS._process().services.owning_writes
    swept: list[int] = []
    with writes.track():  # a claim in flight: its row is committed but not handed to a thread yet
        _seed_pending(sys_url, "claimed", "claimed-late", (1,))
        sweeper = threading.Thread(target=lambda: swept.append(ownership.adopt_orphans(executor, writes, executor.running_epochs)), daemon=True)
        sweeper.start()
        sweeper.join(0.5)
        assert sweeper.is_alive(), "the sweep did not wait for the claim in flight"
        rows = db.execute("SELECT owner_epoch FROM dbos.workflow_status WHERE workflow_uuid = 'claimed'").fetchall()
        assert effects.calls == [] and len(rows) == 1
        # The claim hands its row to a thread, as run_claimed does.
        owned = executor.db.recovery.owned_not_running(EXECUTOR_ID, [])
        recovery.run_assigned(executor, [r for r in owned if r.workflow_uuid == "claimed"])
    sweeper.join(BOUND_SEC)
    assert swept == [0]
    wait_until(lambda: status_of(db, "claimed") == "SUCCESS", "the claimed workflow to finish", timeout=BOUND_SEC)
    assert effects.calls == [1]
