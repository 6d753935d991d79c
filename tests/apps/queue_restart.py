"""A queue worker that is SIGKILLed mid-step and started again (tests/test_queue_processes.py).

    queue_restart.py crash URL EXECUTOR_ID LEDGER   enqueue rs-0..rs-2 on queue "restartq", claim
                                                    them, hang inside each one's second step
    queue_restart.py idle  URL EXECUTOR_ID LEDGER   launch serving no queue (so the unfinished
                                                    queued workflows go back to ENQUEUED and stay
                                                    there), then exit
    queue_restart.py work  URL EXECUTOR_ID LEDGER   launch serving the queue; print each result

Every step appends "<step> <workflow id> <pid>" to LEDGER when it starts.
"""

import os
import sys
import threading

from runtime import DBOS, Queue, SetWorkflowID

mode, url, executor_id, ledger = sys.argv[1:5]
IDS = ["rs-0", "rs-1", "rs-2"]

queue = Queue("restartq", worker_concurrency=3)


def note(step: str) -> None:
    with open(ledger, "a") as f:
        f.write(f"{step} {DBOS.workflow_id} {os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())


@DBOS.step(name="restart_one")
def step_one() -> int:
    note("one")
    return 1


@DBOS.step(name="restart_two")
def step_two() -> int:
    note("two")
    if mode == "crash":
        threading.Event().wait()  # hang here until SIGKILL
    return 2


@DBOS.step(name="restart_three")
def step_three() -> int:
    note("three")
    return 3


@DBOS.workflow(name="restart_task")
def restart_task() -> int:
    return step_one() + step_two() + step_three()


config = {"name": "queue-restart", "system_database_url": url, "executor_id": executor_id, "log_level": "WARNING"}
if mode == "idle":
    config["queues"] = []
DBOS(config=config)
DBOS.launch()
if mode == "crash":
    for workflow_id in IDS:
        with SetWorkflowID(workflow_id):
            queue.enqueue(restart_task)
    threading.Event().wait(120)  # killed long before
elif mode == "work":
    for workflow_id in IDS:
        print(workflow_id, DBOS.retrieve_workflow(workflow_id).get_result(timeout_seconds=60), flush=True)
DBOS.destroy()
