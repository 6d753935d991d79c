"""Errors a program's own code raises, as they come back: an exception with several constructor
arguments and attributes, and a chained one, from a step, a workflow, a child and a queued
workflow; their class, message and attributes through get_result, a replay, a client, the step
listing and the status.

Left out, as documented differences (README): an error pickle cannot write, or cannot read
back, is recorded by pgfleet as an equivalent Exception ("Type: message"); DBOS raises pickle's
TypeError in its place."""

from dbos import DBOS, DBOSClient, Queue, SetWorkflowID
from observe import database_url, report, see

DBOS(config={"name": "diff-raised-errors", "system_database_url": database_url()})
queue = Queue("err-q")


class TwoArgs(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


@DBOS.step()
def raises(kind):
    if kind == "two":
        raise TwoArgs(7, "seven")
    if kind == "chained":
        try:
            {}["missing"]
        except KeyError as exc:
            raise ValueError("while looking up") from exc
    return kind


@DBOS.workflow()
def runs(kind):
    return raises(kind)


@DBOS.workflow()
def catches(kind):
    try:
        raises(kind)
    except Exception as exc:  # noqa: BLE001 - what a workflow sees of its step's error
        return [type(exc).__name__, str(exc), getattr(exc, "code", None), getattr(exc, "reason", None)]
    return "no error"


@DBOS.workflow()
def parent(kind):
    try:
        runs(kind)
    except Exception as exc:  # noqa: BLE001
        return [type(exc).__name__, str(exc)]
    return "no error"


def describe(exc):
    if not isinstance(exc, BaseException):  # what a listing gives for an error it cannot decode
        return ["not an exception", type(exc).__name__, str(exc)[:120]]
    return [type(exc).__name__, str(exc), getattr(exc, "code", None), getattr(exc, "detail", None),
            getattr(exc, "reason", None), type(exc.__cause__).__name__ if exc.__cause__ else None]


def outcome(label, fn):
    try:
        see(label, ["value", fn()])
    except BaseException as exc:  # noqa: BLE001 - the transcript is about exactly this
        see(label, ["raised", *describe(exc)])


if __name__ == "__main__":
    DBOS.launch()
    client = DBOSClient(system_database_url=database_url())
    for kind in ("two", "chained"):
        with SetWorkflowID(f"runs-{kind}"):
            outcome(f"runs {kind}", lambda: runs(kind))
        with SetWorkflowID(f"runs-{kind}"):
            outcome(f"runs {kind} replayed", lambda: runs(kind))
        outcome(f"runs {kind} via handle", DBOS.retrieve_workflow(f"runs-{kind}").get_result)
        outcome(f"runs {kind} via client", client.retrieve_workflow(f"runs-{kind}").get_result)
        with SetWorkflowID(f"catches-{kind}"):
            outcome(f"catches {kind}", lambda: catches(kind))
        with SetWorkflowID(f"parent-{kind}"):
            outcome(f"parent {kind}", lambda: parent(kind))
        with SetWorkflowID(f"queued-{kind}"):
            outcome(f"queued {kind}", queue.enqueue(runs, kind).get_result)
        steps = DBOS.list_workflow_steps(f"runs-{kind}")
        see(f"steps of {kind}", [[s["function_name"], s["output"], describe(s["error"]) if s["error"] else None] for s in steps])
        status = DBOS.get_workflow_status(f"runs-{kind}")
        see(f"status of {kind}", [status.status, describe(status.error) if status.error else None])
    client.destroy()
    DBOS.destroy()
    report()
