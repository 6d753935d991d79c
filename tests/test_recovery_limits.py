"""``max_recovery_attempts`` as DBOS reads it: a number bounds the starts of a workflow (the
first start plus that many recoveries), ``None`` sets no bound."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import wait_until
from runtime import DBOS, DBOSClient, Queue


@pytest.fixture
def fresh_dbos() -> Iterator[None]:
    DBOS.destroy(destroy_registry=True)
    yield
    DBOS.destroy(destroy_registry=True)


def _status(db, workflow_id: str) -> str | None:
    row = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()
    return row[0] if row else None


def test_none_means_no_limit_and_a_number_dead_letters_past_it(sys_url, db, fresh_dbos):
    DBOS(config={"name": "limits", "system_database_url": sys_url})
    Queue("limits-queue")

    @DBOS.workflow(name="unbounded", max_recovery_attempts=None)
    def unbounded() -> str:
        return "ran"

    @DBOS.workflow(name="bounded", max_recovery_attempts=5)
    def bounded() -> str:
        return "ran"

    client = DBOSClient(system_database_url=sys_url)
    try:
        for name in ("unbounded", "bounded"):
            client.enqueue({"workflow_name": name, "queue_name": "limits-queue", "workflow_id": f"{name}-wf"})
    finally:
        client.destroy()
    # As if each had already been started (and crashed) 500 times.
    db.execute("UPDATE dbos.workflow_status SET recovery_attempts = 500")
    DBOS.launch()
    wait_until(lambda: _status(db, "unbounded-wf") == "SUCCESS" and _status(db, "bounded-wf") != "ENQUEUED", "both claimed")
    assert wait_until(lambda: _status(db, "bounded-wf") == "MAX_RECOVERY_ATTEMPTS_EXCEEDED", "bounded dead-lettered")
    assert DBOS.retrieve_workflow("unbounded-wf").get_result() == "ran"
