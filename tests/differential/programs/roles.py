"""Role-based security and authentication (#10 item 5): required_roles (above and below the
workflow decorator), default_required_roles, DBOSContextSetAuth, DBOSContextEnsure,
set_authentication, and what a workflow's row records (user, roles, assumed role)."""

import re

from dbos import DBOS, DBOSConfiguredInstance, DBOSContextEnsure, DBOSContextSetAuth, Queue, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-roles", "system_database_url": database_url()})
queue = Queue("roles-queue")


def who():
    return [DBOS.authenticated_user, DBOS.authenticated_roles, DBOS.assumed_role]


@DBOS.required_roles(["admin"])
@DBOS.workflow()
def roles_above():
    return who()


@DBOS.workflow()
@DBOS.required_roles(["admin", "user"])
def roles_below():
    return who()


@DBOS.step()
@DBOS.required_roles(["admin"])
def admin_step():
    return who()


@DBOS.workflow()
def child():
    return who()


@DBOS.workflow()
def calls_step_and_child():
    return [who(), admin_step(), child()]


@DBOS.default_required_roles(["staff"])
class Staff:
    @staticmethod
    @DBOS.workflow()
    def any_staff():
        return who()

    @staticmethod
    @DBOS.workflow()
    @DBOS.required_roles(["boss"])
    def boss_only():
        return who()


@DBOS.dbos_class()
class Configured(DBOSConfiguredInstance):
    @DBOS.workflow()
    def method(self):
        return self.config_name


if __name__ == "__main__":
    DBOS.launch()
    attempt("who, outside any context", who)
    attempt("set_authentication outside any context", lambda: DBOS.set_authentication("x", ["y"]))
    attempt("no authentication, roles above", roles_above)
    attempt("no authentication, roles below", roles_below)
    with DBOSContextSetAuth("alice", ["user"]):
        attempt("user: roles above", roles_above)
        with SetWorkflowID("alice-below"):
            attempt("user: roles below", roles_below)
        attempt("who in the block", who)
        with SetWorkflowID("alice-step"):
            attempt("user: a step that needs admin", calls_step_and_child)
        attempt("user: a class default", Staff.any_staff)
    with DBOSContextSetAuth("bob", ["admin", "staff", "boss"]):
        with SetWorkflowID("bob-above"):
            attempt("admin: roles above", roles_above)
        with SetWorkflowID("bob-below"):
            attempt("admin: roles below", roles_below)
        with SetWorkflowID("bob-step"):
            attempt("admin: step and child", calls_step_and_child)
        with SetWorkflowID("bob-staff"):
            attempt("class default", Staff.any_staff)
        with SetWorkflowID("bob-boss"):
            attempt("own roles over the class default", Staff.boss_only)
        with SetWorkflowID("bob-enqueued"):
            attempt("enqueued with the role", queue.enqueue(roles_above).get_result)
    with DBOSContextSetAuth("carol", ["user"]):
        with SetWorkflowID("carol-enqueued"):
            handle = queue.enqueue(roles_above)
        attempt("enqueued without the role", handle.get_result)
        with SetWorkflowID("carol-started"):
            handle = DBOS.start_workflow(roles_above)
        attempt("started without the role", handle.get_result)
    with DBOSContextEnsure():
        DBOS.set_authentication("dave", ["admin"])
        attempt("who after set_authentication", who)
        with SetWorkflowID("dave-above"):
            attempt("after set_authentication", roles_above)
    attempt("who after the block", who)
    instance = Configured("configured-one")
    DBOS.register_instance(instance)
    attempt("register_instance twice, same object", lambda: DBOS.register_instance(instance))
    attempt("another instance of that name", lambda: Configured("configured-one"))
    for status in sorted(DBOS.list_workflows(), key=lambda s: s.workflow_id):
        if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", status.workflow_id):
            see(f"recorded {status.workflow_id}", [status.name, status.status, status.authenticated_user,
                                                   status.authenticated_roles, status.assumed_role])
    DBOS.destroy()
    report()
