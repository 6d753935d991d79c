"""A database-backed schedule on a fleet of real executor processes: each tick runs once across
the fleet, and when the leader is SIGKILLed the next one carries on with no tick missed and
none run twice (tests/apps/schedule_worker.py records every run as it starts)."""

from __future__ import annotations

import datetime
import os
import signal

import pytest

from conftest import run_app, wait_until
from runtime import DBOSClient

ENV = {"PGFLEET_HEARTBEAT": "0.25", "PGFLEET_MEMBER_TIMEOUT": "1.5"}


@pytest.fixture
def workers(sys_url):
    procs = {}

    def start(executor_id):
        proc = run_app("schedule_worker.py", sys_url, executor_id, env=ENV)
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line
        procs[executor_id] = proc
        return proc

    yield start, procs
    for proc in procs.values():
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def runs(db):
    """The schedule's runs, by tick: {workflow id: status}."""
    return dict(db.execute("SELECT workflow_uuid, status FROM dbos.workflow_status WHERE schedule_name = 'fleet'").fetchall())


def test_each_tick_runs_once_across_the_fleet_and_the_next_leader_misses_none(workers, sys_url, db):
    db.execute("CREATE TABLE public.schedule_runs (workflow_id text, executor_id text)")
    start, procs = workers
    start("worker-a")
    start("worker-b")
    client = DBOSClient(system_database_url=sys_url)
    try:
        client.create_schedule(schedule_name="fleet", workflow_name="schedule_tick", schedule="* * * * * *", context="ctx")
        wait_until(lambda: sum(s == "SUCCESS" for s in runs(db).values()) >= 3, "three ticks run", timeout=60)
        dead = wait_until(lambda: db.execute("SELECT executor_id FROM dbos.pgfleet_leader").fetchone(), "a leader")[0]
        os.kill(procs[dead].pid, signal.SIGKILL)
        procs[dead].wait(10)
        fired_before = len(runs(db))
        wait_until(
            lambda: db.execute("SELECT executor_id FROM dbos.pgfleet_leader WHERE executor_id <> %s", (dead,)).fetchone()
            and len(runs(db)) >= fired_before + 4,
            "the next leader to fire four more ticks", timeout=60,
        )
        client.pause_schedule("fleet")
        fired = runs(db)
        wait_until(lambda: all(s == "SUCCESS" for s in runs(db).values()), "every tick's run to finish", timeout=60)
    finally:
        client.destroy()

    # No tick was missed, through the leader's death: one run per second, first to last.
    ticks = sorted(datetime.datetime.fromisoformat(w.removeprefix("sched-fleet-")) for w in fired)
    assert [(b - a).total_seconds() for a, b in zip(ticks, ticks[1:])] == [1.0] * (len(ticks) - 1)
    # None ran twice: a run's step ran once, or twice only when the dead executor had started it
    # and the survivor took it over.
    ran = db.execute("SELECT workflow_id, array_agg(executor_id) FROM public.schedule_runs GROUP BY workflow_id").fetchall()
    by_id = {w: executors for w, executors in ran}
    assert set(fired) <= set(by_id)
    for workflow_id, executors in by_id.items():
        assert len(executors) == 1 or (len(executors) == 2 and dead in executors and len(set(executors)) == 2), (workflow_id, executors)
