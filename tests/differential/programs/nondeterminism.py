"""Replays that cannot match what was recorded raise, and promptly (#10 item 7)."""

import threading
import time

from dbos import DBOS, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-nondeterminism", "system_database_url": database_url()})
take_other_path = False
# Holds the first execution between its step and its recv until it was cancelled, so that it
# stops at the recv: what a cancelled execution still records in DBOS is not this program's topic.
gate = threading.Event()


@DBOS.step()
def path_a():
    return "a"


@DBOS.step()
def path_b():
    return "b"


@DBOS.workflow()
def branching():
    first = path_b() if take_other_path else path_a()
    gate.wait(10)
    return [first, DBOS.recv("go", timeout_seconds=20)]


@DBOS.workflow()
def one(x):
    time.sleep(0.3)
    return ("one", x)


@DBOS.workflow()
def other(x):
    return ("other", x)


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("branching-1"):
        handle = DBOS.start_workflow(branching)
    while not DBOS.list_workflow_steps("branching-1"):
        time.sleep(0.02)
    DBOS.cancel_workflow("branching-1")
    gate.set()
    attempt("the cancelled execution", lambda: handle.get_result(), message=False)
    time.sleep(0.5)
    take_other_path = True
    started = time.monotonic()
    resumed = DBOS.resume_workflow("branching-1")
    attempt("replay takes another step at a recorded position", lambda: resumed.get_result(), message=False)
    see("raised within 30 s", time.monotonic() - started < 30)
    see("status after the mismatch", DBOS.get_workflow_status("branching-1").status)

    results = {}

    def start(fn, label):
        with SetWorkflowID("contested-id"):
            try:
                results[label] = ["value", DBOS.start_workflow(fn, 1).get_result()]
            except Exception as exc:
                results[label] = ["raised", type(exc).__name__]

    started = time.monotonic()
    threads = [threading.Thread(target=start, args=(fn, label)) for fn, label in ((one, "one"), (other, "other"))]
    threads[0].start()
    time.sleep(0.05)
    threads[1].start()
    for t in threads:
        t.join(60)
    see("two functions, one id, at once", results)
    see("settled within 30 s", time.monotonic() - started < 30)
    DBOS.destroy()
    report()
