"""DBOS's own client (and so its CLI) reads and changes the schedules pgfleet writes, and the
runs each enqueues have the same ids, so neither runs a tick the other ran.

Runs only when PGFLEET_DBOS_PYTHON names a Python with ``dbos`` installed (skipped otherwise).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess

import pytest

from conftest import wait_until
from differential.harness import as_url
from runtime import DBOS

DBOS_PYTHON = os.environ.get("PGFLEET_DBOS_PYTHON")

WITH_DBOS_CLIENT = """
import datetime, json, sys
from dbos import DBOSClient
client = DBOSClient(system_database_url=sys.argv[1])
listed = client.list_schedules()
client.pause_schedule("nightly")
handles = client.backfill_schedule("nightly", datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 5))
print(json.dumps({
    "listed": [[s["schedule_name"], s["workflow_name"], s["schedule"], s["status"], s["context"]] for s in listed],
    "backfilled": [h.get_workflow_id() for h in handles],
}))
client.destroy()
"""


@pytest.mark.skipif(not DBOS_PYTHON, reason="set PGFLEET_DBOS_PYTHON to a Python with dbos installed")
def test_dbos_client_reads_pgfleet_schedules_and_backfills_only_the_ticks_not_run(dbos, sys_url, db):
    @DBOS.workflow(name="nightly_job")
    def nightly(at, context):
        return [at.isoformat(), context]

    DBOS.create_schedule(schedule_name="nightly", workflow_fn=nightly, schedule="0 0 * * *", context={"k": 1})
    ours = DBOS.backfill_schedule("nightly", datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 3, 12))
    assert [h.get_result() for h in ours] == [
        ["2024-01-02T00:00:00+00:00", {"k": 1}], ["2024-01-03T00:00:00+00:00", {"k": 1}],
    ]

    # DBOS pins the runs it enqueues to the owner's latest version in dbos.application_versions
    # (and refuses to backfill without one): name this executor's, unless pgfleet did already.
    db.execute(
        "INSERT INTO dbos.application_versions (version_id, version_name, application_name)"
        " SELECT gen_random_uuid()::text, %s, 'pgfleet-test'"
        " WHERE NOT EXISTS (SELECT 1 FROM dbos.application_versions WHERE application_name = 'pgfleet-test')",
        (DBOS._process().executor.application_version,),
    )
    out = subprocess.run([DBOS_PYTHON, "-c", WITH_DBOS_CLIENT, as_url(sys_url)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["listed"] == [["nightly", "nightly_job", "0 0 * * *", "ACTIVE", {"k": 1}]]
    assert seen["backfilled"] == [f"sched-nightly-2024-01-0{day}T00:00:00+00:00" for day in (2, 3, 4)]

    # DBOS's pause is pgfleet's; its backfill added only the tick that had not run, which a
    # pgfleet executor runs; the two ticks pgfleet ran were not enqueued again.
    assert DBOS.get_schedule("nightly")["status"] == "PAUSED"
    assert DBOS.retrieve_workflow(seen["backfilled"][-1]).get_result() == ["2024-01-04T00:00:00+00:00", {"k": 1}]
    counts = db.execute(
        "SELECT count(*), count(DISTINCT workflow_uuid) FROM dbos.workflow_status WHERE schedule_name = 'nightly'"
    ).fetchone()
    assert counts == (3, 3)
    wait_until(lambda: all(
        h.get_status().status == "SUCCESS" for h in [DBOS.retrieve_workflow(i) for i in seen["backfilled"]]
    ), "every backfilled run to finish")
