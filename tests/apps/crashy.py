"""A program that is killed mid-workflow and started again (tests/test_recovery.py).

    crashy.py start URL LEDGER      start workflow "crash-wf" and hang inside its second step
    crashy.py sleep URL LEDGER      start workflow "sleep-wf", which sleeps 600 s after a step
    crashy.py recover URL LEDGER    launch (recovering pending workflows) and print the results

Every step appends "<step> <pid>" to LEDGER when it starts, so the test can tell which steps
ran in which process. The executor id is the default one, as a user would run it.
"""

import os
import sys
import threading

from runtime import DBOS, SetWorkflowID

mode, url, ledger = sys.argv[1:4]


def note(what: str) -> None:
    with open(ledger, "a") as f:
        f.write(f"{what} {os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())


@DBOS.step()
def step_one():
    note("step_one")
    return 1


@DBOS.step()
def step_two():
    note("step_two")
    if mode == "start":
        threading.Event().wait()  # hang here until SIGKILL
    return 2


@DBOS.step()
def step_three():
    note("step_three")
    return 3


@DBOS.workflow()
def crash_wf():
    return step_one() + step_two() + step_three()


@DBOS.workflow()
def sleep_wf():
    step_one()
    DBOS.sleep(600)
    note("woke")
    return "rested"


DBOS(config={"name": "crashy", "system_database_url": url})
DBOS.launch()
if mode == "start":
    with SetWorkflowID("crash-wf"):
        crash_wf()
elif mode == "sleep":
    with SetWorkflowID("sleep-wf"):
        sleep_wf()
else:
    print("ready", flush=True)
    for workflow_id in sys.argv[4:]:
        print(workflow_id, DBOS.retrieve_workflow(workflow_id).get_result(), flush=True)
DBOS.destroy()
