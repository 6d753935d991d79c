"""Fork semantics (#10 item 8)."""

import time

from dbos import DBOS, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-forks", "system_database_url": database_url(), "application_version": "v1"})
ran = []


@DBOS.step()
def step_one():
    ran.append(1)
    return 1


@DBOS.step()
def step_two():
    ran.append(2)
    return 2


@DBOS.workflow()
def child(x):
    return x * 10


@DBOS.workflow()
def parent():
    a = step_one()
    c = child(a)
    b = step_two()
    return [a, c, b]


def wait(workflow_id):
    return DBOS.retrieve_workflow(workflow_id).get_result()


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("parent-1"):
        see("original", parent())
    see("original steps", [[s["function_id"], s["function_name"], s["child_workflow_id"]] for s in DBOS.list_workflow_steps("parent-1")])
    ran.clear()
    with SetWorkflowID("fork-chosen-id"):
        forked = DBOS.fork_workflow("parent-1", 3)
    see("fork id honours SetWorkflowID", forked.workflow_id)
    see("fork result", forked.get_result())
    see("steps run again by the fork", ran)
    see("fork steps", [[s["function_id"], s["function_name"], s["child_workflow_id"]] for s in DBOS.list_workflow_steps("fork-chosen-id")])
    status = DBOS.get_workflow_status("fork-chosen-id")
    # (Its application version is not observed: DBOS stamps the dequeuing executor's on a fork
    # made without one, pgfleet leaves it unpinned on purpose; see the README's "Differences".)
    see("forked_from", getattr(status, "forked_from", None))
    other = DBOS.fork_workflow("parent-1", 1, application_version="v2")
    time.sleep(0)
    see("fork with application_version", DBOS.get_workflow_status(other.workflow_id).app_version)
    attempt("start_step 0", lambda: wait(DBOS.fork_workflow("parent-1", 0).workflow_id))
    attempt("start_step past the end", lambda: wait(DBOS.fork_workflow("parent-1", 99).workflow_id))
    attempt("fork of a missing workflow", lambda: DBOS.fork_workflow("no-such-workflow", 1))
    DBOS.destroy()
    report()
