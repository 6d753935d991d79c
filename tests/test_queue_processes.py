"""Queue semantics across real processes sharing one Postgres (issue 3).

Worker processes (tests/apps/queue_worker.py, tests/apps/queue_restart.py) each launch DBOS
with their own executor id against the test's database. The test process enqueues through
``Queue.enqueue`` from a DBOS that serves no queue (config ``"queues": []``), so it never runs
the work itself. Waits poll the database against deadlines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import run_app, wait_until
from runtime import DBOS, Queue, SetWorkflowID

DEADLINE_SEC = 30.0


class BugObserved(AssertionError):
    """A regression of a bug these tests once caught (see the test's docstring)."""


class Workers:
    """The worker processes of one test; stopped with SIGTERM (killed if they hang) at the end."""

    def __init__(self, sys_url: str, tmp_path: Path) -> None:
        self.sys_url = sys_url
        self.tmp_path = tmp_path
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, scenario: str, executor_id: str) -> subprocess.Popen[str]:
        ready = self.tmp_path / f"ready-{executor_id}"
        proc = run_app("queue_worker.py", scenario, self.sys_url, executor_id, str(ready))
        proc.ready_file = ready  # type: ignore[attr-defined]
        self.procs[executor_id] = proc
        return proc

    def wait_ready(self, *executor_ids: str) -> None:
        for executor_id in executor_ids:
            proc = self.procs[executor_id]

            def ready() -> bool:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    raise AssertionError(f"worker {executor_id} exited with {proc.returncode}: {out}{err}")
                return proc.ready_file.exists()  # type: ignore[attr-defined]

            wait_until(ready, f"worker {executor_id} to launch")

    def stop(self, executor_id: str) -> tuple[str, str]:
        proc = self.procs.pop(executor_id)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"worker {executor_id} did not stop on SIGTERM: {err}") from None
        assert proc.returncode == 0, f"worker {executor_id} exited with {proc.returncode}: {out}{err}"
        return out, err

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
        self.procs.clear()


@pytest.fixture
def workers(sys_url: str, tmp_path: Path) -> Iterator[Workers]:
    fleet = Workers(sys_url, tmp_path)
    try:
        yield fleet
    finally:
        fleet.kill_all()


@pytest.fixture
def enqueuer(sys_url: str) -> Iterator[type]:
    """This process's DBOS: it enqueues and inspects, and serves no queue."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "queue-enqueuer", "system_database_url": sys_url, "executor_id": "enqueuer",
                 "queues": [], "log_level": "WARNING", "application_version": "queue-tests"})
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


@pytest.fixture
def ledger_table(db: psycopg.Connection) -> psycopg.Connection:
    db.execute("CREATE TABLE public.q_ledger (workflow_id text, executor text, started float8, ended float8)")
    return db


def not_here(*_args: object) -> None:
    raise AssertionError("the enqueuing process must never run queued work")


def statuses(db: psycopg.Connection, queue_name: str) -> Counter:
    return Counter(
        s for (s,) in db.execute("SELECT status FROM dbos.workflow_status WHERE queue_name = %s", (queue_name,))
    )


def all_succeeded(db: psycopg.Connection, queue_name: str, count: int) -> Callable[[], bool]:
    def check() -> bool:
        seen = statuses(db, queue_name)
        bad = {s: n for s, n in seen.items() if s not in ("ENQUEUED", "PENDING", "SUCCESS", "DELAYED")}
        assert not bad, f"queue {queue_name}: unexpected statuses {bad}"
        return seen["SUCCESS"] == count

    return check


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t opens)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, 0) for _, end in intervals])
    running = peak = 0
    for _, is_start in events:
        running += 1 if is_start else -1
        peak = max(peak, running)
    return peak


def listener_backends(db: psycopg.Connection, executor_id: str) -> list[int]:
    """Backends of this executor whose session LISTENs for queue wake-ups (their last query is the
    LISTEN itself or the listener's periodic pg_listening_channels() check)."""
    return [
        pid
        for (pid,) in db.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s "
            "AND (query ILIKE 'LISTEN%%' OR query ILIKE '%%pg_listening_channels%%')",
            (f"pgfleet % {executor_id} listener",),  # pgfleet <pid> <executor_id> listener
        )
    ]


# -- 1. fleet-wide and per-executor concurrency --------------------------------------------


