"""Hosts with skewed clocks agree, because every cross-host time is the database's.

A worker runs with its wall clock 5 s ahead (libfaketime, tests/faults/clock.py) beside one on
the true time. Every instant the tests judge by is read from the database clock by a trigger
the test installs (``public.clock_events``: each insert and status change of a workflow, stamped
with ``clock_timestamp()``), never from a time pgfleet recorded, so a skewed stamp cannot hide a
skewed decision.

- the rate limit holds in every window measured on the database clock;
- delayed work is released neither early by a skewed claimer nor by a skewed leader;
- a deadline recorded by a skewed host counts from the database clock, and the skewed host
  itself honours it: it cancels the workflow neither early nor late;
- scheduled ticks are enqueued when they are due on the database clock.

Processes estimate the database clock (``sysdb.clock.DatabaseClock``) for the decisions they
make alone; the estimate is checked here too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import run_app, wait_until
from faults.clock import libfaketime, skewed_clock_env
from runtime import DBOSAwaitedWorkflowCancelledError

needs_faketime = pytest.mark.skipif(libfaketime() is None, reason="needs libfaketime (apt-get install faketime)")

SKEW_SEC = 5.0
RATE_LIMIT, RATE_PERIOD_MS = 2, 3000  # as tests/apps/clock_worker.py declares queue "clocked"
# Slack for the gap between the instant a claim reads the database clock and the instant its
# UPDATE fires the trigger (same statement: well under a millisecond, rounded to milliseconds).
STAMP_SLACK_MS = 50

EVENTS_SQL = """
CREATE TABLE public.clock_events (workflow_uuid text, status text, executor_id text, at_ms bigint);
CREATE FUNCTION public.log_clock_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO public.clock_events
        VALUES (NEW.workflow_uuid, NEW.status, NEW.executor_id, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER clock_events AFTER INSERT OR UPDATE ON dbos.workflow_status
    FOR EACH ROW EXECUTE FUNCTION public.log_clock_event();
"""


@pytest.fixture
def events(db: psycopg.Connection) -> psycopg.Connection:
    db.execute(EVENTS_SQL)
    return db


@pytest.fixture
def workers(sys_url: str, tmp_path: Path) -> Iterator[Callable[..., dict[str, Any]]]:
    """Start clock_worker.py processes; each returns its ready report (pid, its own time.time())
    plus ``offset_sec``, how far its clock is from the database's."""
    procs: list[subprocess.Popen[str]] = []

    def start(executor_id: str, queues: str, *, skew_sec: float | None = None, extra: tuple[str, ...] = ()) -> dict[str, Any]:
        ready = tmp_path / f"{executor_id}.ready"
        env = skewed_clock_env(skew_sec) if skew_sec is not None else None
        proc = run_app("clock_worker.py", sys_url, executor_id, str(ready), queues, *extra, env=env)
        procs.append(proc)
        wait_until(lambda: ready.exists() or proc.poll() is not None, f"{executor_id} to be ready", timeout=60)
        assert proc.poll() is None, f"{executor_id} died: {proc.communicate()[1][-3000:]}"
        report = json.loads(ready.read_text())
        with psycopg.connect(sys_url) as conn:
            db_now = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]
        return {**report, "offset_sec": report["time"] - db_now}

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def assert_skewed(report: dict[str, Any]) -> None:
    # The report was written just before we read the database clock: a little less than SKEW_SEC.
    assert SKEW_SEC - 1.5 < report["offset_sec"] < SKEW_SEC + 0.5, f"the worker's clock is not skewed: {report}"


def event_ms(db: psycopg.Connection, workflow_id: str, status: str) -> int | None:
    row = db.execute(
        "SELECT min(at_ms) FROM public.clock_events WHERE workflow_uuid = %s AND status = %s", (workflow_id, status)
    ).fetchone()
    return row[0]


def statuses(db: psycopg.Connection, ids: list[str]) -> dict[str, str]:
    return dict(db.execute("SELECT workflow_uuid, status FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)", (ids,)).fetchall())


def all_in(db: psycopg.Connection, ids: list[str], wanted: str) -> bool:
    found = statuses(db, ids)
    return len(found) == len(ids) and set(found.values()) == {wanted}


