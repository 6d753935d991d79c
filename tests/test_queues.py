"""Queue semantics inside one process, on a real Postgres (issue 3).

Priority order, deduplication, partitions, delays, timeouts that start at dequeue, the seed's
batch-of-orders example (and that an enqueue inside a workflow is a checkpointed step that a
replay does not repeat), and the errors for bad queue declarations and enqueues.

The fleet-wide limits, rate limiting, wake-ups and restarts need several processes: they are in
tests/test_queue_processes.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from conftest import wait_until
from runtime import (
    DBOS,
    DBOSAwaitedWorkflowCancelledError,
    DBOSException,
    DBOSQueueDeduplicatedError,
    DBOSWorkflowFunctionNotFoundError,
    Queue,
    SetEnqueueOptions,
    SetWorkflowID,
    SetWorkflowTimeout,
)
from runtime.registry import registry

# Every wait below polls against a deadline; none of them is expected to take more than ~2 s.
DEADLINE_SEC = 15.0


def distinct_millisecond() -> None:
    """Let the clock move past the current millisecond, so the next enqueue's created_at is
    later (same-millisecond enqueues are the subject of their own test)."""
    time.sleep(0.002)


def status_row(db: psycopg.Connection, workflow_id: str) -> dict:
    cur = db.execute(
        "SELECT status, executor_id, created_at, started_at_epoch_ms, delay_until_epoch_ms, "
        "workflow_timeout_ms, workflow_deadline_epoch_ms, updated_at, completed_at, priority, "
        "deduplication_id, queue_name, queue_partition_key, parent_workflow_id "
        "FROM dbos.workflow_status WHERE workflow_uuid = %s",
        (workflow_id,),
    )
    row = cur.fetchone()
    assert row is not None, f"no workflow {workflow_id!r}"
    return dict(zip([c.name for c in cur.description], row))


def workflow_count(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()[0]


class BugObserved(AssertionError):
    """A regression of a bug these tests once caught (see the test's docstring)."""


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """No DBOS launched; the workflow and queue registries are empty before and after."""
    DBOS.destroy(destroy_registry=True)
    yield
    DBOS.destroy(destroy_registry=True)


# -- 3. priority ------------------------------------------------------------------------------


def test_priority_runs_lowest_first_then_fifo(dbos, db):
    queue = Queue("prio", concurrency=1, priority_enabled=True, polling_interval_sec=0.1)
    order: list[str] = []
    gate = threading.Event()
    blocker_running = threading.Event()

    @DBOS.workflow(name="prio_blocker")
    def blocker() -> str:
        blocker_running.set()
        assert gate.wait(DEADLINE_SEC), "the test never released the blocker"
        return "blocker"

    @DBOS.workflow(name="prio_job")
    def job(tag: str) -> str:
        order.append(tag)
        return tag

    first = queue.enqueue(blocker)
    wait_until(blocker_running.is_set, "the blocker to occupy the queue's only slot")

    # (tag, priority): None enqueues without a priority (DBOS: 0, ahead of priority 1).
    plan = [
        ("p5-first", 5), ("p1-first", 1), ("none-first", None), ("p5-second", 5), ("p3", 3),
        ("p1-second", 1), ("none-second", None), ("p1-third", 1), ("none-third", None),
    ]
    handles = []
    for tag, priority in plan:
        with SetEnqueueOptions(priority=priority):
            handles.append(queue.enqueue(job, tag))
        distinct_millisecond()
    # While the blocker runs, nothing else may start (concurrency=1).
    assert order == []
    assert [h.get_status().status for h in handles] == ["ENQUEUED"] * len(plan)
    assert [status_row(db, h.workflow_id)["priority"] for h in handles] == [p or 0 for _, p in plan]

    gate.set()
    assert first.get_result(timeout_seconds=DEADLINE_SEC) == "blocker"
    assert [h.get_result(timeout_seconds=DEADLINE_SEC) for h in handles] == [tag for tag, _ in plan]

    expected = [tag for (_, _, tag) in sorted((p or 0, i, tag) for i, (tag, p) in enumerate(plan))]
    assert order == expected


def test_fifo_holds_for_enqueues_within_one_millisecond(dbos, db, monkeypatch):
    """Sequential enqueues (each committed before the next starts) that share a created_at
    millisecond must still run in enqueue order.

    A fast enqueue loop makes such neighbours by itself (about one in four here), but not
    reliably, so the clock the enqueues read is held still during the burst. The table has a
    history, as every real queue's has: earlier workflows were updated as they ran and
    (auto)vacuum freed their old row versions, so new rows land in the freed slots and heap
    order is no longer insertion order; a tie on (priority, created_at) then comes out in heap
    order.
    """
    import sysdb.workflows

    queue = Queue("fifo", concurrency=1, polling_interval_sec=0.1)
    history = Queue("fifo-history")
    order: list[int] = []
    gate = threading.Event()
    blocker_running = threading.Event()

    @DBOS.workflow(name="fifo_blocker")
    def blocker() -> None:
        blocker_running.set()
        assert gate.wait(DEADLINE_SEC)

    @DBOS.workflow(name="fifo_job")
    def job(n: int) -> int:
        order.append(n)
        return n

    for handle in [history.enqueue(job, -1) for _ in range(60)]:
        handle.get_result(timeout_seconds=DEADLINE_SEC)
    db.execute("VACUUM dbos.workflow_status")
    order.clear()

    first = queue.enqueue(blocker)
    wait_until(blocker_running.is_set, "the blocker to occupy the queue's only slot")
    frozen = sysdb.workflows.now_ms()
    with monkeypatch.context() as patch:
        patch.setattr(sysdb.workflows, "now_ms", lambda: frozen)  # the clock of the enqueue door
        handles = [queue.enqueue(job, n) for n in range(40)]
    if {status_row(db, h.workflow_id)["created_at"] for h in handles} != {frozen}:
        raise RuntimeError("holding sysdb.workflows.now_ms no longer holds the enqueues' created_at")
    gate.set()
    first.get_result(timeout_seconds=DEADLINE_SEC)
    for handle in handles:
        handle.get_result(timeout_seconds=DEADLINE_SEC)
    if order != list(range(len(handles))):
        raise BugObserved(f"dequeued out of enqueue order: {order}")


def test_priority_on_a_queue_without_priority_enabled_raises(dbos, db):
    queue = Queue("no-prio")

    @DBOS.workflow(name="noprio_job")
    def job() -> int:
        return 1

    before = workflow_count(db)
    with SetEnqueueOptions(priority=3):
        with pytest.raises(Exception, match="^Priority is not enabled for queue no-prio. Setting priority will not have any effect.$"):
            queue.enqueue(job)
    assert workflow_count(db) == before  # rejected before anything was written
    # No priority (0 in the row) is fine, as in DBOS.
    with SetEnqueueOptions(priority=None):
        assert queue.enqueue(job).get_result(timeout_seconds=DEADLINE_SEC) == 1


@pytest.mark.parametrize("priority", [0, -1, 2**31, 1.5, True])
def test_an_invalid_priority_raises_in_set_enqueue_options_as_in_dbos(priority):
    with pytest.raises(Exception, match=rf"^Invalid priority {priority}\. Priority must be between 1~2147483647\.$"):
        SetEnqueueOptions(priority=priority)
    assert SetEnqueueOptions(priority=1) and SetEnqueueOptions(priority=2**31 - 1)


# -- 4. deduplication -------------------------------------------------------------------------


def test_deduplication_id_is_unique_while_live_and_free_after(dbos, db):
    queue = Queue("dedup", concurrency=1, polling_interval_sec=0.1)
    other_queue = Queue("dedup-other", polling_interval_sec=0.1)
    gate = threading.Event()
    blocker_running = threading.Event()

    @DBOS.workflow(name="dedup_blocker")
    def blocker() -> str:
        blocker_running.set()
        assert gate.wait(DEADLINE_SEC)
        return "first"

    @DBOS.workflow(name="dedup_job")
    def job(tag: str) -> str:
        if tag == "fail":
            raise ValueError("boom")
        return tag

    with SetEnqueueOptions(deduplication_id="d-running"):
        first = queue.enqueue(blocker)
    wait_until(blocker_running.is_set, "the first workflow to run")
    with SetEnqueueOptions(deduplication_id="d-waiting"):
        waiting = queue.enqueue(job, "waiting")  # ENQUEUED behind the blocker
    assert waiting.get_status().status == "ENQUEUED"
    rows_before = workflow_count(db)

    # A live id (running, or still waiting in the queue) refuses a second enqueue.
    for dedup_id, holder in (("d-running", first), ("d-waiting", waiting)):
        with SetEnqueueOptions(deduplication_id=dedup_id):
            with pytest.raises(DBOSQueueDeduplicatedError) as caught:
                queue.enqueue(job, "duplicate")
        assert caught.value.deduplication_id == dedup_id
        assert caught.value.queue_name == "dedup"
        assert dedup_id in str(caught.value)
        assert status_row(db, holder.workflow_id)["deduplication_id"] == dedup_id
    assert workflow_count(db) == rows_before  # nothing was written for the refused enqueues

    # Deduplication is per queue: another queue may use the same id.
    with SetEnqueueOptions(deduplication_id="d-running"):
        assert other_queue.enqueue(job, "other queue").get_result(timeout_seconds=DEADLINE_SEC) == "other queue"

    gate.set()
    assert first.get_result(timeout_seconds=DEADLINE_SEC) == "first"
    assert waiting.get_result(timeout_seconds=DEADLINE_SEC) == "waiting"
    assert status_row(db, first.workflow_id)["deduplication_id"] is None

    # Finished: the id can be used again, and the new workflow runs.
    with SetEnqueueOptions(deduplication_id="d-running"):
        again = queue.enqueue(job, "again")
    assert again.workflow_id != first.workflow_id
    assert again.get_result(timeout_seconds=DEADLINE_SEC) == "again"

    # A workflow that ends in ERROR releases its id too.
    with SetEnqueueOptions(deduplication_id="d-fail"):
        failed = queue.enqueue(job, "fail")
    with pytest.raises(ValueError, match="boom"):
        failed.get_result(timeout_seconds=DEADLINE_SEC)
    with SetEnqueueOptions(deduplication_id="d-fail"):
        assert queue.enqueue(job, "after failure").get_result(timeout_seconds=DEADLINE_SEC) == "after failure"


# -- 5. partitions ----------------------------------------------------------------------------


def test_partitions_run_concurrently_one_per_key(dbos, db):
    queue = Queue("parts", concurrency=1, partition_queue=True, polling_interval_sec=0.1)
    lock = threading.Lock()
    intervals: dict[str, list[tuple[int, float, float]]] = {"A": [], "B": []}
    # The first workflow of each key waits for the first of the other key: if partitions did
    # not run concurrently the barrier would break and those workflows would fail.
    both_first = threading.Barrier(2, timeout=5)

    @DBOS.workflow(name="part_job")
    def job(key: str, n: int) -> str:
        started = time.monotonic()
        if n == 0:
            both_first.wait()
        time.sleep(0.1)
        with lock:
            intervals[key].append((n, started, time.monotonic()))
        return f"{key}{n}"

    handles = []
    for n in range(3):
        for key in "AB":
            with SetEnqueueOptions(queue_partition_key=key):
                handles.append(queue.enqueue(job, key, n))
            distinct_millisecond()
    assert [h.get_result(timeout_seconds=DEADLINE_SEC) for h in handles] == ["A0", "B0", "A1", "B1", "A2", "B2"]

    for key, runs in intervals.items():
        # FIFO within a partition, and never two at a time in one partition (concurrency=1).
        runs.sort(key=lambda r: r[1])
        assert [n for n, _, _ in runs] == [0, 1, 2], key
        for (_, _, end), (_, next_start, _) in zip(runs, runs[1:]):
            assert end <= next_start, f"partition {key} ran two workflows at once: {runs}"
    # ... while the two partitions ran side by side.
    (_, a_start, a_end), (_, b_start, b_end) = intervals["A"][0], intervals["B"][0]
    assert max(a_start, b_start) < min(a_end, b_end)
    assert {status_row(db, h.workflow_id)["queue_partition_key"] for h in handles} == {"A", "B"}


def test_partition_key_is_required_exactly_on_partitioned_queues(dbos, db):
    partitioned = Queue("parts-strict", partition_queue=True)
    plain = Queue("plain-strict")

    @DBOS.workflow(name="part_strict_job")
    def job() -> int:
        return 1

    before = workflow_count(db)
    with pytest.raises(Exception, match="^A workflow cannot be enqueued on partitioned queue parts-strict without a partition key$"):
        partitioned.enqueue(job)
    with SetEnqueueOptions(queue_partition_key="k"):
        with pytest.raises(Exception, match="^You can only use a partition key on a partition-enabled queue. Key k was used"):
            plain.enqueue(job)
    assert workflow_count(db) == before


# -- 6. delay ---------------------------------------------------------------------------------


def test_delayed_workflow_waits_then_runs(dbos, db):
    queue = Queue("delayed", polling_interval_sec=0.1)

    @DBOS.workflow(name="delayed_job")
    def job() -> float:
        return time.time()

    enqueued_at = time.time()
    with SetEnqueueOptions(delay_seconds=1):
        handle = queue.enqueue(job)
    assert handle.get_status().status == "DELAYED"
    queued = {w.workflow_id: w.status for w in DBOS.list_queued_workflows(queue_name="delayed")}
    assert queued == {handle.workflow_id: "DELAYED"}
    row = status_row(db, handle.workflow_id)
    assert row["started_at_epoch_ms"] is None
    assert row["delay_until_epoch_ms"] >= int(enqueued_at * 1000) + 1000 - 1

    ran_at = handle.get_result(timeout_seconds=DEADLINE_SEC)
    # Not before its delay, by the body's own clock and by the recorded start (how soon after
    # is a matter for the benchmarks, not for a test on a loaded machine).
    assert ran_at >= enqueued_at + 0.999, f"ran {ran_at - enqueued_at:.3f}s after the enqueue"
    row = status_row(db, handle.workflow_id)
    assert row["status"] == "SUCCESS"
    assert row["started_at_epoch_ms"] >= row["delay_until_epoch_ms"]


# -- 7. timeout -------------------------------------------------------------------------------


def test_timeout_of_a_queued_workflow_starts_at_dequeue(dbos, db):
    queue = Queue("timeouts", polling_interval_sec=0.1)

    @DBOS.workflow(name="sleepy")
    def sleepy() -> str:
        DBOS.sleep(600)  # far longer than the test waits: only its deadline can end it
        return "woke"

    with SetWorkflowTimeout(0.5):
        plain = queue.enqueue(sleepy)
        # A delayed one stays unclaimed for 0.3 s, so its deadline can be seen unset before.
        with SetEnqueueOptions(delay_seconds=0.3):
            delayed = queue.enqueue(sleepy)
    row = status_row(db, delayed.workflow_id)
    assert (row["status"], row["workflow_timeout_ms"], row["workflow_deadline_epoch_ms"]) == ("DELAYED", 500, None)

    for handle in (plain, delayed):
        wait_until(lambda: handle.get_status().status == "CANCELLED", f"{handle.workflow_id} to be cancelled", timeout=60)
        with pytest.raises(DBOSAwaitedWorkflowCancelledError):
            handle.get_result(timeout_seconds=DEADLINE_SEC)

    for handle in (plain, delayed):
        row = status_row(db, handle.workflow_id)
        assert row["workflow_timeout_ms"] == 500
        # Cancelled at its deadline (not before it; the 600 s sleep could not have ended).
        assert row["workflow_deadline_epoch_ms"] <= row["updated_at"] == row["completed_at"]
        # Left as DBOS's timeout (a cancel) leaves it: off its queue, its start released.
        assert (row["queue_name"], row["started_at_epoch_ms"]) == (None, None)
    delayed_row = status_row(db, delayed.workflow_id)
    # The deadline counts from the dequeue, so the delayed one's is later than enqueue + 500.
    assert delayed_row["workflow_deadline_epoch_ms"] >= delayed_row["created_at"] + 300 + 500


# -- 8. the seed example ----------------------------------------------------------------------


def _declare_orders(ledger: list[str]) -> tuple[Queue, Callable, Callable]:
    order_queue = Queue("orders", concurrency=10)

    @DBOS.step(name="charge_payment")
    def charge_payment(order_id: str) -> dict:
        ledger.append(order_id)
        return {"charged": True}

    @DBOS.workflow(name="process_order")
    def process_order(order_id: str) -> dict:
        payment = charge_payment(order_id)
        return {"order_id": order_id, "charged": payment["charged"]}

    @DBOS.workflow(name="process_batch")
    def process_batch(orders: list[str]) -> list[dict]:
        handles = [order_queue.enqueue(process_order, o) for o in orders]
        return [h.get_result() for h in handles]

    return order_queue, process_order, process_batch


def _parent_steps(db: psycopg.Connection, workflow_id: str) -> list[tuple]:
    return db.execute(
        "SELECT function_id, function_name, child_workflow_id FROM dbos.operation_outputs "
        "WHERE workflow_uuid = %s ORDER BY function_id",
        (workflow_id,),
    ).fetchall()


def test_seed_batch_of_orders_runs_through_the_queue(dbos, db):
    charged: list[str] = []
    _, _, process_batch = _declare_orders(charged)
    orders = [f"order-{n}" for n in range(1, 6)]

    with SetWorkflowID("batch-1"):
        result = process_batch(orders)
    assert result == [{"order_id": o, "charged": True} for o in orders]
    assert sorted(charged) == orders

    children = [f"batch-1-{n}" for n in range(1, 6)]
    # The parent's steps name its children: five enqueues, then five awaited results.
    assert _parent_steps(db, "batch-1") == (
        [(n, "process_order", c) for n, c in zip(range(1, 6), children)]
        + [(n, "DBOS.getResult", c) for n, c in zip(range(6, 11), children)]
    )
    rows = db.execute(
        "SELECT workflow_uuid, status, queue_name, parent_workflow_id, started_at_epoch_ms IS NOT NULL "
        "FROM dbos.workflow_status WHERE parent_workflow_id = 'batch-1' ORDER BY workflow_uuid"
    ).fetchall()
    assert rows == [(c, "SUCCESS", "orders", "batch-1", True) for c in children]

    # Running the batch again with its id returns the recorded result and enqueues nothing.
    with SetWorkflowID("batch-1"):
        assert process_batch(orders) == result
    assert workflow_count(db) == 6
    assert sorted(charged) == orders


def test_enqueue_inside_a_workflow_is_replayed_not_repeated(sys_url, db):
    """The parent enqueues its children, then its process stops while it waits for them. The
    restarted executor replays the parent: the recorded enqueues return the same handles and
    enqueue nothing new, and the children (run once each) complete the batch."""
    charged: list[str] = []
    orders = ["r-1", "r-2", "r-3"]
    config = {"name": "queue-replay", "system_database_url": sys_url, "executor_id": "replayer", "log_level": "ERROR"}
    DBOS.destroy(destroy_registry=True)
    try:
        _, _, process_batch = _declare_orders(charged)
        # First run: this executor serves no queue, so the children stay ENQUEUED.
        DBOS(config={**config, "queues": []})
        DBOS.launch()
        with SetWorkflowID("batch-r"):
            DBOS.start_workflow(process_batch, orders)
        children = [f"batch-r-{n}" for n in range(1, 4)]
        wait_until(lambda: len(_parent_steps(db, "batch-r")) == 3, "the parent to record its three enqueues")
        first_steps = _parent_steps(db, "batch-r")
        assert first_steps == [(n, "process_order", c) for n, c in zip(range(1, 4), children)]
        statuses = db.execute(
            "SELECT workflow_uuid, status FROM dbos.workflow_status WHERE parent_workflow_id='batch-r' ORDER BY 1"
        ).fetchall()
        assert statuses == [(c, "ENQUEUED") for c in children]
        DBOS.destroy()  # the parent stops while awaiting its first child; it stays PENDING
        assert status_row(db, "batch-r")["status"] == "PENDING"

        # Second run, same executor id, serving every queue: the parent is recovered.
        DBOS(config=config)
        DBOS.launch()
        result = DBOS.retrieve_workflow("batch-r").get_result(timeout_seconds=DEADLINE_SEC)
        assert result == [{"order_id": o, "charged": True} for o in orders]
        assert sorted(charged) == orders  # each child ran once
        steps = _parent_steps(db, "batch-r")
        assert steps[:3] == first_steps
        assert steps[3:] == [(n, "DBOS.getResult", c) for n, c in zip(range(4, 7), children)]
        rows = db.execute(
            "SELECT workflow_uuid, status FROM dbos.workflow_status WHERE parent_workflow_id='batch-r' ORDER BY 1"
        ).fetchall()
        assert rows == [(c, "SUCCESS") for c in children]
        assert workflow_count(db) == 4  # the replay enqueued nothing new
    finally:
        DBOS.destroy(destroy_registry=True)


# -- 12. bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        # DBOS's checks: ValueError with DBOS's texts.
        ({"concurrency": 2, "worker_concurrency": 3}, ValueError, "^concurrency must be greater than or equal to worker_concurrency$"),
        ({"limiter": {"limit": 5}}, ValueError, "^limiter must specify both 'limit' and 'period'$"),
        ({"limiter": {"period": 1.0}}, ValueError, "^limiter must specify both 'limit' and 'period'$"),
        ({"polling_interval_sec": 0}, ValueError, "^polling_interval_sec must be positive$"),
        # pgfleet's checks of the types DBOS leaves unchecked.
        ({"concurrency": -1}, DBOSException, "concurrency must be a non-negative integer, got -1"),
        ({"concurrency": 1.5}, DBOSException, "concurrency must be a non-negative integer"),
        ({"worker_concurrency": -2}, DBOSException, "worker_concurrency must be a non-negative integer"),
        ({"limiter": {"limit": -1, "period": 1.0}}, DBOSException, "limit"),
        ({"limiter": {"limit": 5, "period": 0}}, DBOSException, "period"),
        ({"polling_interval_sec": "1"}, DBOSException, "polling_interval_sec"),
    ],
)
def test_bad_queue_settings_raise(clean_registry, kwargs, error, message):
    with pytest.raises(error, match=message):
        Queue("bad", **kwargs)
    assert registry.queue("bad") is None  # a rejected queue is not declared


