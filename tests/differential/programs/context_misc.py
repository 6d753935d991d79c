"""The rest of #10 item 5's family: DBOSContextEnsure, run_dbos_database_migrations, DBOS.register_instance,
DBOS.alert_handler's rules, and DBOS.tracer. (PropagateOtelContext needs OpenTelemetry, which
DBOS does not install: tests/test_context_api.py covers it.)"""

from dbos import DBOS, DBOSContextEnsure, SetWorkflowID, run_dbos_database_migrations
from observe import attempt, database_url, report, see


@DBOS.workflow()
def plain(x):
    return [x, DBOS.workflow_id]


def handler(name, message, metadata):
    pass


if __name__ == "__main__":
    attempt("alert_handler before DBOS()", lambda: DBOS.alert_handler(handler))
    see("run_dbos_database_migrations", run_dbos_database_migrations(database_url()))
    see("run again: nothing to do", run_dbos_database_migrations(database_url()))
    DBOS(config={"name": "diff-context", "system_database_url": database_url()})
    see("alert_handler returns the function", DBOS.alert_handler(handler) is handler)
    attempt("a second alert_handler", lambda: DBOS.alert_handler(handler))
    DBOS.launch()
    see("tracer", type(DBOS.tracer).__name__)
    with DBOSContextEnsure():
        with DBOSContextEnsure():
            see("nested DBOSContextEnsure", [DBOS.authenticated_user, DBOS.authenticated_roles])
        with SetWorkflowID("in-ensure"):
            see("a workflow in DBOSContextEnsure", plain(1))
    attempt("who after the blocks", lambda: DBOS.authenticated_user)
    DBOS.destroy()
    DBOS(config={"name": "diff-context", "system_database_url": database_url()})
    DBOS.launch()
    attempt("alert_handler after launch", lambda: DBOS.alert_handler(handler))
    DBOS.destroy()
    report()