def enqueue(sys_url: str, queue: str, workflow: str, ids: list[str], **options: Any) -> None:
    from runtime import DBOSClient

    client = DBOSClient(system_database_url=sys_url)
    try:
        for i, workflow_id in enumerate(ids):
            client.enqueue(
                {"workflow_name": workflow, "queue_name": queue, "workflow_id": workflow_id, **options}, *([i] if workflow == "clocked_task" else [])
            )
    finally:
        client.destroy()


@needs_faketime
def test_the_rate_limit_holds_in_every_window_with_one_host_five_seconds_ahead(sys_url, events, workers):
    """The on-time worker starts two; then the worker 5 s ahead looks at the same queue. On its
    own clock the first two started more than a period ago, so a window on host clocks lets it
    start two more at once: four starts in one window whose limit is two."""
    workers("clock-n", "clocked")
    skewed = workers("clock-s", "clocked", skew_sec=SKEW_SEC)
    assert_skewed(skewed)
    os.kill(skewed["pid"], signal.SIGSTOP)  # the on-time worker claims first
    try:
        enqueue(sys_url, "clocked", "clocked_task", ["r0", "r1"])
        wait_until(lambda: all_in(events, ["r0", "r1"], "SUCCESS"), "the first two to run")
        enqueue(sys_url, "clocked", "clocked_task", ["r2", "r3"])
    finally:
        os.kill(skewed["pid"], signal.SIGCONT)
    ids = ["r0", "r1", "r2", "r3"]
    wait_until(lambda: all_in(events, ids, "SUCCESS"), "every workflow to run", timeout=40)
    starts = sorted(events.execute(
        "SELECT at_ms FROM public.clock_events WHERE status = 'PENDING' AND workflow_uuid = ANY(%s)", (ids,)
    ).fetchall())
    starts = [s for (s,) in starts]
    assert len(starts) == 4  # each started once
    for first in starts:
        in_window = [s for s in starts if first <= s < first + RATE_PERIOD_MS - STAMP_SLACK_MS]
        assert len(in_window) <= RATE_LIMIT, f"{len(in_window)} starts within {RATE_PERIOD_MS} ms: {starts}"


@needs_faketime
def test_delayed_work_is_released_neither_early_by_a_skewed_claimer_nor_by_a_skewed_leader(sys_url, events, workers):
    """The worker 5 s ahead is the leader and serves queue later-s; the on-time one serves
    later-n. On host clocks the skewed claimer starts later-s work 5 s early, and the skewed
    leader promotes later-n work 5 s early for the on-time claimer."""
    skewed = workers("clock-s", "later-s", skew_sec=SKEW_SEC)
    assert_skewed(skewed)
    wait_until(
        lambda: events.execute("SELECT 1 FROM dbos.pgfleet_leader WHERE executor_id = 'clock-s' AND expires_at > now()").fetchone(),
        "the skewed worker to lead",
    )
    workers("clock-n", "later-n")
    delay_ms = 8000  # longer than the skew plus the leader's housekeeping period
    enqueue(sys_url, "later-s", "clocked_task", ["d-s"], delay_seconds=delay_ms / 1000)
    enqueue(sys_url, "later-n", "clocked_task", ["d-n"], delay_seconds=delay_ms / 1000)
    wait_until(lambda: all_in(events, ["d-s", "d-n"], "SUCCESS"), "the delayed workflows to run", timeout=40)
    for workflow_id in ("d-s", "d-n"):
        enqueued, started = event_ms(events, workflow_id, "DELAYED"), event_ms(events, workflow_id, "PENDING")
        waited = started - enqueued
        assert waited >= delay_ms - STAMP_SLACK_MS, f"{workflow_id} started {waited} ms after a {delay_ms} ms delay"
        assert waited < delay_ms + 7000, f"{workflow_id} started {waited} ms after a {delay_ms} ms delay"


