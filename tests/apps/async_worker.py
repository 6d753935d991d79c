"""An executor process whose workflows are ``async def`` (tests/test_async_cluster.py).

    async_worker.py URL EXECUTOR_ID [MODE N]

Modes (without one it only serves the fleet):
    mixed N    starts 3*N async workflows of STEPS steps, each kind on its own loop:
               "<EXECUTOR_ID>-bg-<i>" started with DBOS.start_workflow from sync code (the
               background loop), "<EXECUTOR_ID>-q-<i>" enqueued on queue "async-q" (claimed by
               whichever member serves it: the background loop), then "<EXECUTOR_ID>-aw-<i>"
               awaited together (asyncio.gather) on this program's own loop (asyncio.run).
    admit N    starts N async workflows "admit-a-<i>" and N sync ones "admit-s-<i>" from sync
               code, each writing its start and end to public.q_ledger (admission test).
    pause ID   starts one async workflow under ID (from sync code); between its first and second
               step it passes the pause point "between-steps" (tests/faults/pause.py).
    pause-await ID   the same, awaited on a loop of this program's own.

Each step is an async step whose body first writes a row to public.side_effects (workflow,
position, executor, ownership epoch, pid) on a connection of its own (tests/faults/ledger.py),
in a thread so this loop never waits on it. With PGFLEET_TEST_HANG_STEP=K a step at index K
never ends here (the process is killed or fenced inside it). limits_task (async) and
limits_sync_task (sync), for queue "limits-q" and the admission test, write (workflow, executor,
start, end) of their one step to public.q_ledger.
Prints "ready" once launched and its workflows are started (before awaiting the awaited ones),
"awaited done" once those finished, and "stopped <error type>" for a workflow that stopped.
Timings come from PGFLEET_HEARTBEAT, PGFLEET_MEMBER_TIMEOUT, PGFLEET_TEST_STEP_SECONDS; queue
limits from PGFLEET_Q_CONCURRENCY / PGFLEET_Q_WORKER_CONCURRENCY; admission from
PGFLEET_MAX_THREADS. SIGTERM destroys DBOS (draining for PGFLEET_TEST_GRACE seconds), exit 0.
"""

import asyncio
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for faults
import psycopg  # noqa: E402

from faults.ledger import forget_connection, record_step_start  # noqa: E402
from faults.pause import pause_here  # noqa: E402
from runtime import DBOS, Queue, SetWorkflowID  # noqa: E402
from runtime.context import current_workflow  # noqa: E402

url, executor_id = sys.argv[1:3]
mode = sys.argv[3] if len(sys.argv) > 3 else "serve"
STEPS = int(os.environ.get("PGFLEET_TEST_STEPS", "4"))
STEP_SECONDS = float(os.environ.get("PGFLEET_TEST_STEP_SECONDS", "0.1"))
HANG_STEP = int(os.environ.get("PGFLEET_TEST_HANG_STEP", "-1"))
MAX_LIFETIME_SEC = 180


