"""DBOS.patch / DBOS.deprecate_patch: markers are fenced checkpoints, and the version they imply.

Their replay semantics (old executions keep the old path, new ones the patched one, deprecation)
are compared with DBOS in tests/differential/programs/patching.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from runtime import DBOS, DBOSWorkflowFencedError, SetWorkflowID
from test_fencing import DirectCall, take_over


@pytest.fixture
def patching_dbos(sys_url: str) -> Iterator[type]:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor", "enable_patching": True})
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


def test_a_patch_marker_after_a_takeover_is_not_written(patching_dbos, db):
    reached, release = threading.Event(), threading.Event()

    @DBOS.workflow()
    def patched():
        reached.set()
        release.wait(10)
        return DBOS.patch("new-path")

    call = DirectCall("patch-fenced", patched)
    assert reached.wait(10)
    take_over(db, "patch-fenced")
    release.set()
    assert isinstance(call.outcome(), DBOSWorkflowFencedError)
    assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'patch-fenced'").fetchone() == (0,)


def test_patching_gives_every_deploy_one_version_unless_one_is_configured(patching_dbos, db, sys_url):
    @DBOS.workflow()
    def versioned():
        return [DBOS.patch("p"), DBOS.deprecate_patch("p"), DBOS.deprecate_patch("never-recorded")]

    with SetWorkflowID("patch-version"):
        assert versioned() == [True, True, True]
    assert DBOS.get_workflow_status("patch-version").app_version == "PATCHING_ENABLED"
    # deprecate_patch records nothing: the one marker is the patch's
    assert db.execute(
        "SELECT function_id, function_name, output, serialization FROM dbos.operation_outputs WHERE workflow_uuid = 'patch-version'"
    ).fetchall() == [(1, "DBOS.patch-p", None, None)]

    DBOS.destroy()
    config = {"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor"}
    DBOS(config={**config, "enable_patching": True, "application_version": "v7"})
    DBOS.launch()
    with SetWorkflowID("patch-version-2"):
        versioned()
    assert DBOS.get_workflow_status("patch-version-2").app_version == "v7"
