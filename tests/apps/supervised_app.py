"""An app for `pgfleet supervise` in tests/test_supervisor.py: a queue of slow multi-step jobs.

Every step appends "<workflow> <step> <executor> <pid>" to $PGFLEET_TEST_LEDGER when it starts.
With PGFLEET_TEST_BREAK=import the module fails at import; with =hang it never finishes
importing (for the crash-loop and boot-deadline tests).
"""

import os
import time

from runtime import DBOS, Queue

if os.environ.get("PGFLEET_TEST_BREAK") == "import":
    raise RuntimeError("this app is broken on purpose")
if os.environ.get("PGFLEET_TEST_BREAK") == "hang":
    time.sleep(3600)

jobs = Queue("jobs", worker_concurrency=4)


@DBOS.step()
def job_step(job, i):
    with open(os.environ["PGFLEET_TEST_LEDGER"], "a") as f:
        f.write(f"{job} {i} {DBOS.get_context().executor_id} {os.getpid()}\n")
    time.sleep(float(os.environ.get("PGFLEET_TEST_STEP_SECONDS", "0.2")))
    return i


@DBOS.workflow(name="supervised_job")
def supervised_job(job, steps):
    return sum(job_step(job, i) for i in range(steps))