def test_three_processes_drain_a_queue_within_its_limits(workers, enqueuer, ledger_table, db):
    executors = ["fleet-1", "fleet-2", "fleet-3"]
    for executor_id in executors:
        workers.start("fleet", executor_id)
    workers.wait_ready(*executors)

    queue = Queue("fleet", concurrency=4, worker_concurrency=2)
    task = DBOS.workflow(name="fleet_task")(not_here)
    handles = [queue.enqueue(task, n) for n in range(60)]
    wait_until(all_succeeded(db, "fleet", 60), "60 fleet workflows to succeed")

    rows = db.execute("SELECT workflow_id, executor, started, ended FROM public.q_ledger").fetchall()
    # Every workflow ran its step exactly once.
    assert sorted(r[0] for r in rows) == sorted(h.workflow_id for h in handles)
    assert all(started < ended for _, _, started, ended in rows)
    # Never more than 4 at once in the fleet, nor more than 2 at once in one executor.
    peak = max_overlap([(s, e) for _, _, s, e in rows])
    assert peak <= 4, f"{peak} workflows ran at once (concurrency=4)"
    per_executor = {x: max_overlap([(s, e) for _, ex, s, e in rows if ex == x]) for x in executors}
    assert all(p <= 2 for p in per_executor.values()), f"per-executor peaks {per_executor} (worker_concurrency=2)"
    # The work was spread: more than one executor ran some, and more than 2 ran at once.
    by_executor = Counter(r[1] for r in rows)
    print(f"fleet: peak {peak}, per-executor peaks {per_executor}, workflows per executor {dict(by_executor)}")
    assert len(by_executor) >= 2, f"only {by_executor} did work"
    assert peak >= 3, f"at most {peak} ran at once: the fleet never used more than one executor's share"
    # The status rows agree with the ledger on who ran what.
    owners = dict(db.execute("SELECT workflow_uuid, executor_id FROM dbos.workflow_status WHERE queue_name='fleet'").fetchall())
    assert {r[0]: r[1] for r in rows} == owners

    for executor_id in executors:
        workers.stop(executor_id)


# -- 2. rate limit ------------------------------------------------------------------------------


def test_rate_limit_holds_across_processes(workers, enqueuer, ledger_table, db):
    executors = ["rate-1", "rate-2"]
    for executor_id in executors:
        workers.start("rate", executor_id)
    workers.wait_ready(*executors)

    queue = Queue("rated", limiter={"limit": 5, "period": 1.0}, polling_interval_sec=0.1)
    task = DBOS.workflow(name="rate_task")(not_here)
    handles = [queue.enqueue(task, n) for n in range(15)]
    wait_until(all_succeeded(db, "rated", 15), "15 rate-limited workflows to succeed")

    # The dequeue times the limiter works on: at most 5 in any rolling second, exactly.
    dequeued = sorted(
        ms for (ms,) in db.execute("SELECT started_at_epoch_ms FROM dbos.workflow_status WHERE queue_name='rated'")
    )
    assert len(dequeued) == 15
    for start in dequeued:
        in_window = [t for t in dequeued if start <= t < start + 1000]
        assert len(in_window) <= 5, f"{len(in_window)} dequeued in the second from {start}: {dequeued}"
    print(f"rate: dequeued at +ms {[t - dequeued[0] for t in dequeued]}, "
          f"by executor {dict(Counter(x for (x,) in db.execute('SELECT executor_id FROM dbos.workflow_status')))}")
    assert dequeued[-1] - dequeued[0] >= 2000  # 15 starts at 5 a second need three windows

    # The workflows' own start times. Each starts after its dequeue, late by the lag of thread
    # start and scheduling (a few ms); workflows that start within one window of (period - the
    # largest lag) were dequeued within one period, so at most 5 of them may fall in it.
    rows = db.execute("SELECT workflow_id, executor, started FROM public.q_ledger").fetchall()
    assert sorted(r[0] for r in rows) == sorted(h.workflow_id for h in handles)
    dequeued_at = dict(db.execute("SELECT workflow_uuid, started_at_epoch_ms FROM dbos.workflow_status WHERE queue_name='rated'").fetchall())
    lags = [started * 1000 - dequeued_at[wf] for wf, _, started in rows]
    assert min(lags) >= -1, "a workflow started before it was dequeued"  # (-1: ms truncation)
    window = (1000 - max(lags) - 1) / 1000
    assert window > 0.5, f"workflows started up to {max(lags):.0f} ms after their dequeue"
    starts = sorted(r[2] for r in rows)
    for start in starts:
        in_window = [t for t in starts if start <= t < start + window]
        assert len(in_window) <= 5, f"{len(in_window)} started within {window:.3f} s of {start}: {starts}"

    for executor_id in executors:
        workers.stop(executor_id)


# -- 9. only registered functions are claimed ------------------------------------------------


