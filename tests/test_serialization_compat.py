"""Portable JSON rows cross between DBOS and pgfleet on one system database, both ways.

A DBOS process (under PGFLEET_DBOS_PYTHON, skipped without it) runs portable workflows and,
through DBOS's client, enqueues a portable workflow that pgfleet serves and sends it a portable
message; pgfleet reads DBOS's rows (events, a closed stream, a portable error with its code) and
runs the enqueued one (its datetime argument restored from its type hint). Then DBOS's client
reads the rows pgfleet wrote.
"""

from __future__ import annotations

import datetime
import decimal
import json
import os
import subprocess

import pytest

from conftest import wait_until
from runtime import DBOS, PortableWorkflowError, Queue, SetWorkflowID, WorkflowSerializationFormat
from test_dbos_client_compat import as_url

DBOS_PYTHON = os.environ.get("PGFLEET_DBOS_PYTHON")
PORTABLE = WorkflowSerializationFormat.PORTABLE

DBOS_WRITES = """
import datetime, sys
from dbos import DBOS, DBOSClient, SetWorkflowID, WorkflowSerializationFormat
PORTABLE = WorkflowSerializationFormat.PORTABLE
url = sys.argv[1]
DBOS(config={"name": "serial-compat-dbos", "system_database_url": url, "executor_id": "dbos-process"})

class CodedError(Exception):
    def __init__(self, message, code):
        super().__init__(message)
        self.code = code

@DBOS.workflow(name="dbos_portable", serialization_type=PORTABLE)
def dbos_portable(when):
    DBOS.set_event("ev", {"at": when, "n": 1})
    DBOS.write_stream("s", [1, "x"])
    DBOS.close_stream("s")
    return {"at": when}

@DBOS.workflow(name="dbos_failing", serialization_type=PORTABLE)
def dbos_failing():
    raise CodedError("out of stock", 409)

DBOS.launch()
when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
with SetWorkflowID("dbos-wrote-1"):
    DBOS.start_workflow(dbos_portable, when).get_result()
with SetWorkflowID("dbos-wrote-2"):
    try:
        DBOS.start_workflow(dbos_failing).get_result()
    except CodedError:
        pass
client = DBOSClient(system_database_url=url)
options = {"workflow_name": "pg_portable", "queue_name": "serial-compat", "workflow_id": "pg-enqueued-1", "serialization_type": PORTABLE}
client.enqueue(options, when, note="from DBOS")
client.send("pg-enqueued-1", {"hello": "world"}, "greeting", serialization_type=PORTABLE)
client.destroy()
DBOS.destroy()
"""

DBOS_READS = """
import json, sys
from dbos import DBOSClient, PortableWorkflowError
client = DBOSClient(system_database_url=sys.argv[1])
seen = {
    "enqueued result": client.retrieve_workflow("pg-enqueued-1").get_result(),
    "event": client.get_event("pg-wrote-1", "ev"),
    "stream": list(client.read_stream("pg-wrote-1", "s")),
    "result": client.retrieve_workflow("pg-wrote-1").get_result(),
    "input": client.list_workflows(workflow_ids=["pg-wrote-1"])[0].input,
}
try:
    client.retrieve_workflow("pg-wrote-2").get_result()
except PortableWorkflowError as exc:
    seen["error"] = [exc.name, exc.message, exc.code, exc.data]
client.destroy()
print(json.dumps(seen))
"""


class CodedError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _run_dbos(script: str, sys_url: str) -> str:
    assert DBOS_PYTHON is not None
    out = subprocess.run([DBOS_PYTHON, "-c", script, as_url(sys_url)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


@pytest.mark.skipif(not DBOS_PYTHON, reason="set PGFLEET_DBOS_PYTHON to a Python with dbos installed")
def test_portable_rows_cross_between_dbos_and_pgfleet(dbos, sys_url):
    Queue("serial-compat")

    @DBOS.workflow(name="pg_portable", serialization_type=PORTABLE)
    def pg_portable(when: datetime.datetime, note: str) -> dict:
        message = DBOS.recv("greeting", timeout_seconds=60)
        return {"weekday": when.weekday(), "is_datetime": isinstance(when, datetime.datetime), "note": note, "message": message}

    @DBOS.workflow(name="pg_writer", serialization_type=PORTABLE)
    def pg_writer(amount):
        DBOS.set_event("ev", {"amount": amount, "on": datetime.date(2024, 5, 6)})
        DBOS.write_stream("s", ("a", 1))
        DBOS.close_stream("s")
        return {"amount": amount}

    @DBOS.workflow(name="pg_failing", serialization_type=PORTABLE)
    def pg_failing():
        raise CodedError("no stock", 410)

    # DBOS -> pgfleet
    _run_dbos(DBOS_WRITES, sys_url)
    assert DBOS.get_event("dbos-wrote-1", "ev") == {"at": "2024-01-02T03:04:05.000Z", "n": 1}
    assert list(DBOS.read_stream("dbos-wrote-1", "s")) == [[1, "x"]]  # ends at DBOS's closed marker
    assert DBOS.retrieve_workflow("dbos-wrote-1").get_result() == {"at": "2024-01-02T03:04:05.000Z"}
    assert DBOS.get_workflow_status("dbos-wrote-1").input == {"args": ("2024-01-02T03:04:05.000Z",), "kwargs": {}}
    with pytest.raises(PortableWorkflowError) as raised:
        DBOS.retrieve_workflow("dbos-wrote-2").get_result()
    assert [raised.value.name, raised.value.message, raised.value.code] == ["CodedError", "out of stock", 409]
    handle = DBOS.retrieve_workflow("pg-enqueued-1")
    wait_until(lambda: handle.get_status().status == "SUCCESS", "pgfleet runs the workflow DBOS's client enqueued", timeout=60)
    assert handle.get_result() == {"weekday": 1, "is_datetime": True, "note": "from DBOS", "message": {"hello": "world"}}

    # pgfleet -> DBOS
    with SetWorkflowID("pg-wrote-1"):
        DBOS.start_workflow(pg_writer, decimal.Decimal("2.50")).get_result()
    with SetWorkflowID("pg-wrote-2"), pytest.raises(CodedError):
        DBOS.start_workflow(pg_failing).get_result()
    seen = json.loads(_run_dbos(DBOS_READS, sys_url).strip().splitlines()[-1])
    assert seen == {
        "enqueued result": {"weekday": 1, "is_datetime": True, "note": "from DBOS", "message": {"hello": "world"}},
        "event": {"amount": "2.50", "on": "2024-05-06"},
        "stream": [["a", 1]],
        "result": {"amount": "2.50"},
        "input": {"args": ["2.50"], "kwargs": {}},
        "error": ["CodedError", "no stock", 410, None],
    }
