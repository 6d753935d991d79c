"""list_workflows filters DBOS has that pgfleet lacked, and DBOS's reading of empty ones."""

from __future__ import annotations

import datetime

import pytest

from runtime import DBOS, SetWorkflowID


def _ids(statuses):
    return sorted(s.workflow_id for s in statuses)


def _iso(epoch_ms):
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.timezone.utc).isoformat()


def test_the_filters_dbos_has_beyond_the_basic_ones(dbos, db):
    @DBOS.workflow()
    def lf_leaf(x):
        return x

    @DBOS.workflow()
    def lf_parent():
        return lf_leaf(1)

    with SetWorkflowID("f-plain"):
        lf_leaf(0)
    with SetWorkflowID("f-parent"):
        lf_parent()
    with SetWorkflowID("f-fork"):
        DBOS.fork_workflow("f-plain", 1).get_result(timeout_seconds=10)
    assert _ids(DBOS.list_workflows(workflow_id_prefix=["f-pl", "f-fo"])) == ["f-fork", "f-plain"]
    assert _ids(DBOS.list_workflows(has_parent=True)) == ["f-parent-1"]
    assert _ids(DBOS.list_workflows(has_parent=False)) == ["f-fork", "f-parent", "f-plain"]
    assert _ids(DBOS.list_workflows(was_forked_from=True)) == ["f-plain"]
    # Empty filters filter nothing, as in DBOS.
    assert len(DBOS.list_workflows(name=[], user=[], workflow_id_prefix=[], limit=0)) == 4
    completed = db.execute("SELECT completed_at FROM dbos.workflow_status WHERE workflow_uuid = 'f-fork'").fetchone()[0]
    assert _ids(DBOS.list_workflows(completed_after=_iso(completed))) == ["f-fork"]
    assert "f-fork" not in _ids(DBOS.list_workflows(completed_before=_iso(completed - 1)))
    dequeued = db.execute("SELECT started_at_epoch_ms FROM dbos.workflow_status WHERE workflow_uuid = 'f-fork'").fetchone()[0]
    assert _ids(DBOS.list_workflows(dequeued_after=_iso(dequeued))) == ["f-fork"]
    assert "f-fork" in _ids(DBOS.list_workflows(dequeued_before=_iso(dequeued + 1)))


def test_an_unknown_filter_is_a_type_error_as_for_dbos_keyword_only_parameters(dbos):
    with pytest.raises(TypeError):
        DBOS.list_workflows(nonsense=1)
