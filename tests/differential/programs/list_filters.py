"""list_workflows and list_queued_workflows filters beyond introspection.py's (#10 items 4, 8)."""

import datetime
import threading
import time

from dbos import DBOS, DBOSContextSetAuth, Queue, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-list-filters", "system_database_url": database_url(), "application_version": "v-lf"})
jobs = Queue("lf-jobs")
held = Queue("lf-held", concurrency=1)
release = threading.Event()


@DBOS.workflow()
def leaf(x):
    return x


@DBOS.workflow()
def parent():
    time.sleep(0.01)  # the records sort by creation time in ms: keep the child's after the parent's
    return leaf(1)


@DBOS.workflow()
def hold():
    release.wait(30)
    return "held"


def ids(statuses):
    return sorted(s.workflow_id for s in statuses)


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("lf-plain"):
        leaf(0)
    time.sleep(0.05)
    marker = time.time()
    time.sleep(0.05)
    with DBOSContextSetAuth("alice", ["admin"]):
        with SetWorkflowID("lf-alice"):
            leaf(2)
    with SetWorkflowID("lf-parent"):
        parent()
    with SetWorkflowID("lf-queued"):
        jobs.enqueue(leaf, 3).get_result()
    with SetWorkflowID("lf-holder"):
        held.enqueue(hold)
    time.sleep(0.01)  # distinct creation times: the sorted listings below must not tie
    with SetWorkflowID("lf-waiting"):
        held.enqueue(leaf, 4)
    with SetWorkflowID("lf-fork"):
        DBOS.fork_workflow("lf-plain", 1).get_result()
    see("user", ids(DBOS.list_workflows(user="alice")))
    see("user list", ids(DBOS.list_workflows(user=["alice", "bob"])))
    see("queue_name", ids(DBOS.list_workflows(queue_name="lf-jobs")))
    see("queue_name list", ids(DBOS.list_workflows(queue_name=["lf-jobs", "lf-held"])))
    see("start_time", ids(DBOS.list_workflows(start_time=iso(marker))))
    see("start and end time", ids(DBOS.list_workflows(start_time=iso(marker - 3600), end_time=iso(marker))))
    see("name list", ids(DBOS.list_workflows(name=["hold", "parent"])))
    see("parent_workflow_id", ids(DBOS.list_workflows(parent_workflow_id="lf-parent")))
    see("forked_from", ids(DBOS.list_workflows(forked_from="lf-plain")))
    see("status and queue", ids(DBOS.list_workflows(status="ENQUEUED", queue_name="lf-held")))
    see("prefix list", ids(DBOS.list_workflows(workflow_id_prefix=["lf-p", "lf-a"])))
    see("was_forked_from", ids(DBOS.list_workflows(was_forked_from=True)))
    see("has_parent", ids(DBOS.list_workflows(has_parent=True)))
    see("queued", ids(DBOS.list_queued_workflows()))
    see("queued by queue", ids(DBOS.list_queued_workflows(queue_name="lf-held", status="ENQUEUED")))
    see("queued sort_desc limit", [s.workflow_id for s in DBOS.list_queued_workflows(sort_desc=True, limit=1)])
    see("offset only", [s.workflow_id for s in DBOS.list_workflows(offset=5)])
    attempt("unknown filter", lambda: ids(DBOS.list_workflows(nonsense=1)), message=False)
    release.set()
    DBOS.retrieve_workflow("lf-waiting").get_result()
    DBOS.destroy()
    report()
