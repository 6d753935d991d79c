"""What a ``with`` block's start options reach, as in DBOS 2.30 (programs/timeouts.py compares
it with DBOS itself): the workflow started in the block takes them, its children do not. A
child inherits its parent's deadline but records no timeout of its own; ``SetWorkflowTimeout(0)``
means no timeout, as ``None`` does; a negative one is refused with DBOS's words."""

from __future__ import annotations

import pytest

from runtime import DBOS, SetWorkflowID, SetWorkflowTimeout


def _timeouts(db, workflow_id: str) -> tuple[int | None, int | None]:
    return db.execute(
        "SELECT workflow_timeout_ms, workflow_deadline_epoch_ms FROM dbos.workflow_status WHERE workflow_uuid = %s",
        (workflow_id,),
    ).fetchone()


def test_a_child_of_a_body_called_in_a_timeout_block_inherits_only_the_deadline(dbos, db):
    @DBOS.workflow()
    def scoped_child() -> str:
        return "child"

    @DBOS.workflow()
    def scoped_parent() -> str:
        with SetWorkflowID("scoped-started-child"):
            DBOS.start_workflow(scoped_child).get_result()
        with SetWorkflowID("scoped-called-child"):
            return scoped_child()

    with SetWorkflowID("scoped-parent"), SetWorkflowTimeout(10.0):
        scoped_parent()
    parent_timeout, parent_deadline = _timeouts(db, "scoped-parent")
    assert parent_timeout == 10_000 and parent_deadline is not None
    # Before: each child took the block's timeout as its own, so it got a later deadline of its
    # own (counted from its own start) and a resume or fork would give it ten seconds again.
    assert _timeouts(db, "scoped-started-child") == (None, parent_deadline)
    assert _timeouts(db, "scoped-called-child") == (None, parent_deadline)


def test_a_zero_timeout_is_none_and_a_negative_one_is_refused(dbos, db):
    @DBOS.workflow()
    def untimed() -> str:
        return "ran"

    with SetWorkflowTimeout(10.0), SetWorkflowID("zero-timeout"), SetWorkflowTimeout(0):
        untimed()
    assert _timeouts(db, "zero-timeout") == (None, None)
    with pytest.raises(Exception, match=r"Invalid workflow timeout -1\. Timeouts must be positive\."):
        SetWorkflowTimeout(-1)
    with pytest.raises(Exception, match="SetWorkflowTimeout needs a number of seconds or None, got '5'"):
        SetWorkflowTimeout("5")  # type: ignore[arg-type]
