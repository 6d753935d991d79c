"""Forks as DBOS makes them (#10 item 8): any start step, the version a copy records, and a
child started before the fork point."""

from __future__ import annotations

from runtime import DBOS, SetWorkflowID


def _version(db, workflow_id):
    return db.execute("SELECT application_version FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()[0]


def test_a_fork_from_step_zero_runs_every_step_again(dbos, db):
    ran = []

    @DBOS.step()
    def counted(i):
        ran.append(i)
        return i

    @DBOS.workflow()
    def twice():
        return [counted(1), counted(2)]

    with SetWorkflowID("zero-original"):
        assert twice() == [1, 2]
    ran.clear()
    for start_step in (0, -3):
        assert DBOS.fork_workflow("zero-original", start_step).get_result(timeout_seconds=10) == [1, 2]
    assert ran == [1, 2, 1, 2]


def test_a_fork_without_a_version_stays_unpinned_and_a_version_given_is_kept(dbos, db):
    # DBOS stamps the dequeuing executor's version on a fork enqueued without one. pgfleet
    # leaves it unpinned (README, "Differences"): a stamped version would strand the copy if
    # its executor died and only executors of a newer deploy were left to take it up.
    @DBOS.workflow()
    def versioned():
        return "ok"

    with SetWorkflowID("versioned-original"):
        versioned()
    with SetWorkflowID("versioned-fork"):
        DBOS.fork_workflow("versioned-original", 1).get_result(timeout_seconds=10)
    assert _version(db, "versioned-fork") is None
    # A version given is kept: no executor of another version runs it.
    with SetWorkflowID("pinned-fork"):
        DBOS.fork_workflow("versioned-original", 1, application_version="elsewhere")
    assert _version(db, "pinned-fork") == "elsewhere"
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'pinned-fork'").fetchone()[0] == "ENQUEUED"


def test_a_child_started_before_the_fork_point_is_reused_and_its_result_step_names_the_forks_child_id(dbos, db):
    runs = []

    @DBOS.workflow(name="kid")
    def kid(x):
        runs.append(x)
        return x * 10

    @DBOS.workflow()
    def family():
        return kid(1) + kid(2)

    with SetWorkflowID("family"):
        assert family() == 30
    runs.clear()
    # Steps: 1 kid(1) start, 2 its result, 3 kid(2) start, 4 its result. Fork at 2: the first
    # child is reused (its start copied), its result read again; the second runs anew.
    with SetWorkflowID("family-fork"):
        assert DBOS.fork_workflow("family", 2).get_result(timeout_seconds=10) == 30
    assert runs == [2]
    steps = db.execute(
        "SELECT function_id, function_name, child_workflow_id FROM dbos.operation_outputs"
        " WHERE workflow_uuid = 'family-fork' ORDER BY function_id"
    ).fetchall()
    assert [tuple(s) for s in steps] == [
        (1, "kid", "family-1"),
        (2, "DBOS.getResult", "family-fork-1"),  # as DBOS records it; no such workflow exists
        (3, "kid", "family-fork-3"),
        (4, "DBOS.getResult", "family-fork-3"),
    ]
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid = 'family-fork-1'").fetchone()[0] == 0
