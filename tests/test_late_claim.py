"""A claim whose reply arrives after the member lost (and regained) its membership runs nothing.

A claim commits while the member is alive; its reply can come back long after (the process was
paused, the statement sat in retries). By then the member may have been declared dead, have
abandoned its work and have rejoined under a new epoch, and its rejoin lists the claimed row as
its own unfinished work and recovers it. If the late reply also ran the row, its steps would run
in two places at once. The test holds the reply back, in-process and deterministically, until
the member has lost and regained its membership, then lets it through.
"""

from __future__ import annotations

from typing import Any

from runtime import DBOS, Queue
from runtime.context import current_workflow

from tests.conftest import wait_until


def test_a_claim_returning_after_a_lost_and_regained_membership_runs_none_of_its_rows(dbos, db):
    executor = DBOS._instance._executor
    services = executor.services
    bodies: list[int] = []  # the ownership epoch of every step body that started
    claimed: dict[str, Any] = {}
    real_claim = executor.db.claim_queued_workflows

    @DBOS.step()
    def effect(x: int) -> int:
        ctx = current_workflow()
        assert ctx is not None
        bodies.append(ctx.owner_epoch)
        return x * 2

    @DBOS.workflow()
    def late(x: int) -> int:
        return effect(x)

    def claim_answered_late(params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = real_claim(params)
        if rows and not claimed:
            claimed["epochs"] = {row["owner_epoch"] for row in rows}
            claimed["member_epoch"] = services.membership.epoch
            # While the reply is "in flight": the member loses its membership and rejoins.
            services.heartbeat._lose("test: paused while its claim's reply was in flight")
            wait_until(lambda: not services.heartbeat.lost and services.membership.epoch != claimed["member_epoch"],
                       "the member to rejoin under a new epoch")
        return rows

    executor.db.claim_queued_workflows = claim_answered_late  # type: ignore[method-assign]
    handle = Queue("late-claims").enqueue(late, 21)

    assert handle.get_result() == 42
    assert claimed, "the claim hook never saw the claim"
    # Exactly one body ran, and not under the epoch of the late claim: the rejoin recovered it.
    assert len(bodies) == 1, bodies
    assert bodies[0] not in claimed["epochs"]
    row = db.execute("SELECT status, recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid = %s",
                     (handle.get_workflow_id(),)).fetchone()
    assert row is not None and row[0] == "SUCCESS"
