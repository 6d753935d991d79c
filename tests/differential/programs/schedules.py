"""Database-backed schedules (#10 item 5): create/list/get/pause/resume/delete, apply, trigger,
backfill over a fixed past range, validation errors, the calls inside a workflow (recorded as
steps), the client's side, and the rows left in dbos.workflow_schedules.

Nothing waits for a wall-clock tick: every cron fires at most once a year, so no live tick
lands during the run; runs come from trigger and backfill only.
"""

import datetime

import psycopg
from dbos import DBOS, DBOSClient, Queue
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-schedules", "system_database_url": database_url()})
schedq = Queue("schedq")
YEARLY = "0 0 1 1 *"
DAILY = "0 0 * * *"


@DBOS.workflow()
def nightly(at, context):
    return [at.isoformat(), context]


@DBOS.dbos_class()
class Jobs:
    @classmethod
    @DBOS.workflow()
    def report(cls, at, context):
        return ["report", at.isoformat(), context]

    @staticmethod
    @DBOS.workflow()
    def cleanup(at, context):
        return ["cleanup", context]


@DBOS.step()
def a_step(at, context):
    return None


def undecorated(at, context):
    return None


@DBOS.workflow()
def manages_schedules():
    DBOS.create_schedule(schedule_name="from-workflow", workflow_fn=nightly, schedule=YEARLY, context="wf")
    refused = []
    try:  # a failed create records nothing, but takes its step position
        DBOS.create_schedule(schedule_name="from-workflow", workflow_fn=nightly, schedule=YEARLY)
    except Exception as exc:  # noqa: BLE001 - the program reports what was raised
        refused.append(f"{type(exc).__name__}: {exc}")
    got = DBOS.get_schedule("from-workflow")
    listed = [s["schedule_name"] for s in DBOS.list_schedules(schedule_name_prefix="from-")]
    DBOS.pause_schedule("from-workflow")
    paused = DBOS.get_schedule("from-workflow")["status"]
    DBOS.resume_schedule("from-workflow")
    DBOS.delete_schedule("from-workflow")
    for call in (lambda: DBOS.trigger_schedule("daily"), lambda: DBOS.apply_schedules([]),
                 lambda: DBOS.backfill_schedule("daily", datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 2))):
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - the program reports what was raised
            refused.append(f"{type(exc).__name__}: {exc}")
    return [got["context"], got["status"], listed, paused, DBOS.get_schedule("from-workflow"), refused]


def shape(schedule):
    """A schedule without its random id."""
    return None if schedule is None else {k: v for k, v in schedule.items() if k != "schedule_id"}


def names(schedules):
    return sorted(s["schedule_name"] for s in schedules)


def results(handles):
    return [[h.get_workflow_id(), h.get_result()] for h in handles]


