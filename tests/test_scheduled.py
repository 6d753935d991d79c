"""@DBOS.scheduled: ticks enqueued by the leader, each run once, with deterministic ids."""

from __future__ import annotations

import time

import pytest

from runtime import DBOS, DBOSException


def test_scheduled_workflow_runs_every_second_once_per_tick(dbos, db):
    runs = []

    @DBOS.scheduled("* * * * * *")
    @DBOS.workflow()
    def every_second(scheduled_time, actual_time):
        runs.append(scheduled_time)
        assert actual_time >= scheduled_time

    from runtime import scheduler

    deadline = time.monotonic() + 10
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(runs) >= 3
    assert len(set(runs)) == len(runs)  # each tick once
    ids = [r[0] for r in db.execute("SELECT workflow_uuid FROM dbos.workflow_status WHERE workflow_uuid LIKE 'sched-%' ORDER BY 1")]
    assert all(i.startswith("sched-test_scheduled_workflow_runs_every_second_once_per_tick.<locals>.every_second-") for i in ids)


    # A second leader whose view of the last tick is older re-covers the same ticks: it
    # enqueues none of them again (their ids exist), only ticks newer than the last one run.
    from sysdb import SystemDatabase, now_ms

    DBOS.destroy()  # stop this leader: only the replay below enqueues from here on
    first_tick, last_tick, before = db.execute(
        "SELECT min(created_at), max(created_at), count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE 'sched-%'"
    ).fetchone()
    db.execute(
        "UPDATE dbos.pgfleet_leader SET term = term + 100, executor_id = 'replayer', expires_at = now() + interval '1 minute' RETURNING term"
    )
    term = db.execute("SELECT term FROM dbos.pgfleet_leader").fetchone()[0]
    db.execute("UPDATE dbos.pgfleet_schedules SET last_tick_epoch_ms = %s", (first_tick - 1500,))
    replay_db = SystemDatabase(db.info.dsn, pool_size=1)
    replay_db.open(run_migrations=False)
    try:
        enqueued_again = scheduler.enqueue_due_ticks(replay_db, term, "replayer")
    finally:
        replay_db.close()
    new_ticks_possible = (now_ms() - last_tick) / 1000 + 1
    assert enqueued_again <= new_ticks_possible
    after = db.execute("SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE 'sched-%'").fetchone()[0]
    assert after == before + enqueued_again


def test_bad_cron_and_wrong_order_are_rejected(dbos):
    with pytest.raises(DBOSException, match="invalid cron"):
        @DBOS.scheduled("every minute")
        @DBOS.workflow()
        def bad(a, b):
            pass

    with pytest.raises(DBOSException, match="above @DBOS.workflow"):
        @DBOS.workflow()
        @DBOS.scheduled("* * * * *")
        def wrong_order(a, b):
            pass
