"""A claim or assignment read whose reply arrives after the member lost (and regained) its
membership runs nothing.

A claim commits while the member is alive; its reply can come back long after (the process was
paused, the statement sat in retries). By then the member may have been declared dead, have
abandoned its work and have rejoined under a new epoch, and its rejoin lists the claimed row as
its own unfinished work and recovers it. If the late reply also ran the row, its steps would run
in two places at once. The test holds the reply back, in-process and deterministically, until
the member has lost and regained its membership, then lets it through.
"""

from __future__ import annotations

import threading
from typing import Any

from runtime import DBOS, Queue
from runtime.context import current_workflow
from sysdb.claims import ClaimRequest
from sysdb.workflow_rows import AcquiredWorkflow
from tests.conftest import wait_until


def test_a_claim_returning_after_a_lost_and_regained_membership_runs_none_of_its_rows(dbos, db):
    executor, services = DBOS._process().executor, DBOS._process().services
    bodies: list[int] = []  # the ownership epoch of every step body that started
    claimed: dict[str, Any] = {}
    real_claim = executor.db.claims.claim

    @DBOS.step()
    def effect(x: int) -> int:
        ctx = current_workflow()
        assert ctx is not None
        bodies.append(ctx.owner_epoch)
        return x * 2

    @DBOS.workflow()
    def late(x: int) -> int:
        return effect(x)

    def claim_answered_late(request: ClaimRequest) -> list[AcquiredWorkflow]:
        rows = real_claim(request)
        if rows and not claimed:
            claimed["epochs"] = {row.owner_epoch for row in rows}
            claimed["member_epoch"] = services.membership.epoch
            # While the reply is "in flight": the member loses its membership and rejoins.
            services.heartbeat._lose("test: paused while its claim's reply was in flight")
            wait_until(lambda: not services.heartbeat.lost and services.membership.epoch != claimed["member_epoch"],
                       "the member to rejoin under a new epoch")
        return rows

    executor.db.claims.claim = claim_answered_late  # type: ignore[method-assign]
    handle = Queue("late-claims").enqueue(late, 21)

    assert handle.get_result() == 42
    assert claimed, "the claim hook never saw the claim"
    # Exactly one body ran, and not under the epoch of the late claim: the rejoin recovered it.
    assert len(bodies) == 1, bodies
    assert bodies[0] not in claimed["epochs"]
    row = db.execute("SELECT status, recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid = %s",
                     (handle.get_workflow_id(),)).fetchone()
    assert row is not None and row[0] == "SUCCESS"


def test_an_assignment_read_returning_after_a_lost_and_regained_membership_runs_none_of_its_rows(dbos, db):
    executor, services = DBOS._process().executor, DBOS._process().services
    bodies: list[int] = []
    seen: dict[str, Any] = {}
    release = threading.Event()  # holds the first body, so a second could overlap it
    real_read = executor.db.assignments.assigned_not_running
    real_poll = services.assignments.poll_once
    polled = threading.Event()

    @DBOS.step()
    def effect(x: int) -> int:
        ctx = current_workflow()
        assert ctx is not None
        bodies.append(ctx.owner_epoch)
        assert release.wait(30), "the test never released the step"
        return x + 1

    @DBOS.workflow(name="assigned-late")
    def assigned(x: int) -> int:
        return effect(x)

    def read_answered_late(*args: Any) -> list[AcquiredWorkflow]:
        rows = real_read(*args)
        if rows and not seen:
            seen["member_epoch"] = services.membership.epoch
            services.heartbeat._lose("test: paused while its assignment read was in flight")
            # The reply comes back once the member rejoined and its recovery is inside the body.
            wait_until(lambda: bodies, "the rejoin's recovery to start the step body")
        return rows

    def poll_then_signal() -> int:
        try:
            return real_poll()
        finally:
            if seen:
                polled.set()

    executor.db.assignments.assigned_not_running = read_answered_late  # type: ignore[method-assign]
    services.assignments.poll_once = poll_then_signal  # type: ignore[method-assign]
    # What a takeover leaves: a PENDING row of this executor under the epoch the takeover drew.
    epoch = _seed_assigned(executor, "handed-over", "assigned-late", (1,))
    services.assignments.wake()

    assert polled.wait(30), "the assignment poller never read the assigned row"
    release.set()
    assert wait_until(lambda: _status(db, "handed-over") == "SUCCESS", "the assigned workflow to finish")
    wait_until(lambda: executor.local_generation("handed-over") is None, "every execution of it to end")
    assert len(bodies) == 1, bodies
    assert bodies[0] != epoch  # run by the rejoin's recovery, never from the late read


def _seed_assigned(executor: Any, workflow_id: str, name: str, args: tuple[Any, ...]) -> int:
    from runtime.serialization import SERIALIZATION_FORMAT, serialize_args
    from sysdb.workflow_rows import NewWorkflow

    epoch = executor.db.workflows.reserve_epoch()
    executor.db.workflows.insert(NewWorkflow(
        workflow_id=workflow_id, name=name, class_name=None, config_name=None,
        authenticated_user=None, assumed_role=None, authenticated_roles=None,
        application_id="", application_name="pgfleet-test",
        inputs=serialize_args(args, {}, workflow_name=name), parent_workflow_id=None,
        serialization=SERIALIZATION_FORMAT, executor_id=executor.executor_id, application_version="",
    ), owner_epoch=epoch)
    with executor.db.transaction() as conn:
        conn.execute(
            "INSERT INTO dbos.pgfleet_takeovers (workflow_uuid, from_executor_id, from_epoch, to_executor_id, to_epoch,"
            " by_executor_id) VALUES (%s, 'a-dead-peer', 1, %s, %s, 'the-leader')",
            (workflow_id, executor.executor_id, epoch),
        )
    return epoch


def _status(db: Any, workflow_id: str) -> str | None:
    row = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()
    return None if row is None else row[0]


def test_a_rejoin_leaves_a_row_whose_start_is_in_flight_here_until_it_runs(dbos, db):
    """A direct start holds its epoch from before its insert until its thread ends. A rejoin
    that lists the row in between (committed, thread not up yet) must not replay it beside the
    start; here the start is held in that window by keeping its epoch held with no thread."""
    executor, services = DBOS._process().executor, DBOS._process().services
    bodies: list[int] = []

    @DBOS.step()
    def effect(x: int) -> int:
        ctx = current_workflow()
        assert ctx is not None
        bodies.append(ctx.owner_epoch)
        return x

    @DBOS.workflow(name="in-flight")
    def in_flight(x: int) -> int:
        return effect(x)

    epoch = _seed_assigned(executor, "starting", "in-flight", (7,))
    executor.hold_epoch(epoch)  # the start's token: its insert committed, its thread not up
    member_epoch = services.membership.epoch
    services.heartbeat._lose("test: a rejoin while a start is in flight")
    wait_until(lambda: not services.heartbeat.lost and services.membership.epoch != member_epoch,
               "the member to rejoin under a new epoch")
    wait_until(lambda: services.recoverer.pending_epochs() == [epoch], "the rejoin to list the row and hold it back")
    assert _status(db, "starting") == "PENDING" and bodies == []
    executor.release_epoch(epoch)  # the start gave up (or finished): now recovery may take it
    assert wait_until(lambda: _status(db, "starting") == "SUCCESS", "the recovered workflow to finish")
    assert len(bodies) == 1 and bodies[0] != epoch
