"""A queue worker process for tests/test_queue_processes.py.

    queue_worker.py SCENARIO URL EXECUTOR_ID READY_FILE

launches DBOS with EXECUTOR_ID against URL, declares the scenario's queue and workflow, writes
READY_FILE, and serves the queue until SIGTERM (then destroys DBOS and exits 0). It gives up by
itself after MAX_LIFETIME_SEC so that a failed test never leaves it behind.

Scenarios:
    fleet           queue "fleet" (concurrency 4, worker_concurrency 2); each workflow runs a
                    ~50 ms step that inserts (workflow, executor, start, end) into public.q_ledger
    rate            queue "rated" (at most 5 starts per second); each workflow inserts its start
    wake            queue "wakeq" polled every 30 s: only LISTEN/NOTIFY can start work quickly
    poll            queue "pollq" polled every 0.2 s, with use_listen_notify False
    slow-poll       queue "pollq" polled every 30 s, with use_listen_notify False
    foreign-enqueue registers foreign_task, serves no queue, enqueues one (id "foreign-1") on
                    queue "reg" and exits at once
    foreign-work    registers foreign_task and serves queue "reg" (concurrency 1)
    dynamic         declares no queue: serves the database-backed queues of its application
                    (DBOS.register_queue); dyn_task runs a ~50 ms step that writes the ledger
"""

import os
import signal
import sys
import threading
import time

import psycopg

from runtime import DBOS, Queue, SetWorkflowID

MAX_LIFETIME_SEC = 120

scenario, url, executor_id, ready_file = sys.argv[1:5]

# One application version for every process of a test (the enqueuing test process included):
# DBOS dequeues only workflows of the executor's own version.
config = {"name": "queue-worker", "system_database_url": url, "executor_id": executor_id, "log_level": "WARNING",
          "application_version": "queue-tests"}

_ledger = None
_ledger_lock = threading.Lock()


def ledger(workflow_id: str, started: float, ended: float) -> None:
    """Insert one row into public.q_ledger on this process's own connection."""
    global _ledger
    with _ledger_lock:
        if _ledger is None:
            _ledger = psycopg.connect(url, autocommit=True)
        _ledger.execute(
            "INSERT INTO public.q_ledger (workflow_id, executor, started, ended) VALUES (%s, %s, %s, %s)",
            (workflow_id, executor_id, started, ended),
        )


if scenario == "fleet":
    Queue("fleet", concurrency=4, worker_concurrency=2)

    @DBOS.step(name="fleet_work")
    def fleet_work() -> None:
        started = time.time()
        time.sleep(0.05)
        ledger(DBOS.workflow_id, started, time.time())

    @DBOS.workflow(name="fleet_task")
    def fleet_task(n: int) -> int:
        fleet_work()
        return n

elif scenario == "rate":
    Queue("rated", limiter={"limit": 5, "period": 1.0}, polling_interval_sec=0.1)

    @DBOS.step(name="rate_work")
    def rate_work() -> None:
        now = time.time()
        ledger(DBOS.workflow_id, now, now)

    @DBOS.workflow(name="rate_task")
    def rate_task(n: int) -> int:
        rate_work()
        return n

elif scenario in ("wake", "poll", "slow-poll"):
    if scenario == "wake":
        Queue("wakeq", polling_interval_sec=30)
    else:
        Queue("pollq", polling_interval_sec=0.2 if scenario == "poll" else 30)
        config["use_listen_notify"] = False

    @DBOS.workflow(name="wake_task")
    def wake_task(n: int) -> int:
        return n

elif scenario in ("foreign-enqueue", "foreign-work"):
    reg = Queue("reg", concurrency=1)
    if scenario == "foreign-enqueue":
        config["queues"] = []

    @DBOS.workflow(name="foreign_task")
    def foreign_task(x: str) -> str:
        return f"foreign {x} ran on {DBOS.executor_id}"

elif scenario == "dynamic":

    @DBOS.step(name="dyn_work")
    def dyn_work() -> None:
        started = time.time()
        time.sleep(0.05)
        ledger(DBOS.workflow_id, started, time.time())

    @DBOS.workflow(name="dyn_task")
    def dyn_task(n: int) -> int:
        dyn_work()
        return n

else:
    sys.exit(f"unknown scenario {scenario!r}")


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())

DBOS(config=config)
DBOS.launch()
if scenario == "foreign-enqueue":
    with SetWorkflowID("foreign-1"):
        reg.enqueue(foreign_task, "x")
    DBOS.destroy()
    sys.exit(0)

with open(ready_file + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(ready_file + ".tmp", ready_file)
stopped = stop.wait(MAX_LIFETIME_SEC)
DBOS.destroy()
sys.exit(0 if stopped else 3)
