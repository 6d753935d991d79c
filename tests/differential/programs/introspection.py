"""Introspection shapes and list filters (#10 item 4)."""

import time

from dbos import DBOS, SetWorkflowID, WorkflowStatusString
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-introspection", "system_database_url": database_url(), "application_version": "v-diff"})
ran = []


@DBOS.step()
def record(x):
    ran.append(x)
    return x


@DBOS.workflow()
def doubler(x):
    return record(x) * 2


@DBOS.workflow()
def waiter():
    record("waiter")
    return DBOS.recv("go", timeout_seconds=30)


def ids(statuses):
    return [s.workflow_id for s in statuses]


if __name__ == "__main__":
    DBOS.launch()
    see("status strings", [WorkflowStatusString.SUCCESS.value, WorkflowStatusString.PENDING.value, WorkflowStatusString.ERROR.value])
    see("enum member", WorkflowStatusString("CANCELLED").name)
    for i in range(4):
        with SetWorkflowID(f"wf-{i}"):
            doubler(i)
        time.sleep(0.01)
    marker = time.time()
    time.sleep(0.01)
    with SetWorkflowID("wf-4"):
        doubler(4)
    see("all", ids(DBOS.list_workflows()))
    see("sort_desc", ids(DBOS.list_workflows(sort_desc=True)))
    see("limit+offset", ids(DBOS.list_workflows(limit=2, offset=1)))
    see("by ids", ids(DBOS.list_workflows(workflow_ids=["wf-3", "wf-1"])))
    see("by name", ids(DBOS.list_workflows(name="doubler")))
    see("status list", ids(DBOS.list_workflows(status=["SUCCESS", "ERROR"])))
    see("status string", ids(DBOS.list_workflows(status="ERROR")))
    see("app_version", ids(DBOS.list_workflows(app_version="v-diff")))
    see("other app_version", ids(DBOS.list_workflows(app_version="v-other")))
    see("end_time", ids(DBOS.list_workflows(end_time=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(marker)) + f".{int(marker * 1000) % 1000:03d}Z")))
    see("prefix", ids(DBOS.list_workflows(workflow_id_prefix="wf-1")))
    light = DBOS.list_workflows(workflow_ids=["wf-2"], load_input=False, load_output=False)[0]
    see("unloaded input/output", [light.input, light.output])
    full = DBOS.list_workflows(workflow_ids=["wf-2"])[0]
    see("loaded input/output", [full.input, full.output, full.app_version, full.status, full.name])
    attempt("step info is a dict", lambda: sorted(DBOS.list_workflow_steps("wf-2")[0].keys()))
    handle = DBOS.start_workflow(waiter)
    while not DBOS.list_workflow_steps(handle.workflow_id):
        time.sleep(0.02)
    DBOS.cancel_workflow(handle.workflow_id)
    see("cancelled", handle.get_status().status)
    DBOS.resume_workflow(handle.workflow_id)
    DBOS.send(handle.workflow_id, "went", "go")
    see("resumed result", handle.get_result())
    see("waiter step ran once", ran.count("waiter"))
    see("waiter steps", [s["function_name"] for s in DBOS.list_workflow_steps(handle.workflow_id)])
    see("recovery attempts after resume", DBOS.get_workflow_status(handle.workflow_id).recovery_attempts)
    DBOS.destroy()
    report()