@needs_faketime
def test_a_deadline_recorded_by_a_skewed_host_counts_on_the_database_clock_and_is_honoured(sys_url, events, workers):
    """The worker 5 s ahead starts one workflow itself under a 3 s timeout and dequeues another
    with a 3 s timeout. Each deadline must be 3 s after its start on the database clock (not
    8 s, as on the worker's clock), and the worker must cancel it at that deadline: not 5 s
    early, as comparing the deadline with its own clock would."""
    enqueue(sys_url, "timed", "slow_task", ["q-timed"], workflow_timeout=3.0)
    skewed = workers("clock-s", "timed", skew_sec=SKEW_SEC, extra=("start-timed",))
    assert_skewed(skewed)
    ids = ["started-here", "q-timed"]
    wait_until(lambda: all_in(events, ids, "CANCELLED"), "both workflows to pass their deadline", timeout=40)
    for workflow_id in ids:
        started = event_ms(events, workflow_id, "PENDING")
        cancelled = event_ms(events, workflow_id, "CANCELLED")
        deadline = events.execute(
            "SELECT workflow_deadline_epoch_ms FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)
        ).fetchone()[0]
        assert abs(deadline - started - 3000) < 500, f"{workflow_id}: deadline {deadline - started} ms after its start"
        assert cancelled >= deadline - STAMP_SLACK_MS, f"{workflow_id} cancelled {deadline - cancelled} ms early"
        assert cancelled < deadline + 3000, f"{workflow_id} cancelled {cancelled - deadline} ms late"
        steps = events.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = %s", (workflow_id,)).fetchone()[0]
        assert steps >= 10, f"{workflow_id} ran only {steps} steps of 0.1 s before a 3 s deadline"


@needs_faketime
def test_a_skewed_leader_enqueues_scheduled_ticks_when_they_are_due_on_the_database_clock(sys_url, events, workers):
    """A leader 5 s ahead would enqueue each tick of a 2 s schedule 5 s before its time."""
    import datetime

    skewed = workers("clock-s", "", skew_sec=SKEW_SEC, extra=("scheduled",))
    assert_skewed(skewed)

    def ticks() -> list[tuple[str, int]]:
        return events.execute(
            "SELECT workflow_uuid, at_ms FROM public.clock_events WHERE workflow_uuid LIKE 'sched-%%' AND status = 'ENQUEUED' ORDER BY at_ms"
        ).fetchall()

    wait_until(lambda: len(ticks()) >= 3, "three scheduled ticks", timeout=30)
    for workflow_id, enqueued_ms in ticks():
        tick = datetime.datetime.fromisoformat(workflow_id.removeprefix("sched-every_two_seconds-"))
        early = int(tick.timestamp() * 1000) - enqueued_ms
        assert early <= STAMP_SLACK_MS, f"{workflow_id} was enqueued {early} ms before its time"


def test_the_database_clock_estimate_follows_the_server_on_the_monotonic_clock(sys_url):
    from sysdb import SystemDatabase
    from sysdb.clock import DatabaseClock

    mono = [100.0]
    clock = DatabaseClock(monotonic=lambda: mono[0])
    assert not clock.synced
    clock.observe(1_000_000, sent=100.0, received=100.25)  # read by the server at about 100.125
    mono[0] = 101.125
    assert clock.now_ms() == 1_001_000  # carried forward on the monotonic clock
    clock.observe(9_000_000, sent=101.125, received=103.125)  # a slow answer: a worse measurement
    assert clock.now_ms() == 1_001_000
    clock.observe(1_001_500, sent=101.5, received=101.625)  # a quicker one replaces it
    mono[0] = 102.5625
    assert clock.now_ms() == 1_002_500
    # A real server: opening syncs the estimate, and on this host it agrees with the wall clock.
    db = SystemDatabase(sys_url, pool_size=1)
    db.open(run_migrations=False)
    try:
        assert db.clock.synced
        assert abs(db.clock.offset_ms()) < 250
    finally:
        db.close()


def test_a_durable_sleep_cut_short_by_its_deadline_ends_cancelled_even_when_the_host_clock_runs_ahead(dbos, db):
    """The deadline is on the database clock, as the check that cancels compares it. A sleep
    that woke by this host's clock (ahead of its estimate of the database clock) found the
    deadline not yet passed and returned, and the workflow finished SUCCESS past its timeout."""
    from runtime import DBOS, SetWorkflowTimeout

    clock = DBOS._executor_or_raise("the test").db.clock
    server_ms, at, rtt = clock._base
    clock._base = (server_ms - 200, at, rtt)  # the estimate 200 ms behind this host's clock ...
    clock.observe = lambda *args: None  # ... and kept there by the heartbeats for this test

    @DBOS.workflow(name="sleeps-past-its-deadline")
    def sleeper() -> str:
        DBOS.sleep(5)
        return "woke"

    with SetWorkflowTimeout(0.5):
        handle = DBOS.start_workflow(sleeper)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s",
                      (handle.workflow_id,)).fetchone()[0] == "CANCELLED"