if __name__ == "__main__":
    DBOS.launch()
    # -- creating, and what is refused
    attempt("create", lambda: DBOS.create_schedule(schedule_name="daily", workflow_fn=nightly, schedule=DAILY, context={"k": 1}))
    attempt("duplicate name", lambda: DBOS.create_schedule(schedule_name="daily", workflow_fn=nightly, schedule=YEARLY))
    attempt("bad cron", lambda: DBOS.create_schedule(schedule_name="bad", workflow_fn=nightly, schedule="every day"))
    attempt("4 fields", lambda: DBOS.create_schedule(schedule_name="bad", workflow_fn=nightly, schedule="0 0 * *"))
    attempt("undecorated function", lambda: DBOS.create_schedule(schedule_name="bad", workflow_fn=undecorated, schedule=YEARLY))
    attempt("a step", lambda: DBOS.create_schedule(schedule_name="bad", workflow_fn=a_step, schedule=YEARLY))
    attempt("undeclared queue", lambda: DBOS.create_schedule(schedule_name="bad", workflow_fn=nightly, schedule=YEARLY, queue_name="nope"))
    attempt("bad timezone", lambda: DBOS.create_schedule(schedule_name="bad", workflow_fn=nightly, schedule=YEARLY, cron_timezone="Mars/Olympus"))
    attempt("with seconds", lambda: DBOS.create_schedule(schedule_name="seconds", workflow_fn=nightly, schedule="0 0 0 1 1 *"))
    attempt("in a timezone, on a queue", lambda: DBOS.create_schedule(
        schedule_name="ny", workflow_fn=nightly, schedule=DAILY, cron_timezone="America/New_York", queue_name="schedq",
        automatic_backfill=True, context=[1, 2]))
    attempt("classmethod", lambda: DBOS.create_schedule(schedule_name="report", workflow_fn=Jobs.report, schedule=DAILY))
    attempt("staticmethod", lambda: DBOS.create_schedule(schedule_name="cleanup", workflow_fn=Jobs.cleanup, schedule=YEARLY))
    # -- reading
    see("get", shape(DBOS.get_schedule("daily")))
    see("get ny", shape(DBOS.get_schedule("ny")))
    see("get classmethod", shape(DBOS.get_schedule("report")))
    see("get missing", DBOS.get_schedule("missing"))
    see("list", [s["schedule_name"] for s in DBOS.list_schedules()])
    see("list by prefix list", names(DBOS.list_schedules(schedule_name_prefix=["re", "se"])))
    see("list by workflow", names(DBOS.list_schedules(workflow_name="Jobs.cleanup")))
    see("list other application", names(DBOS.list_schedules(application_name="someone-else")))
    # -- pause, resume
    attempt("pause", lambda: DBOS.pause_schedule("daily"))
    attempt("pause missing", lambda: DBOS.pause_schedule("missing"))
    see("paused", names(DBOS.list_schedules(status="PAUSED")))
    see("active", names(DBOS.list_schedules(status=["ACTIVE"])))
    attempt("resume", lambda: DBOS.resume_schedule("daily"))
    see("paused after resume", names(DBOS.list_schedules(status="PAUSED")))
    # -- trigger and backfill
    trigger = attempt("trigger", lambda: DBOS.trigger_schedule("daily"))
    see("trigger id", trigger.get_workflow_id().startswith("sched-daily-trigger-20"))
    see("trigger result context", trigger.get_result()[1])
    attempt("trigger missing", lambda: DBOS.trigger_schedule("missing"))
    backfilled = DBOS.backfill_schedule("daily", datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 4))
    see("backfill", results(backfilled))
    see("backfill again, one more day", results(DBOS.backfill_schedule(
        "daily", datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 4, 0, 0, 1))))
    utc = datetime.timezone.utc
    # (Away from a DST change: DBOS's own copy of croniter adds a tick at one, croniter does not.)
    see("backfill in a timezone", results(DBOS.backfill_schedule(
        "ny", datetime.datetime(2024, 2, 9, tzinfo=utc), datetime.datetime(2024, 2, 12, tzinfo=utc))))
    see("backfill classmethod", results(DBOS.backfill_schedule("report", datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 2, 1))))
    see("backfill seconds", results(DBOS.backfill_schedule("seconds", datetime.datetime(2023, 6, 1), datetime.datetime(2025, 6, 1))))
    see("backfill empty range", results(DBOS.backfill_schedule("daily", datetime.datetime(2024, 1, 2), datetime.datetime(2024, 1, 2))))
    attempt("backfill missing", lambda: DBOS.backfill_schedule("missing", datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 2)))
    # -- apply: create or replace; a replaced schedule keeps its status
    DBOS.pause_schedule("cleanup")
    attempt("apply", lambda: DBOS.apply_schedules([
        {"schedule_name": "cleanup", "workflow_fn": nightly, "schedule": "5 0 1 1 *", "context": "replaced"},
        {"schedule_name": "applied", "workflow_fn": Jobs.cleanup, "schedule": YEARLY},
    ]))
    see("applied over a paused one", shape(DBOS.get_schedule("cleanup")))
    see("applied new", shape(DBOS.get_schedule("applied")))
    attempt("apply missing field", lambda: DBOS.apply_schedules([{"schedule_name": "x", "schedule": YEARLY}]))
    attempt("apply bad cron", lambda: DBOS.apply_schedules([{"schedule_name": "x", "workflow_fn": nightly, "schedule": "nope"}]))
    attempt("apply undecorated", lambda: DBOS.apply_schedules([
        {"schedule_name": "ok", "workflow_fn": nightly, "schedule": YEARLY},
        {"schedule_name": "x", "workflow_fn": undecorated, "schedule": YEARLY}]))
    see("nothing applied on an error", DBOS.get_schedule("ok"))
    # -- inside a workflow
    see("inside a workflow", attempt("manages_schedules", manages_schedules))
    # -- delete
    attempt("delete", lambda: DBOS.delete_schedule("applied"))
    attempt("delete missing", lambda: DBOS.delete_schedule("applied"))
    see("after delete", DBOS.get_schedule("applied"))
    # -- the client: schedules name their workflow
    client = DBOSClient(system_database_url=database_url())
    attempt("client create", lambda: client.create_schedule(schedule_name="by-client", workflow_name="nightly", schedule=YEARLY, context="c"))
    attempt("client create unknown workflow", lambda: client.create_schedule(schedule_name="nobody", workflow_name="not.there", schedule=YEARLY))
    attempt("client duplicate", lambda: client.create_schedule(schedule_name="by-client", workflow_name="nightly", schedule=YEARLY))
    attempt("client bad cron", lambda: client.create_schedule(schedule_name="x", workflow_name="nightly", schedule="x"))
    attempt("client bad timezone", lambda: client.create_schedule(schedule_name="x", workflow_name="nightly", schedule=YEARLY, cron_timezone="X/Y"))
    see("client get", shape(client.get_schedule("by-client")))
    see("client list", names(client.list_schedules()))
    attempt("client pause", lambda: client.pause_schedule("by-client"))
    see("client paused", names(client.list_schedules(status="PAUSED")))
    attempt("client resume", lambda: client.resume_schedule("by-client"))
    see("client backfill", results(client.backfill_schedule("by-client", datetime.datetime(2022, 6, 1), datetime.datetime(2024, 6, 1))))
    see("client trigger", client.trigger_schedule("by-client").get_result()[1])
    attempt("client apply", lambda: client.apply_schedules([
        {"schedule_name": "by-client", "workflow_name": "Jobs.report", "workflow_class_name": "Jobs", "schedule": DAILY}]))
    see("client applied", shape(client.get_schedule("by-client")))
    attempt("client apply missing field", lambda: client.apply_schedules([{"schedule_name": "x", "workflow_name": "nightly"}]))
    # -- another application's schedule: not listed by default, and its name is taken
    attempt("client create for another application", lambda: client.create_schedule(
        schedule_name="theirs", workflow_name="nightly", schedule=YEARLY, application_name="other-app"))
    see("default list leaves it out", "theirs" in names(DBOS.list_schedules()))
    see("listed for its application", names(DBOS.list_schedules(application_name="other-app")))
    see("client list for it", names(client.list_schedules(application_name=["other-app"])))
    attempt("create over another application's", lambda: DBOS.create_schedule(schedule_name="theirs", workflow_fn=nightly, schedule=YEARLY))
    attempt("apply over another application's", lambda: DBOS.apply_schedules([{"schedule_name": "theirs", "workflow_fn": nightly, "schedule": DAILY}]))
    attempt("client apply naming no application", lambda: client.apply_schedules([{"schedule_name": "theirs", "workflow_name": "nightly", "schedule": DAILY}]))
    see("theirs after", shape(client.get_schedule("theirs")))
    attempt("client delete", lambda: client.delete_schedule("nobody"))
    attempt("client trigger missing", lambda: client.trigger_schedule("nobody"))
    client.destroy()
    # -- what is stored, as DBOS's CLI reads it (ids aside; contexts are compared above)
    with psycopg.connect(database_url()) as conn:
        rows = conn.execute(
            "SELECT schedule_name, workflow_name, workflow_class_name, schedule, status, last_fired_at,"
            " automatic_backfill, cron_timezone, queue_name, application_name FROM dbos.workflow_schedules"
            " ORDER BY schedule_name"
        ).fetchall()
        see("rows", [list(r) for r in rows])
        # (The owner of a run of an unowned schedule is stamped by DBOS's dequeue: left out.)
        runs = conn.execute(
            "SELECT workflow_uuid, status, name, class_name, queue_name, schedule_name,"
            " CASE WHEN schedule_name <> 'by-client' THEN application_name END"
            " FROM dbos.workflow_status WHERE schedule_name IS NOT NULL AND workflow_uuid NOT LIKE '%%trigger%%'"
            " ORDER BY workflow_uuid"
        ).fetchall()
        see("runs", [list(r) for r in runs])
    DBOS.destroy()
    report()
