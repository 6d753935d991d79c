"""A workflow that crashes its process at every execution, with max_recovery_attempts=2: child
processes of this program start it and recover it, each killed with SIGKILL inside its step,
until the limit is passed; this process then launches and finds it dead-lettered. Compared: the
status and recovery_attempts after each crash, what get_result raises, what a resume does, and
the step bodies that ran (a ledger file)."""

import os
import subprocess
import sys
import time

from dbos import DBOS, SetWorkflowID
from observe import attempt, database_url, report, see

LEDGER = os.environ.get("RECOVERY_LEDGER", "")
DBOS(config={"name": "diff-recovery-limits", "system_database_url": database_url()})


def ledger(entry):
    with open(LEDGER, "a") as f:
        f.write(entry + "\n")


@DBOS.step()
def crashes_while_the_children_run(tag):
    ledger(tag)
    if os.environ.get("RECOVERY_CHILD"):
        ledger("child-waiting")
        time.sleep(60)  # killed here
    return tag


@DBOS.workflow(max_recovery_attempts=2)
def fragile():
    return crashes_while_the_children_run("fragile-step")


def child():
    DBOS.launch()  # recovers what the last child left (none for the first)
    if os.environ.get("RECOVERY_CHILD") == "first":
        with SetWorkflowID("fragile-1"):
            DBOS.start_workflow(fragile)
    time.sleep(60)


def waiting_children():
    return open(LEDGER).read().split().count("child-waiting") if os.path.exists(LEDGER) else 0


def run_child(which, done):
    """Run one child until ``done()`` (its step started, or the workflow was dead-lettered)."""
    proc = subprocess.Popen([sys.executable, __file__], env={**os.environ, "RECOVERY_LEDGER": LEDGER, "RECOVERY_CHILD": which})
    deadline = time.monotonic() + 60
    while not done() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.kill()
    proc.wait()


def row():
    """The workflow's status and recovery_attempts, read with psycopg (this process has not
    launched yet)."""
    import psycopg

    with psycopg.connect(database_url()) as conn:
        return list(conn.execute("SELECT status, recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid = 'fragile-1'").fetchone())


def parent():
    for crash, label in enumerate(["first", "second", "third"], start=1):
        run_child("first" if crash == 1 else "again", lambda n=crash: waiting_children() >= n)
        see(f"after the {label} crash", row())
    run_child("last", lambda: row()[0] == "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
    see("after the fourth launch", row())
    DBOS.launch()
    see("status", [DBOS.get_workflow_status("fragile-1").status, DBOS.get_workflow_status("fragile-1").recovery_attempts])
    attempt("result", DBOS.retrieve_workflow("fragile-1").get_result)
    see("ledger", sorted(open(LEDGER).read().split()))
    handle = DBOS.resume_workflow("fragile-1")
    see("resumed result", handle.get_result())
    see("resumed status", [DBOS.get_workflow_status("fragile-1").status, DBOS.get_workflow_status("fragile-1").recovery_attempts])
    see("steps", [[s["function_id"], s["function_name"].split(".")[-1], s["output"]] for s in DBOS.list_workflow_steps("fragile-1")])
    # A resumed workflow goes onto DBOS's internal queue in both; kept, so the rows match.
    report()
    DBOS.destroy()


if __name__ == "__main__":
    if os.environ.get("RECOVERY_CHILD"):
        child()
    else:
        LEDGER = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"recovery-limits-ledger-{os.getpid()}.txt")
        try:
            parent()
        finally:
            if os.path.exists(LEDGER):
                os.remove(LEDGER)