def test_a_concurrency_of_zero_is_accepted_as_in_dbos(clean_registry):
    """0 is a paused queue (DBOS accepts it; a database-backed queue is paused with set_concurrency(0))."""
    assert Queue("paused", concurrency=0, worker_concurrency=0).concurrency == 0


def test_queue_declared_twice(clean_registry):
    """As in DBOS, a name declares one queue: a second declaration raises, whatever its settings."""
    first = Queue("twice", concurrency=2)
    for settings in ({"concurrency": 2}, {"concurrency": 3}, {"concurrency": 2, "priority_enabled": True}):
        with pytest.raises(Exception, match="^Queue twice has already been declared$"):
            Queue("twice", **settings)
    assert registry.queue("twice") is first and first.concurrency == 2


def test_enqueue_of_something_that_is_not_a_workflow_raises(dbos, db):
    queue = Queue("not-workflows")

    def plain(x: int) -> int:
        return x

    # A step is accepted: it runs as a one-step workflow, as in DBOS (tests/test_dbos_lifecycle.py).
    for func in (plain, print):
        with pytest.raises(DBOSWorkflowFunctionNotFoundError, match="plain is not a registered workflow function|print is not a registered workflow function"):
            queue.enqueue(func, 1)
    assert workflow_count(db) == 0


