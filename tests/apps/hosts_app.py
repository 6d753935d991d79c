"""An app for `pgfleet supervise` in tests/test_hosts.py (two supervisors as two "hosts").

A queue "jobs" of multi-step workflows "hosts_job" (and "hosts_sleepy": a step, a durable sleep,
another step). Each step body first appends one line to $PGFLEET_TEST_LEDGER (a file per host):

    <unix time> <workflow id> <step> <executor id> <owner epoch> <host name> <pid>

then sleeps $PGFLEET_TEST_STEP_SECONDS and returns who ran it, so the recorded step outputs
show which owner (executor id and ownership epoch) wrote each checkpoint. The ledger is the
side-effect record: a step body that ran but whose output was never recorded shows up there
and not in dbos.operation_outputs.
"""

import os
import socket
import time

from runtime import DBOS, Queue
from runtime.context import current_workflow

jobs = Queue("jobs", worker_concurrency=4)
STEP_SECONDS = float(os.environ.get("PGFLEET_TEST_STEP_SECONDS", "0.25"))


@DBOS.step()
def host_step(job, i):
    ctx = current_workflow()
    who = {
        "job": job,
        "step": i,
        "executor_id": ctx.executor_id,
        "owner_epoch": ctx.owner_epoch,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    with open(os.environ["PGFLEET_TEST_LEDGER"], "a") as f:
        f.write(f"{time.time():.6f} {job} {i} {ctx.executor_id} {ctx.owner_epoch} {who['host']} {who['pid']}\n")
    time.sleep(STEP_SECONDS)
    return who


@DBOS.workflow(name="hosts_job")
def hosts_job(job, steps):
    return [host_step(job, i) for i in range(steps)]


@DBOS.workflow(name="hosts_sleepy")
def hosts_sleepy(job, seconds):
    """A step, a durable sleep (no database contact while it lasts), another step."""
    first = host_step(job, 0)
    DBOS.sleep(seconds)
    return [first, host_step(job, 1)]
