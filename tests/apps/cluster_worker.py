"""An executor process for the cluster tests (tests/test_cluster.py).

    cluster_worker.py URL EXECUTOR_ID [start N]

Serves the fleet; with "start N" it first starts N workflows of its own (ids "<EXECUTOR_ID>-wf-<i>").
Each workflow runs STEPS steps; every step body appends a row to public.side_effects (what ran,
where, under which ownership epoch) before sleeping a little, then returns who ran it, so the
recorded outputs show which owner wrote each checkpoint. Prints "ready" once launched.
Cluster timings come from PGFLEET_HEARTBEAT / PGFLEET_MEMBER_TIMEOUT.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for faults
from faults.ledger import record_step_start  # noqa: E402
from runtime import DBOS, Queue, SetWorkflowID  # noqa: E402
from runtime.context import current_workflow  # noqa: E402

url, executor_id = sys.argv[1:3]
STEPS = int(os.environ.get("PGFLEET_TEST_STEPS", "6"))
STEP_SECONDS = float(os.environ.get("PGFLEET_TEST_STEP_SECONDS", "0.2"))
Queue("cluster-q", concurrency=4)


@DBOS.step()
def work(i):
    ctx = current_workflow()
    record_step_start(url, executor_id)
    time.sleep(STEP_SECONDS)
    return {"step": i, "executor_id": executor_id, "owner_epoch": ctx.owner_epoch, "pid": os.getpid()}


@DBOS.workflow(name="cluster_long")
def cluster_long(n):
    return [work(i) for i in range(n)]


DBOS(config={
    "name": "cluster-test",
    "system_database_url": url,
    "executor_id": executor_id,
    "heartbeat_interval_sec": float(os.environ.get("PGFLEET_HEARTBEAT", "0.25")),
    "member_timeout_sec": float(os.environ.get("PGFLEET_MEMBER_TIMEOUT", "1.5")),
    "database_retry_timeout_sec": 60,
})
DBOS.launch()
if len(sys.argv) > 3 and sys.argv[3] == "start":
    for i in range(int(sys.argv[4])):
        with SetWorkflowID(f"{executor_id}-wf-{i}"):
            DBOS.start_workflow(cluster_long, STEPS)
print("ready", flush=True)
threading.Event().wait()  # serve until killed