def test_a_process_claims_only_workflows_it_has_registered(sys_url, workers, db):
    """This process serves queue "reg" but has not registered foreign_task: it runs its own
    workflows past the foreign one (even with concurrency 1) and leaves it ENQUEUED, until a
    process that registers foreign_task starts and runs it."""
    enqueue_foreign = run_app("queue_worker.py", "foreign-enqueue", sys_url, "foreign-enqueuer", "-")
    out, err = enqueue_foreign.communicate(timeout=60)
    assert enqueue_foreign.returncode == 0, err
    assert statuses(db, "reg") == {"ENQUEUED": 1}

    DBOS.destroy(destroy_registry=True)
    try:
        reg = Queue("reg", concurrency=1)

        @DBOS.workflow(name="own_task")
        def own_task(n: int) -> str:
            return f"own {n} ran on {DBOS.executor_id}"

        DBOS(config={"name": "queue-local", "system_database_url": sys_url, "executor_id": "local",
                     "log_level": "WARNING", "application_version": "queue-tests"})
        DBOS.launch()
        handles = [reg.enqueue(own_task, n) for n in range(3)]
        assert [h.get_result(timeout_seconds=DEADLINE_SEC) for h in handles] == [f"own {n} ran on local" for n in range(3)]

        queued = DBOS.list_queued_workflows(queue_name="reg")
        assert [(w.workflow_id, w.status, w.name, w.executor_id) for w in queued] == [
            ("foreign-1", "ENQUEUED", "foreign_task", None)
        ]

        workers.start("foreign-work", "other")
        result = DBOS.retrieve_workflow("foreign-1").get_result(timeout_seconds=DEADLINE_SEC)
        assert result == "foreign x ran on other"
        assert DBOS.list_queued_workflows(queue_name="reg") == []
        owners = dict(db.execute("SELECT workflow_uuid, executor_id FROM dbos.workflow_status WHERE queue_name='reg'").fetchall())
        assert owners == {"foreign-1": "other", **{h.workflow_id: "local" for h in handles}}
        workers.stop("other")
    finally:
        DBOS.destroy(destroy_registry=True)


# -- 10. restart of a killed worker ------------------------------------------------------------


def test_killed_worker_requeues_and_replays_its_claimed_workflows(sys_url, db, tmp_path):
    ledger = tmp_path / "ledger"
    ids = ["rs-0", "rs-1", "rs-2"]

    def runs() -> list[list[str]]:
        return [line.split() for line in ledger.read_text().splitlines()] if ledger.exists() else []

    crashing = run_app("queue_restart.py", "crash", sys_url, "restart-exec", str(ledger))
    try:
        wait_until(lambda: sorted(wf for step, wf, _ in runs() if step == "two") == ids, "all three to reach step two")
    finally:
        os.kill(crashing.pid, signal.SIGKILL)
        crashing.communicate(timeout=10)
    rows = db.execute(
        "SELECT workflow_uuid, status, executor_id, recovery_attempts FROM dbos.workflow_status ORDER BY 1"
    ).fetchall()
    assert rows == [(wf, "PENDING", "restart-exec", 1) for wf in ids]

    # Restarted with the same executor id, serving no queue: they go back to ENQUEUED and stay.
    idle = run_app("queue_restart.py", "idle", sys_url, "restart-exec", str(ledger))
    out, err = idle.communicate(timeout=60)
    assert idle.returncode == 0, err
    rows = db.execute(
        "SELECT workflow_uuid, status, executor_id, owner_epoch, started_at_epoch_ms FROM dbos.workflow_status ORDER BY 1"
    ).fetchall()
    assert rows == [(wf, "ENQUEUED", None, None, None) for wf in ids]

    # Restarted serving the queue: claimed again, replaying step one, re-running step two.
    working = run_app("queue_restart.py", "work", sys_url, "restart-exec", str(ledger))
    out, err = working.communicate(timeout=60)
    assert working.returncode == 0, err
    assert out.splitlines() == [f"{wf} 6" for wf in ids]

    by_step: dict[tuple[str, str], list[int]] = {}
    for step, wf, pid in runs():
        by_step.setdefault((step, wf), []).append(int(pid))
    for wf in ids:
        assert by_step[("one", wf)] == [crashing.pid], wf  # completed before the kill: never again
        assert by_step[("two", wf)] == [crashing.pid, working.pid], wf
        assert by_step[("three", wf)] == [working.pid], wf
    rows = db.execute(
        "SELECT workflow_uuid, status, executor_id, recovery_attempts FROM dbos.workflow_status ORDER BY 1"
    ).fetchall()
    assert rows == [(wf, "SUCCESS", "restart-exec", 2) for wf in ids]
    steps = db.execute(
        "SELECT workflow_uuid, function_id, function_name, count(*) FROM dbos.operation_outputs "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2"
    ).fetchall()
    assert steps == [
        (wf, n, name, 1) for wf in ids for n, name in ((1, "restart_one"), (2, "restart_two"), (3, "restart_three"))
    ]


# -- 11. wake-ups -----------------------------------------------------------------------------