def _limit(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


queue = Queue("async-q", worker_concurrency=8)
limits_queue = Queue(
    "limits-q", concurrency=_limit("PGFLEET_Q_CONCURRENCY"), worker_concurrency=_limit("PGFLEET_Q_WORKER_CONCURRENCY"),
)


def ledger_row() -> None:
    """record_step_start, on a fresh connection after the server dropped this thread's: the
    ledger is the test's instrument, so a database restart must not fail the step body."""
    deadline = time.monotonic() + 60
    while True:
        try:
            record_step_start(url, executor_id)
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            forget_connection()
            time.sleep(0.2)


@DBOS.step(name="async_work")
async def async_work(i: int) -> dict:
    ctx = current_workflow()
    await asyncio.to_thread(ledger_row)
    if i == HANG_STEP:
        await asyncio.Event().wait()  # until this process is killed
    await asyncio.sleep(STEP_SECONDS)
    return {"step": i, "executor_id": executor_id, "owner_epoch": ctx.owner_epoch, "pid": os.getpid()}


@DBOS.workflow(name="async_long")
async def async_long(n: int) -> list:
    try:
        out = []
        for i in range(n):
            out.append(await async_work(i))
            if i == 0:
                pause_here("between-steps")
        return out
    except BaseException as exc:
        print("stopped", type(exc).__name__, flush=True)
        raise


_ledger_conn: list[psycopg.Connection] = []
_ledger_lock = threading.Lock()


def _limits_row(workflow_id: str, started: float, ended: float) -> None:
    with _ledger_lock:
        if not _ledger_conn:
            _ledger_conn.append(psycopg.connect(url, autocommit=True))
        _ledger_conn[0].execute(
            "INSERT INTO public.q_ledger (workflow_id, executor, started, ended) VALUES (%s, %s, %s, %s)",
            (workflow_id, executor_id, started, ended),
        )


@DBOS.step(name="limits_work")
async def limits_work() -> None:
    started = time.time()
    await asyncio.sleep(STEP_SECONDS)
    await asyncio.to_thread(_limits_row, DBOS.workflow_id, started, time.time())


@DBOS.workflow(name="limits_task")
async def limits_task(n: int) -> int:
    await limits_work()
    return n


@DBOS.step(name="limits_sync_work")
def limits_sync_work() -> None:
    started = time.time()
    time.sleep(STEP_SECONDS)
    _limits_row(DBOS.workflow_id, started, time.time())


@DBOS.workflow(name="limits_sync_task")
def limits_sync_task(n: int) -> int:
    limits_sync_work()
    return n


async def await_all(n: int) -> None:
    async def one(i: int) -> list:
        with SetWorkflowID(f"{executor_id}-aw-{i}"):
            return await async_long(STEPS)

    await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)  # a fenced one stops only itself
    print("awaited done", flush=True)


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
config = {
    "name": "async-cluster-test",
    "system_database_url": url,
    "executor_id": executor_id,
    "heartbeat_interval_sec": float(os.environ.get("PGFLEET_HEARTBEAT", "0.25")),
    "member_timeout_sec": float(os.environ.get("PGFLEET_MEMBER_TIMEOUT", "1.5")),
    "database_retry_timeout_sec": 60,
    "application_version": "async-cluster-test",
}
if os.environ.get("PGFLEET_MAX_THREADS"):
    config["max_executor_threads"] = int(os.environ["PGFLEET_MAX_THREADS"])
DBOS(config=config)
DBOS.launch()
if mode == "mixed":
    n = int(sys.argv[4])
    for i in range(n):
        with SetWorkflowID(f"{executor_id}-bg-{i}"):
            DBOS.start_workflow(async_long, STEPS)
        with SetWorkflowID(f"{executor_id}-q-{i}"):
            queue.enqueue(async_long, STEPS)
    print("ready", flush=True)
    threading.Thread(target=lambda: asyncio.run(await_all(n)), daemon=True).start()
elif mode == "admit":
    n = int(sys.argv[4])
    for i in range(n):
        with SetWorkflowID(f"admit-a-{i}"):
            DBOS.start_workflow(limits_task, i)
        with SetWorkflowID(f"admit-s-{i}"):
            DBOS.start_workflow(limits_sync_task, i)
    print("ready", flush=True)
elif mode == "pause":
    print("ready", flush=True)  # before starting: the workflow may stop this process at once
    with SetWorkflowID(sys.argv[4]):
        DBOS.start_workflow(async_long, STEPS)
elif mode == "pause-await":
    print("ready", flush=True)

    async def await_one() -> None:
        with SetWorkflowID(sys.argv[4]):
            await async_long(STEPS)

    threading.Thread(target=lambda: asyncio.run(await_one()), daemon=True).start()
else:
    print("ready", flush=True)
stopped = stop.wait(MAX_LIFETIME_SEC)
DBOS.destroy(workflow_completion_timeout_sec=float(os.environ.get("PGFLEET_TEST_GRACE", "0")))
sys.exit(0 if stopped else 3)
