"""DBOS's own client reads what pgfleet writes (the DBOS 2.x system database layout).

DBOS is never a dependency: set PGFLEET_DBOS_PYTHON to the Python of a virtual environment where
``dbos`` is installed (``pip install dbos``) to run this test; otherwise it is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from psycopg.conninfo import conninfo_to_dict

from runtime import DBOS, SetWorkflowID

DBOS_PYTHON = os.environ.get("PGFLEET_DBOS_PYTHON")

READ_WITH_DBOS_CLIENT = """
import json, sys
from dbos import DBOSClient
client = DBOSClient(system_database_url=sys.argv[1])
handle = client.retrieve_workflow("compat-1")
steps = client.list_workflow_steps("compat-1")
listed = client.list_workflows(workflow_ids=["compat-1", "compat-2"])
try:
    client.retrieve_workflow("compat-2").get_result()
    failed = None
except Exception as exc:
    failed = [type(exc).__name__, str(exc)]
print(json.dumps({
    "result": handle.get_result(),
    "status": handle.get_status().status,
    "steps": [[s["function_id"], s["function_name"], s["output"]] for s in steps],
    "listed": sorted(w.workflow_id for w in listed),
    "failed": failed,
}))
client.destroy()
"""


def as_url(conninfo: str) -> str:
    """DBOS takes URLs only; the fixtures hand out libpq conninfo strings."""
    params = conninfo_to_dict(conninfo)
    password = f":{params['password']}" if params.get("password") else ""
    return (
        f"postgresql://{params.get('user', 'postgres')}{password}@{params.get('host', 'localhost')}"
        f":{params.get('port', 5432)}/{params['dbname']}"
    )


@pytest.mark.skipif(not DBOS_PYTHON, reason="set PGFLEET_DBOS_PYTHON to a Python with dbos installed")
def test_dbos_client_reads_pgfleet_workflows(dbos, sys_url):
    @DBOS.step()
    def double(x):
        return x * 2

    @DBOS.workflow(name="compat_workflow")
    def compat(x):
        return {"doubled": double(x)}

    @DBOS.workflow(name="compat_failing")
    def failing():
        raise ValueError("expected failure")

    with SetWorkflowID("compat-1"):
        compat(21)
    with SetWorkflowID("compat-2"), pytest.raises(ValueError):
        failing()

    out = subprocess.run([DBOS_PYTHON, "-c", READ_WITH_DBOS_CLIENT, as_url(sys_url)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["result"] == {"doubled": 42}
    assert seen["status"] == "SUCCESS"
    assert seen["steps"] == [[1, "test_dbos_client_reads_pgfleet_workflows.<locals>.double", 42]]
    assert seen["listed"] == ["compat-1", "compat-2"]
    assert seen["failed"][0] == "ValueError" and "expected failure" in seen["failed"][1]
