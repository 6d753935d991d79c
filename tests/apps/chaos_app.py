"""The app of the fleet chaos run (tests/test_chaos_fleet.py), served by `pgfleet supervise`.

- ``chaos_job(n)`` (enqueued on the queue "chaos", which has a fleet-wide concurrency limit and a
  per-worker one): a step, a child workflow called directly (itself one step), a durable sleep,
  another step, then an event "result" and its result.
- ``chaos_fanout(n, width)`` (enqueued too): starts ``width`` ``chaos_job`` workflows directly
  (not queued: owned by its executor, so a takeover assigns them to a live member), runs a
  step, and returns their results.

Every step body first appends a row to the side-effect ledger ``public.chaos_ledger`` (created
by the test; see tests/chaos_history.py) on its own autocommit connection, naming the workflow,
the step position, the process, and the fencing token it runs under (executor id and ownership
epoch), with the time the body was entered; only then does it do its "effect" (a short sleep)
and return a value computed from its arguments, which pgfleet records. A row in the ledger is
therefore proof that a body started, whether or not its output was ever recorded.
"""

import os
import threading
import time

import psycopg

from runtime import DBOS, Queue
from runtime.context import current_workflow

URL = os.environ["PGFLEET_SYSTEM_DATABASE_URL"]
STEP_SECONDS = float(os.environ.get("PGFLEET_CHAOS_STEP_SECONDS", "0.05"))
SLEEP_SECONDS = float(os.environ.get("PGFLEET_CHAOS_SLEEP_SECONDS", "0.3"))
# Ledger writes wait out a Postgres restart; past this the body fails (and the run shows it).
LEDGER_DEADLINE_SEC = 120.0

chaos_queue = Queue(
    "chaos",
    concurrency=int(os.environ.get("PGFLEET_CHAOS_CONCURRENCY", "8")),
    worker_concurrency=int(os.environ.get("PGFLEET_CHAOS_WORKER_CONCURRENCY", "3")),
)
_local = threading.local()


def _ledger_start(step: str) -> None:
    """Record that this step body started, before it does anything else."""
    started = time.time()  # first of all: the moment the body was entered
    ctx = current_workflow()
    assert ctx is not None and ctx.step_id is not None, "a chaos step runs inside a workflow"
    row = (ctx.workflow_id, ctx.step_id, step, os.getpid(), ctx.executor_id, ctx.owner_epoch, started)
    deadline = time.monotonic() + LEDGER_DEADLINE_SEC
    while True:
        try:
            conn = getattr(_local, "conn", None)
            if conn is None or conn.closed:
                conn = _local.conn = psycopg.connect(URL, autocommit=True, application_name="chaos-ledger", connect_timeout=5)
            conn.execute(
                "INSERT INTO public.chaos_ledger (workflow_id, function_id, step, pid, executor_id, owner_epoch, started_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s))",
                row,
            )
            return
        except psycopg.OperationalError:
            _local.conn = None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@DBOS.step()
def chaos_step(n: int, k: int) -> int:
    _ledger_start("chaos_step")
    time.sleep(STEP_SECONDS)
    return n * 10 + k


@DBOS.workflow(name="chaos_child")
def chaos_child(n: int) -> int:
    return chaos_step(n, 5) + 1


@DBOS.workflow(name="chaos_job")
def chaos_job(n: int) -> dict:
    a = chaos_step(n, 1)
    child = chaos_child(n)
    DBOS.sleep(SLEEP_SECONDS)
    b = chaos_step(n, 2)
    result = {"n": n, "a": a, "child": child, "b": b}
    DBOS.set_event("result", result)
    return result


@DBOS.workflow(name="chaos_fanout")
def chaos_fanout(n: int, width: int) -> dict:
    handles = [DBOS.start_workflow(chaos_job, n * 100 + i) for i in range(width)]
    first = chaos_step(n, 0)
    result = {"n": n, "first": first, "jobs": [h.get_result() for h in handles]}
    DBOS.set_event("result", result)
    return result
