"""Switching a DBOS application to pgfleet with workflows in flight: DBOS left them PENDING under
its executor id ("local" by default), which never joined the fleet, so no takeover moves them.
pgfleet's launch says so, naming the ids and the fix; an executor launched under that id
recovers them from their first unfinished step (a step DBOS recorded does not run again).

The in-flight workflow is written as DBOS writes it (no ownership epoch, DBOS's serialization):
tests/differential/DBOS_FACTS.md, and a run against dbos 2.30 (ops/RUNBOOK.md, "Switching from
DBOS"), where a workflow DBOS started and was killed in finished under pgfleet this way.
"""

from __future__ import annotations

import pytest

from conftest import wait_until
from runtime import DBOS
from runtime.serialization import serialize, serialize_args

STEPS_RUN: list[int] = []


def _write_dbos_in_flight_workflow(db, workflow_id: str, name: str, step_name: str) -> None:
    """A PENDING workflow of DBOS's executor "local" that recorded its first step."""
    db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, executor_id, application_version,"
        " inputs, created_at, updated_at, recovery_attempts, priority)"
        " VALUES (%s, 'PENDING', %s, 'local', 'v1', %s, 1, 1, 1, 0)",
        (workflow_id, name, serialize_args((5,), {}, workflow_name=name)),
    )
    db.execute(
        "INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, function_name, output)"
        " VALUES (%s, 1, %s, %s)",
        (workflow_id, step_name, serialize(6)),
    )


@pytest.fixture
def fresh():
    DBOS.destroy(destroy_registry=True)
    STEPS_RUN.clear()
    yield
    DBOS.destroy(destroy_registry=True)


def _declare() -> None:
    @DBOS.step(name="switch_step")
    def switch_step(x: int) -> int:
        STEPS_RUN.append(x)
        return x + 1

    @DBOS.workflow(name="switch_workflow")
    def switch_workflow(x: int) -> list[int]:
        return [switch_step(x), switch_step(x + 10)]


def _launch(sys_url: str, executor_id: str) -> None:
    DBOS(config={"name": "switching", "system_database_url": sys_url, "executor_id": executor_id,
                 "application_version": "v1"})
    DBOS.launch()


def test_dbos_in_flight_workflows_are_named_at_launch_and_recovered_under_their_id(sys_url, db, fresh, caplog):
    _write_dbos_in_flight_workflow(db, "from-dbos-1", "switch_workflow", "switch_step")
    caplog.set_level("WARNING", logger="pgfleet")
    _declare()
    _launch(sys_url, "fleet-node-1")
    [warning] = [r for r in caplog.records if "never joined this fleet" in r.getMessage()]
    assert warning.pgfleet_event["unregistered_owners"] == "local (1)"
    assert "launch one pgfleet executor with that executor_id" in warning.getMessage()
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'from-dbos-1'").fetchone()[0] == "PENDING"
    DBOS.destroy()

    _launch(sys_url, "local")
    assert DBOS.retrieve_workflow("from-dbos-1").get_result(timeout_seconds=30) == [6, 16]
    assert STEPS_RUN == [15]  # the step DBOS recorded was not run again
    caplog.clear()
    DBOS.destroy()
    _launch(sys_url, "fleet-node-1")  # nothing of a foreign executor is left PENDING: no warning
    wait_until(lambda: DBOS.get_workflow_status("from-dbos-1").status == "SUCCESS", what="the recovered workflow")
    assert not [r for r in caplog.records if "never joined this fleet" in r.getMessage()]
