"""Workflow versioning: DBOS.patch and DBOS.deprecate_patch (#10 item 5).

The code changes while executions of the old code exist: an execution of the old code (here a
fork of one, which replays its recorded steps) keeps the old path, a new one takes the patched
path, and once the patch is deprecated executions of the patched code still replay.
"""

import psycopg
from dbos import DBOS, SetWorkflowID
from observe import attempt, database_url, report, see

config = {"name": "diff-patching", "system_database_url": database_url(), "enable_patching": True}
DBOS(config=config)
code = "old"  # which version of versioned()'s code is deployed


@DBOS.step()
def old_step():
    return "old"


@DBOS.step()
def new_step():
    return "new"


@DBOS.step()
def last_step():
    return "last"


@DBOS.workflow()
def versioned():
    if code == "old":
        took = old_step()
    elif code == "patched":
        took = new_step() if DBOS.patch("use-new-step") else old_step()
    else:  # deprecated
        DBOS.deprecate_patch("use-new-step")
        took = new_step()
    return [took, last_step()]


@DBOS.step()
def patch_in_step():
    return DBOS.patch("in-step")


@DBOS.workflow()
def patches_in_step():
    return patch_in_step()


@DBOS.workflow()
def twice():
    return [DBOS.patch("a"), DBOS.patch("a"), DBOS.patch("b"), DBOS.deprecate_patch("c")]


def steps(workflow_id):
    with psycopg.connect(database_url(), autocommit=True) as conn:
        return conn.execute(
            "SELECT function_id, function_name, output IS NULL, serialization FROM dbos.operation_outputs"
            " WHERE workflow_uuid = %s ORDER BY function_id",
            (workflow_id,),
        ).fetchall()


def run(workflow_id):
    with SetWorkflowID(workflow_id):
        see(f"{workflow_id} result", versioned())
    see(f"{workflow_id} steps", steps(workflow_id))


def fork(workflow_id, label):
    handle = DBOS.fork_workflow(workflow_id, 2)
    # message=False: a nondeterminism error names the fork's random id.
    attempt(f"{label} result", handle.get_result, message=False)
    see(f"{label} steps", steps(handle.workflow_id))


if __name__ == "__main__":
    DBOS.launch()
    run("old-1")
    see("app version", DBOS.get_workflow_status("old-1").app_version)

    code = "patched"
    fork("old-1", "old execution on patched code")
    run("new-1")
    fork("new-1", "patched execution on patched code")
    with SetWorkflowID("twice-1"):
        see("patches in one workflow", twice())
    see("patches in one workflow steps", steps("twice-1"))
    attempt("patch outside a workflow", lambda: DBOS.patch("x"))
    attempt("deprecate_patch outside a workflow", lambda: DBOS.deprecate_patch("x"))
    attempt("patch in a step", patches_in_step)

    code = "deprecated"
    run("deprecated-1")
    fork("new-1", "patched execution on deprecated code")
    fork("old-1", "old execution on deprecated code (not supported: it must be gone first)")
    DBOS.destroy()

    DBOS(config={"name": "diff-patching", "system_database_url": database_url()})
    DBOS.launch()
    attempt("patch without enable_patching", lambda: DBOS.patch("x"))
    with SetWorkflowID("unpatched-1"):
        attempt("patch in a workflow without enable_patching", twice)
    DBOS.destroy()
    report()
