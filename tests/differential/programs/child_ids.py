"""Children given ids of their own: a child started under an id that a finished workflow of
the same function holds (its result, nothing run again), of another function (the conflict, as
the parent sees and records it), a child started twice under one id from one parent, and a
parent's replay of each; plus events a child sets and its parent reads."""

from dbos import DBOS, Queue, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-child-ids", "system_database_url": database_url()})
queue = Queue("child-ids-q")
RAN = []


@DBOS.workflow()
def child(x):
    RAN.append(f"child {x}")
    DBOS.set_event("seen", x)
    return x * 10


@DBOS.workflow()
def other(x):
    RAN.append(f"other {x}")
    return -x


@DBOS.workflow()
def parent_reusing(child_id):
    with SetWorkflowID(child_id):
        first = child(1)
    with SetWorkflowID(child_id):
        second = DBOS.start_workflow(child, 2).get_result()
    return [first, second, DBOS.get_event(child_id, "seen", timeout_seconds=1)]


@DBOS.workflow()
def parent_conflicting(child_id):
    seen = []
    for start in (lambda: other(3), lambda: DBOS.start_workflow(other, 4).get_result(),
                  lambda: queue.enqueue(other, 6).get_result(), lambda: queue.enqueue(child, 7).get_result()):
        try:
            with SetWorkflowID(child_id):
                start()
        except Exception as exc:  # noqa: BLE001 - what the parent sees of the conflict
            seen.append([type(exc).__name__, str(exc)])
    seen.append(other(5))  # the positions after the conflicts
    return seen


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("existing-child"):
        see("existing child", child(0))
    with SetWorkflowID("parent-1"):
        see("reusing", parent_reusing("existing-child"))
    with SetWorkflowID("parent-1"):
        see("reusing replayed", parent_reusing("existing-child"))
    with SetWorkflowID("parent-2"):
        see("fresh child twice", parent_reusing("fresh-child"))
    with SetWorkflowID("parent-3"):
        see("conflicting", parent_conflicting("existing-child"))
    with SetWorkflowID("parent-3"):
        see("conflicting replayed", parent_conflicting("existing-child"))
    with SetWorkflowID("existing-child"):
        attempt("conflict outside a workflow", lambda: other(5))
    see("ran", RAN)
    see("parents", {w.workflow_id: w.parent_workflow_id for w in DBOS.list_workflows(workflow_ids=["existing-child", "fresh-child"])})
    DBOS.destroy()
    report()
