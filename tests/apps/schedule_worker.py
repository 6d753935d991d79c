"""An executor process for the schedule failover test (tests/test_schedule_failover.py).

    schedule_worker.py URL EXECUTOR_ID

Registers ``schedule_tick(at, context)``, whose step appends a row to public.schedule_runs
(which workflow ran, where) as it starts, so the test counts what actually ran, not only what
was recorded. Prints "ready" once launched. Cluster timings come from PGFLEET_HEARTBEAT /
PGFLEET_MEMBER_TIMEOUT.
"""

import os
import sys
import threading

import psycopg

from runtime import DBOS

url, executor_id = sys.argv[1:3]


@DBOS.step()
def note_run(workflow_id):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.schedule_runs (workflow_id, executor_id) VALUES (%s, %s)", (workflow_id, executor_id))


@DBOS.workflow(name="schedule_tick")
def schedule_tick(at, context):
    note_run(DBOS.workflow_id)
    return [at.isoformat(), context]


DBOS(config={
    "name": "schedule-test",
    "system_database_url": url,
    "executor_id": executor_id,
    "heartbeat_interval_sec": float(os.environ.get("PGFLEET_HEARTBEAT", "0.25")),
    "member_timeout_sec": float(os.environ.get("PGFLEET_MEMBER_TIMEOUT", "1.5")),
})
DBOS.launch()
print("ready", flush=True)
threading.Event().wait()  # serve until killed
