"""Serialization formats: what each writes in the rows, and what the program reads back (#10 item 5).

Portable JSON rows are compared as stored text (any other-language client reads exactly
these); pickled rows by their format name and decoded value.
"""

import base64
import datetime
import decimal
import pickle
import time

import psycopg
from dbos import (
    DBOS,
    DBOSPortableJSONSerializer,
    PortableWorkflowError,
    Serializer,
    SetWorkflowID,
    WorkflowSerializationFormat,
)
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-serialization", "system_database_url": database_url()})

PORTABLE = WorkflowSerializationFormat.PORTABLE
NATIVE = WorkflowSerializationFormat.NATIVE


class CodedError(Exception):
    def __init__(self, message, code, details):
        super().__init__(message)
        self.code = code
        self.details = details


@DBOS.step()
def a_step(x):
    return {"step": x}


@DBOS.workflow(serialization_type=PORTABLE)
def portable(name, when, amount, tags=(), **extra):
    a_step(name)
    DBOS.set_event("status", {"name": name, "at": when})
    DBOS.set_event("native-status", {"set": {1}}, serialization_type=NATIVE)
    DBOS.write_stream("out", [name, amount])
    DBOS.write_stream("out", ("native", 1), serialization_type=NATIVE)
    DBOS.close_stream("out")
    DBOS.send(DBOS.workflow_id, {"to": "myself", "at": when}, "self")
    DBOS.recv("self", timeout_seconds=30)
    return {"name": name, "when": when, "amount": amount, "tags": tags, "extra": extra}


@DBOS.workflow(serialization_type=PORTABLE)
def portable_fails(kind):
    if kind == "coded":
        raise CodedError("out of stock", 409, {"sku": "A-1", "at": datetime.date(2024, 5, 6)})
    if kind == "portable":
        raise PortableWorkflowError("custom", "MyError", "E42", [1, 2])
    return object()  # a result that is not JSON


@DBOS.workflow()
def native(x):
    DBOS.set_event("e", {"x": x})
    DBOS.set_event("p", [x], serialization_type=PORTABLE)
    DBOS.write_stream("s", x, serialization_type=PORTABLE)
    return {"x": x, "set": {1, 2}}


@DBOS.workflow(serialization_type=PORTABLE)
def parent():
    time.sleep(0.01)  # rows are listed by created_at (ms): the child's must come after the parent's
    return native("child")


def raises(fn):
    try:
        fn()
    except Exception:
        return True
    return False


def rows(query, *params):
    with psycopg.connect(database_url(), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def shown(fmt, text):
    """A stored value as compared: portable JSON as its text, a pickle as its value."""
    if text is None or text == "<time>" or fmt == "portable_json":
        return [fmt, text]
    value = pickle.loads(base64.b64decode(text))
    if isinstance(value, BaseException):
        return [fmt, type(value).__name__, str(value)]
    return [fmt, repr(value)]


def workflow_row(workflow_id):
    (fmt, inputs, output, error), = rows(
        "SELECT serialization, inputs, output, error FROM dbos.workflow_status WHERE workflow_uuid = %s", workflow_id
    )
    return {"inputs": shown(fmt, inputs), "output": shown(fmt, output), "error": shown(fmt, error)}


def step_rows(workflow_id):
    found = rows(
        "SELECT function_id, function_name, serialization, output, error FROM dbos.operation_outputs"
        " WHERE workflow_uuid = %s ORDER BY function_id",
        workflow_id,
    )
    # A sleep's output is its wake-up time: only its format is compared.
    return [[fid, name, shown(fmt, "<time>" if name == "DBOS.sleep" else out), shown(fmt, err)] for fid, name, fmt, out, err in found]


def event_rows(workflow_id):
    found = rows("SELECT key, serialization, value FROM dbos.workflow_events WHERE workflow_uuid = %s ORDER BY key", workflow_id)
    return [[key, shown(fmt, value)] for key, fmt, value in found]


def stream_rows(workflow_id):
    found = rows(
        'SELECT key, "offset", serialization, value FROM dbos.streams WHERE workflow_uuid = %s ORDER BY key, "offset"', workflow_id
    )
    return [[key, offset, fmt if fmt is None else shown(fmt, value)] for key, offset, fmt, value in found]


if __name__ == "__main__":
    DBOS.launch()
    see("serializer names", [DBOSPortableJSONSerializer().name(), issubclass(DBOSPortableJSONSerializer, Serializer)])
    see("formats", [f.value for f in WorkflowSerializationFormat])
    see("portable text", DBOSPortableJSONSerializer().serialize(
        {"d": datetime.datetime(2024, 1, 2, 3, 4, 5, 678000), "day": datetime.date(2024, 1, 2),
         "n": decimal.Decimal("1.50"), "t": (1, "é")}
    ))
    attempt("not portable", lambda: DBOSPortableJSONSerializer().serialize({1: 2}))
    attempt("not portable object", lambda: DBOSPortableJSONSerializer().serialize(object()))

    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    # Started, not called: a called portable workflow's events and streams default to pickle in
    # DBOS, to the workflow's format in pgfleet (see the README's differences).
    with SetWorkflowID("portable-1"):
        handle = DBOS.start_workflow(portable, "ann", when, decimal.Decimal("2.5"), tags=("a", "b"), color="red")
    see("portable result", handle.get_result())
    see("portable row", workflow_row("portable-1"))
    see("portable steps", step_rows("portable-1"))
    see("portable events", event_rows("portable-1"))
    see("portable streams", stream_rows("portable-1"))
    see("read back event", DBOS.get_event("portable-1", "status"))
    see("read back stream", list(DBOS.read_stream("portable-1", "out")))
    see("handle result", DBOS.retrieve_workflow("portable-1").get_result())
    see("listed input", DBOS.get_workflow_status("portable-1").input)

    for kind in ("coded", "portable", "unjsonable"):
        with SetWorkflowID(f"fails-{kind}"):
            if kind == "unjsonable":  # DBOS raises the TypeError, pgfleet a DBOSSerializationError naming the value
                see("portable raises unjsonable", raises(lambda: portable_fails("unjsonable")))
            else:
                attempt(f"portable raises {kind}", lambda kind=kind: portable_fails(kind))
        if kind != "unjsonable":
            see(f"portable error row {kind}", workflow_row(f"fails-{kind}"))
        handle = DBOS.retrieve_workflow(f"fails-{kind}")
        attempt(f"handle raises {kind}", handle.get_result, message=kind != "unjsonable")
    try:
        DBOS.retrieve_workflow("fails-coded").get_result()
    except PortableWorkflowError as exc:
        see("portable error fields", [exc.name, exc.message, exc.code, exc.data])

    with SetWorkflowID("native-1"):
        see("native result", native(7))
    see("native row", workflow_row("native-1"))
    see("native events", event_rows("native-1"))
    see("native streams", stream_rows("native-1"))
    see("native read back", [DBOS.get_event("native-1", "p"), list(DBOS.read_stream("native-1", "s"))])

    with SetWorkflowID("parent-1"):
        see("portable parent, default child", parent())
    see("child row", workflow_row("parent-1-1"))
    see("parent row", workflow_row("parent-1"))
    DBOS.destroy()
    report()
