"""A worker process for tests/test_clocks.py, usually run with its wall clock shifted
(tests/faults/clock.py).

    clock_worker.py URL EXECUTOR_ID READY_FILE QUEUES [start-timed] [scheduled]

launches DBOS with EXECUTOR_ID against URL and serves the comma-separated QUEUES (every queue is
declared in every process). With ``start-timed`` it also starts ``slow_task`` itself under a 3 s
timeout, with id "started-here"; with ``scheduled`` it declares ``every_two_seconds``, scheduled every 2 s.
READY_FILE receives ``{"pid": ..., "time": time.time()}``, so the
test can check that this process's clock is really shifted. Serves until SIGTERM, or gives up
after MAX_LIFETIME_SEC so that a failed test never leaves it behind.

Queues:
    clocked     at most 2 starts per RATE_PERIOD_SEC; clocked_task returns at once
    later-s     delayed work (served by one process)
    later-n     delayed work (served by another)
    timed       slow_task runs 0.1 s steps until it is cancelled (or 30 s pass)
"""

import json
import os
import signal
import sys
import threading
import time

from runtime import DBOS, Queue, SetWorkflowID, SetWorkflowTimeout

MAX_LIFETIME_SEC = 120
RATE_PERIOD_SEC = 3.0

url, executor_id, ready_file, queues = sys.argv[1:5]
start_timed = "start-timed" in sys.argv[5:]

Queue("clocked", limiter={"limit": 2, "period": RATE_PERIOD_SEC}, polling_interval_sec=0.1)
Queue("later-s", polling_interval_sec=0.1)
Queue("later-n", polling_interval_sec=0.1)
Queue("timed", polling_interval_sec=0.1)


@DBOS.workflow(name="clocked_task")
def clocked_task(n: int) -> int:
    return n


@DBOS.step(name="tick")
def tick() -> None:
    time.sleep(0.1)


@DBOS.workflow(name="slow_task")
def slow_task() -> str:
    for _ in range(300):
        tick()
    return "never cancelled"


if "scheduled" in sys.argv[5:]:
    @DBOS.scheduled("*/2 * * * * *")  # every 2 s (6 fields: seconds first)
    @DBOS.workflow(name="every_two_seconds")
    def every_two_seconds(scheduled_time, actual_time) -> None:
        pass


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())

DBOS(config={
    "name": "clock-worker", "system_database_url": url, "executor_id": executor_id, "log_level": "WARNING",
    "application_version": "clock-tests", "queues": [q for q in queues.split(",") if q],
})
DBOS.launch()
if start_timed:
    with SetWorkflowID("started-here"), SetWorkflowTimeout(3.0):
        DBOS.start_workflow(slow_task)

with open(ready_file + ".tmp", "w") as f:
    json.dump({"pid": os.getpid(), "time": time.time()}, f)
os.replace(ready_file + ".tmp", ready_file)
stopped = stop.wait(MAX_LIFETIME_SEC)
DBOS.destroy()
sys.exit(0 if stopped else 3)
