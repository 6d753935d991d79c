"""Recovery cannot outlast the boot deadline (issue #8, item 9).

Recovery costs a few round trips per PENDING workflow. It used to run inside DBOS.launch(),
before a supervised worker reports ready, so a large backlog on a slow database outlasted the
boot deadline and the supervisor killed the worker mid-recovery, again and again. Here the
database is made "slow" deterministically: a second session holds a row lock on the first
workflow of the backlog, so recovery waits on it for as long as the test likes.
"""

from __future__ import annotations

import psycopg

from conftest import wait_until
from faults.rows import pickled_inputs, plant_pending_backlog
from test_supervisor import Node

BACKLOG = 300
BOOT_DEADLINE_SEC = "15"  # generous: a loaded machine boots slowly; the held lock never ends by itself


def slot_report(db, name):
    row = db.execute("SELECT slots FROM dbos.pgfleet_supervisors WHERE name = %s", (name,)).fetchone()
    return row[0][0] if row and row[0] else None


def recovery_waits_on_the_lock(db, executor_id):
    return db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE %s",
        (f"pgfleet % {executor_id}",),  # its pool's sessions: pgfleet <pid> <executor_id>
    ).fetchone()[0]


def test_a_worker_reports_ready_while_a_slow_backlog_recovers(sys_url, db, tmp_path):
    executor_id = "backlog-0"
    plant_pending_backlog(db, "backlog", BACKLOG, name="supervised_job", executor_id=executor_id,
                          inputs=pickled_inputs("backlog", 1))
    holder = psycopg.connect(sys_url)  # a transaction that holds the first row's lock
    holder.execute("SELECT 1 FROM dbos.workflow_status WHERE workflow_uuid = 'backlog-1' FOR UPDATE")
    node = Node(sys_url, tmp_path / "ledger", "backlog", "--boot-deadline", BOOT_DEADLINE_SEC,
                env={"PGFLEET_TEST_STEP_SECONDS": "0"})
    try:
        wait_until(lambda: recovery_waits_on_the_lock(db, executor_id), "recovery to wait on the held row", 30)
        # Ready while recovery is still stuck: the boot deadline cannot fire mid-recovery.
        slot = wait_until(
            lambda: (lambda s: s if s and s["state"] == "running" else None)(slot_report(db, "backlog")),
            "the worker to report ready while its recovery waits", 40,
        )
        assert recovery_waits_on_the_lock(db, executor_id)
        assert slot["restarts"] == 0 and slot["last_exit"] is None
        holder.rollback()
        wait_until(
            lambda: db.execute(
                "SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE 'backlog-%%' AND status = 'SUCCESS'"
            ).fetchone()[0] == BACKLOG,
            "every backlog workflow to be recovered", 120,
        )
        slot = slot_report(db, "backlog")
        assert slot["restarts"] == 0 and slot["last_exit"] is None  # never killed, never restarted
    finally:
        holder.close()
        node.stop()


def test_work_assigned_during_a_stuck_recovery_runs_at_once(sys_url, db):
    """A long recovery holds only its own rows: a dead member's workflows that a takeover
    assigns here meanwhile run at once, and no row is run by both recovery and assignment."""
    from cluster.coordination.membership import MemberInfo, Membership
    from runtime import DBOS
    from sysdb import SystemDatabase

    DBOS.destroy(destroy_registry=True)
    ran = []

    @DBOS.workflow(name="held_back")
    def held_back(x):
        ran.append(x)
        return x

    plant_pending_backlog(db, "stuck", 3, name="held_back", executor_id="recovering", inputs=pickled_inputs("stuck"))
    system_db = SystemDatabase(sys_url, pool_size=2)
    system_db.open()
    ghost = Membership(system_db, MemberInfo("ghost", "app", "v1", None), lambda: ["held_back"], 2.0)
    ghost.register()
    plant_pending_backlog(db, "ghostwf", 2, name="held_back", executor_id="ghost", inputs=pickled_inputs("assigned"))
    ghost.set_status("dead")
    holder = psycopg.connect(sys_url)
    holder.execute("SELECT 1 FROM dbos.workflow_status WHERE workflow_uuid = 'stuck-1' FOR UPDATE")
    try:
        DBOS(config={"name": "backlog", "system_database_url": sys_url, "executor_id": "recovering"})
        DBOS.launch()
        wait_until(lambda: recovery_waits_on_the_lock(db, "recovering"), "recovery to wait on the held row", 30)
        # This member leads; its sweep assigns the dead member's workflows to it.
        wait_until(
            lambda: db.execute(
                "SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE 'ghostwf-%%' AND status = 'SUCCESS'"
            ).fetchone()[0] == 2,
            "the assigned workflows to run while recovery is stuck", 20,
        )
        assert recovery_waits_on_the_lock(db, "recovering")
        assert db.execute(
            "SELECT count(*) FROM dbos.pgfleet_takeovers WHERE from_executor_id = 'ghost' AND to_executor_id = 'recovering'"
        ).fetchone()[0] == 2
        holder.rollback()
        wait_until(
            lambda: db.execute(
                "SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE 'stuck-%%' AND status = 'SUCCESS'"
            ).fetchone()[0] == 3,
            "the backlog to be recovered once the lock is gone", 30,
        )
        assert sorted(ran) == ["assigned"] * 2 + ["stuck"] * 3  # each ran once
    finally:
        holder.close()
        DBOS.destroy(destroy_registry=True)
        system_db.close()
