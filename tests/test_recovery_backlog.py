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
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = %s",
        (f"pgfleet:{executor_id}",),
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