def test_enqueue_inside_a_step_raises(dbos, db):
    queue = Queue("from-step")

    @DBOS.workflow(name="from_step_child")
    def child() -> int:
        return 1

    @DBOS.step(name="enqueuing_step")
    def enqueuing_step() -> str:
        try:
            queue.enqueue(child)
        except DBOSException as exc:
            return str(exc)
        return "enqueued"

    @DBOS.workflow(name="from_step_parent")
    def parent() -> str:
        return enqueuing_step()

    assert parent() == "DBOS Error: cannot enqueue workflow 'from_step_child' from inside a step"
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE queue_name = 'from-step'").fetchone()[0] == 0



# -- application versions (beyond the list: DBOS's dequeue rule) -----------------------


def test_only_workflows_of_this_application_version_are_dequeued(dbos, db):
    queue = Queue("versioned", polling_interval_sec=0.1)

    @DBOS.workflow(name="versioned_job")
    def job(tag: str) -> str:
        return tag

    with SetEnqueueOptions(app_version="some-other-version"):
        other = queue.enqueue(job, "other")
    distinct_millisecond()
    mine = queue.enqueue(job, "mine")
    # The later one of this executor's version runs, so a claim pass went past the other one.
    assert mine.get_result(timeout_seconds=DEADLINE_SEC) == "mine"
    time.sleep(0.3)  # a few more polls
    row = status_row(db, other.workflow_id)
    if row["status"] != "ENQUEUED":
        raise BugObserved(
            f"a workflow enqueued for version 'some-other-version' was dequeued ({row['status']}) by "
            f"executor {row['executor_id']!r} of version {DBOS.config.application_version or 'the code hash'!r}"
        )


def test_listen_queues_limits_what_this_process_serves(sys_url, db):
    import time as _time

    from runtime import DBOS, Queue

    DBOS.destroy(destroy_registry=True)
    served, ignored = Queue("served-q", polling_interval_sec=0.1), Queue("ignored-q", polling_interval_sec=0.1)

    @DBOS.workflow(name="listen_job")
    def job():
        return "ran"

    DBOS(config={"name": "listen", "system_database_url": sys_url, "executor_id": "listener"})
    DBOS.listen_queues([served])
    DBOS.launch()
    try:
        assert served.enqueue(job).get_result() == "ran"
        waiting = ignored.enqueue(job)
        _time.sleep(0.5)
        assert waiting.get_status().status == "ENQUEUED"
    finally:
        DBOS.destroy(destroy_registry=True)
