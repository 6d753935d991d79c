"""Destroy and launch again in one process; handles after destroy; late decorators (#10 item 9)."""

from dbos import DBOS, SetWorkflowID
from observe import attempt, database_url, report, see

config = {"name": "diff-lifecycle", "system_database_url": database_url()}
DBOS(config=config)


@DBOS.workflow()
def greet(name):
    return f"hi {name}"


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("first-life"):
        handle = DBOS.start_workflow(greet, "one")
    see("first life", handle.get_result())
    DBOS.destroy()
    attempt("handle after destroy", lambda: handle.get_result())
    attempt("start after destroy", lambda: DBOS.start_workflow(greet, "dead"), message=False)
    DBOS(config=config)
    DBOS.launch()
    see("second life", greet("two"))
    see("first life still recorded", DBOS.retrieve_workflow("first-life").get_result())

    @DBOS.workflow()
    def late(x):
        return x + 1

    attempt("decorated after launch", lambda: late(1))
    see("launch twice", DBOS.launch())
    DBOS.destroy()
    DBOS.destroy()
    see("destroy twice", "ok")
    report()