def pickup_latency_ms(db: psycopg.Connection, workflow_id: str) -> int:
    def started() -> int | None:
        row = db.execute(
            "SELECT started_at_epoch_ms - created_at FROM dbos.workflow_status WHERE workflow_uuid = %s",
            (workflow_id,),
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    return wait_until(started, f"{workflow_id} to be dequeued", timeout=10)  # type: ignore[return-value]


# A NOTIFY wake-up dequeues within a few ms here. Polling cannot explain five dequeues in a row
# under this bound at irregular times: the worker's queue is polled every 30 s, and even at the
# ~1 s that the claimer really polls at (see test_polling_interval_is_honoured) the chance
# would be (0.3)^5 < 0.3 %.
NOTIFY_LATENCY_MS = 300
PAUSES = (0.15, 0.4, 0.05, 0.25, 0.6)


def test_notify_wakes_another_process_and_survives_a_killed_listener(workers, enqueuer, db):
    """A worker whose queue is polled every 30 s starts work enqueued by this process at once:
    the enqueue's NOTIFY wakes it. After its listening connection is terminated it opens a new
    one, and wake-ups work again."""
    workers.start("wake", "waker")
    workers.wait_ready("waker")
    wait_until(lambda: len(listener_backends(db, "waker")) == 1, "the worker's LISTEN connection")

    queue = Queue("wakeq", polling_interval_sec=30)
    task = DBOS.workflow(name="wake_task")(not_here)

    def enqueue_and_measure(tag: str) -> int:
        with SetWorkflowID(tag):
            handle = queue.enqueue(task, 1)
        latency = pickup_latency_ms(db, tag)
        assert handle.get_result(timeout_seconds=DEADLINE_SEC) == 1
        return latency

    enqueue_and_measure("warm-up")  # the worker is past its first claim pass
    latencies = []
    for n, pause in enumerate(PAUSES):
        time.sleep(pause)  # land at different points of any polling cycle
        latencies.append(enqueue_and_measure(f"wake-{n}"))
    print(f"wake: latencies {latencies} ms")
    assert max(latencies) < NOTIFY_LATENCY_MS, f"dequeued {latencies} ms after the enqueue"

    # Kill the listener's connection; the worker notices and LISTENs on a new one.
    (old_pid,) = listener_backends(db, "waker")
    assert db.execute("SELECT pg_terminate_backend(%s)", (old_pid,)).fetchone()[0]
    new_pids = wait_until(
        lambda: [p for p in listener_backends(db, "waker") if p != old_pid],
        "the worker to open a new LISTEN connection",
        timeout=10,
    )
    assert len(new_pids) == 1
    latencies = []
    for n, pause in enumerate(PAUSES):
        time.sleep(pause)
        latencies.append(enqueue_and_measure(f"after-kill-{n}"))
    print(f"wake after the listener was killed: latencies {latencies} ms")
    assert max(latencies) < NOTIFY_LATENCY_MS, f"after the listener was re-opened: dequeued {latencies} ms after the enqueue"
    assert statuses(db, "wakeq") == {"SUCCESS": 1 + 2 * len(PAUSES)}
    workers.stop("waker")


def test_without_listen_notify_polling_runs_queued_work(workers, enqueuer, db):
    workers.start("poll", "poller")
    workers.wait_ready("poller")
    queue = Queue("pollq", polling_interval_sec=0.2)
    task = DBOS.workflow(name="wake_task")(not_here)
    handles = []
    for n in range(3):
        with SetWorkflowID(f"poll-{n}"):
            handles.append(queue.enqueue(task, n))
        time.sleep(0.1)
    assert [h.get_result(timeout_seconds=DEADLINE_SEC) for h in handles] == [0, 1, 2]
    latencies = [pickup_latency_ms(db, h.workflow_id) for h in handles]
    print(f"poll: latencies {latencies} ms")
    assert max(latencies) < 2000, f"dequeued {latencies} ms after the enqueue (polling every 0.2 s)"
    # ... and the worker never opened a LISTEN connection.
    assert listener_backends(db, "poller") == []
    assert db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgfleet % poller'"
    ).fetchone()[0] > 0
    workers.stop("poller")


def test_polling_interval_is_honoured(workers, enqueuer, db):
    """Without LISTEN/NOTIFY a queue is checked every polling_interval_sec (30 s here, jittered
    to 24-36 s): work enqueued by another process just after the worker's first pass waits."""
    workers.start("slow-poll", "slow-poller")
    workers.wait_ready("slow-poller")
    time.sleep(0.3)  # the claimer's first pass, at launch, is over
    queue = Queue("pollq", polling_interval_sec=30)
    task = DBOS.workflow(name="wake_task")(not_here)
    with SetWorkflowID("slow-poll-1"):
        queue.enqueue(task, 1)
    time.sleep(2.5)
    status = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'slow-poll-1'").fetchone()[0]
    if status != "ENQUEUED":
        raise BugObserved(f"dequeued within 2.5 s although the queue is polled every 30 s ({status})")
    workers.stop("slow-poller")
