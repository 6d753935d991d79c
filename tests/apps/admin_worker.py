"""An executor process for tests/test_workflow_admin.py: another member of the fleet that runs
the workflows the test cancels, deletes or delays from outside.

    admin_worker.py URL EXECUTOR_ID

Serves queue "admin-q". Workflow "gated" runs N steps; each step body first appends a row to
public.side_effects (tests/faults/ledger.py), then waits until the test opens the gate of its
step (a row in public.admin_gates; the wait is bounded), and after each step the workflow sets
event "progress". "gated_parent" starts a "gated" child (id "<parent>-kid") and then runs its
own gated steps. When a workflow stops with an error it prints "stopped <workflow id> <error
type>". Prints "ready" once launched; on "quit" from stdin it destroys DBOS (leaving the fleet)
and exits 0. Gives up by itself after MAX_LIFETIME_SEC so a failed test never leaves it behind.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for faults
import psycopg  # noqa: E402

from faults.ledger import record_step_start  # noqa: E402
from runtime import DBOS, Queue, SetWorkflowID  # noqa: E402

MAX_LIFETIME_SEC = 120
GATE_WAIT_SEC = 60

url, executor_id = sys.argv[1:3]
queue = Queue("admin-q", concurrency=10)


_print_lock = threading.Lock()


def report_stop(exc: BaseException) -> None:
    # One whole line per stop, whatever the threads: print() writes its parts separately.
    with _print_lock:
        sys.stdout.write(f"stopped {DBOS.workflow_id} {type(exc).__name__}\n")
        sys.stdout.flush()


def wait_for_gate(step: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + GATE_WAIT_SEC
        while not conn.execute("SELECT 1 FROM public.admin_gates WHERE step = %s", (step,)).fetchone():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {step} never opened")
            time.sleep(0.02)


@DBOS.step()
def gated_step(i):
    record_step_start(url, executor_id)
    wait_for_gate(i)
    return i


def run_steps(n):
    for i in range(n):
        gated_step(i)
        DBOS.set_event("progress", i)
    return n


@DBOS.workflow(name="gated")
def gated(n):
    try:
        return run_steps(n)
    except BaseException as exc:
        report_stop(exc)
        raise


@DBOS.workflow(name="gated_parent")
def gated_parent(n):
    try:
        with SetWorkflowID(f"{DBOS.workflow_id}-kid"):
            DBOS.start_workflow(gated, n)
        return run_steps(n)
    except BaseException as exc:
        report_stop(exc)
        raise


@DBOS.workflow(name="quick")
def quick(x):
    return x * 2


DBOS(config={
    "name": "admin-test",
    "system_database_url": url,
    "executor_id": executor_id,
    "application_version": "admin-tests",
    "heartbeat_interval_sec": 0.25,
    "member_timeout_sec": 1.5,
    "log_level": "WARNING",
})
DBOS.launch()
print("ready", flush=True)
threading.Timer(MAX_LIFETIME_SEC, lambda: os._exit(3)).start()
for line in sys.stdin:
    if line.strip() == "quit":
        break
DBOS.destroy()
print("left", flush=True)
os._exit(0)
