"""An executor process for tests/test_fence_hardening.py.

    fence_worker.py URL EXECUTOR_ID [start WORKFLOW_ID]

Serves the fleet; with "start WORKFLOW_ID" it first starts one workflow of STEPS steps under
that id. Every step body appends a row to public.side_effects (what ran, where, under which
ownership epoch) on a connection of its own: the ledger of bodies that ran, whether or not their
checkpoint was accepted. Between the first and the second step the workflow passes the pause
point "between-steps" (tests/faults/pause.py: the process stops itself there when
PGFLEET_PAUSE_AT names it). When the workflow stops with an error, it prints
"stopped <error type>". Prints "ready" once launched (before starting its workflow). Timings come from PGFLEET_HEARTBEAT and
PGFLEET_MEMBER_TIMEOUT.
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for faults
from faults.ledger import record_step_start  # noqa: E402
from faults.pause import pause_here  # noqa: E402
from runtime import DBOS, SetWorkflowID  # noqa: E402

url, executor_id = sys.argv[1:3]
STEPS = 3


@DBOS.step()
def work(i):
    record_step_start(url, executor_id)
    return {"step": i, "executor_id": executor_id}


@DBOS.workflow(name="fence_steps")
def fence_steps(n):
    try:
        out = []
        for i in range(n):
            out.append(work(i))
            if i == 0:
                pause_here("between-steps")
        return out
    except BaseException as exc:
        print("stopped", type(exc).__name__, flush=True)
        raise


DBOS(config={
    "name": "fence-test",
    "system_database_url": url,
    "executor_id": executor_id,
    "heartbeat_interval_sec": float(os.environ.get("PGFLEET_HEARTBEAT", "0.25")),
    "member_timeout_sec": float(os.environ.get("PGFLEET_MEMBER_TIMEOUT", "1.5")),
})
DBOS.launch()
print("ready", flush=True)  # before starting: the workflow may stop this process at once
if len(sys.argv) > 3 and sys.argv[3] == "start":
    with SetWorkflowID(sys.argv[4]):
        DBOS.start_workflow(fence_steps, STEPS)
threading.Event().wait()  # serve until killed
