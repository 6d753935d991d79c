"""The one-shot ``_async`` twins of DBOS's class methods and of Queue's settings (#11), and
DBOS's refusal of the blocking sync methods on a running event loop (``check_async``).

Each twin runs inside an async workflow (the step rows it records, at which positions, and
what it returns) and outside one; twins gathered with ``asyncio.gather`` number their steps in
call order; a fork of the workflow replays what it recorded; each sync method called on a loop
raises DBOS's RuntimeError.
"""

import asyncio

import psycopg
from dbos import DBOS, Queue, SendMessage, SetWorkflowID
from observe import attempt, database_url, report, see

config = {"name": "diff-async-api", "system_database_url": database_url(), "enable_patching": True}
DBOS(config=config)
codeq = Queue("codeq", concurrency=2, worker_concurrency=1)
pausedq = Queue("pausedq", concurrency=0)  # nothing put here runs


@DBOS.workflow()
def inbox(count):
    return [DBOS.recv("t", timeout_seconds=10) for _ in range(count)]


@DBOS.workflow()
async def async_child(x):
    await DBOS.sleep_async(0)
    return x * 10


@DBOS.workflow()
def sync_child(x):
    return x + 1


@DBOS.workflow()
def nightly(at, context):
    return context


@DBOS.workflow()
def blocked():
    DBOS.recv("never", timeout_seconds=30)
    return "unblocked"


async def attempt_async(label, make, message=True):
    """``attempt`` for a coroutine: its value, or what it raised."""
    try:
        value = await make()
    except Exception as exc:  # noqa: BLE001 - the transcript is about exactly this
        failure = exc
    else:
        return see(label, value)
    return attempt(label, lambda: _raise(failure), message=message)


def _raise(exc):
    raise exc


def steps(workflow_id):
    with psycopg.connect(database_url(), autocommit=True) as conn:
        return conn.execute(
            "SELECT function_id, function_name, output IS NULL, error IS NULL FROM dbos.operation_outputs"
            " WHERE workflow_uuid = %s ORDER BY function_id",
            (workflow_id,),
        ).fetchall()


@DBOS.workflow()
async def messaging_twins(destination):
    out = {}
    out["send"] = await DBOS.send_async(destination, "one", "t")
    out["send_bulk"] = await DBOS.send_bulk_async([SendMessage(destination, "two", "t"), SendMessage(destination, "three", "t")])
    out["set_event"] = await DBOS.set_event_async("k", {"v": 1})
    out["all events"] = await DBOS.get_all_events_async(DBOS.workflow_id)
    out["write_stream"] = await DBOS.write_stream_async("s", 1)
    await DBOS.write_stream_async("s", 2)
    out["close_stream"] = await DBOS.close_stream_async("s")
    out["patch"] = await DBOS.patch_async("p1")
    out["deprecate_patch"] = await DBOS.deprecate_patch_async("p2")
    out["patch again"] = await DBOS.patch_async("p3")
    return out


@DBOS.step()
async def twins_in_a_step(destination):
    """From a step the twins take no position of their own (their sync methods take none)."""
    await DBOS.send_async(destination, "from a step", "t")
    await DBOS.set_event_async("in step", DBOS.step_id)
    await DBOS.write_stream_async("step stream", 1)
    listed = await DBOS.list_workflows_async(workflow_ids=[destination])
    events = await DBOS.get_all_events_async(DBOS.workflow_id)
    try:
        await DBOS.patch_async("in-step")
    except Exception as exc:  # noqa: BLE001 - the program reports what was raised
        refused = f"{type(exc).__name__}: {exc}"
    return [len(listed), events, refused]


@DBOS.workflow()
async def step_twins(destination):
    first = await twins_in_a_step(destination)
    return [first, await DBOS.get_all_events_async(DBOS.workflow_id)]


@DBOS.workflow()
async def admin_twins(victim, done_id, stepped_id):
    out = {}
    listed = await DBOS.list_workflows_async(workflow_ids=[done_id, victim])
    out["listed"] = sorted(w.workflow_id for w in listed)
    out["queued"] = [w.workflow_id for w in await DBOS.list_queued_workflows_async(queue_name="pausedq")]
    out["steps"] = [s["function_name"] for s in await DBOS.list_workflow_steps_async(stepped_id)]
    out["cancel"] = await DBOS.cancel_workflow_async(victim)
    out["cancels"] = await DBOS.cancel_workflows_async([victim, "no-such-workflow"])
    resumed = await DBOS.resume_workflow_async(victim, queue_name="pausedq")
    out["resumed"] = resumed.get_workflow_id()
    await DBOS.cancel_workflow_async(victim)
    out["resumed many"] = [h.get_workflow_id() for h in await DBOS.resume_workflows_async([victim], queue_name="pausedq")]
    with SetWorkflowID("fork-of-done"):
        forked = await DBOS.fork_workflow_async(done_id, 1)
    out["forked"] = [forked.get_workflow_id(), await forked.get_result()]
    out["attributes"] = await DBOS.update_workflow_attributes_async(done_id, {"tier": "gold"})
    out["delay"] = await DBOS.set_workflow_delay_async(victim, delay_seconds=5)
    out["delete"] = await DBOS.delete_workflow_async("fork-of-done")
    out["deletes"] = await DBOS.delete_workflows_async(["no-such-workflow"])
    return out


@DBOS.workflow()
async def queue_twins():
    out = {}
    q = await DBOS.register_queue_async("dbq", concurrency=4)
    out["registered"] = [q.name, await q.get_concurrency_async()]
    out["retrieved"] = (await DBOS.retrieve_queue_async("dbq")).name
    out["listed"] = sorted(x.name for x in await DBOS.list_queues_async())
    out["versions"] = len(await DBOS.list_application_versions_async()) > 0
    out["latest"] = (await DBOS.get_latest_application_version_async())["version_name"]
    await DBOS.set_latest_application_version_async(out["latest"])
    handle = await DBOS.enqueue_workflow_async("dbq", async_child, 3)
    out["enqueued by name"] = await handle.get_result()
    handle = await DBOS.enqueue_workflow_with_options_async({"queue_name": "dbq", "workflow_name": "sync_child"}, 4)
    out["enqueued with options"] = await handle.get_result()
    handle = await codeq.enqueue_async(async_child, 5)
    out["enqueued on codeq"] = await handle.get_result()
    await DBOS.create_schedule_async(schedule_name="wf-sched", workflow_fn=nightly, schedule="0 0 1 1 *", context="c")
    out["schedules"] = [s["schedule_name"] for s in await DBOS.list_schedules_async()]
    out["schedule"] = (await DBOS.get_schedule_async("wf-sched"))["context"]
    out["delete schedule"] = await DBOS.delete_schedule_async("wf-sched")
    try:
        await DBOS.apply_schedules_async([])
    except Exception as exc:  # noqa: BLE001 - the program reports what was raised
        out["apply in a workflow"] = f"{type(exc).__name__}: {exc}"
    await DBOS.delete_queue_async("dbq")
    out["after delete"] = await DBOS.retrieve_queue_async("dbq")
    return out


@DBOS.step()
async def a_step():
    return "stepped"


@DBOS.workflow()
async def gathered(destination):
    """Twins gathered at once take their positions in call order, whatever finishes first."""
    results = await asyncio.gather(
        DBOS.list_workflows_async(workflow_ids=[destination]),
        a_step(),  # an async step takes its position when its task starts, on the loop
        DBOS.send_async(destination, "gathered", "t"),
        DBOS.get_all_events_async(destination),
        DBOS.set_event_async("g", 1),
        DBOS.list_workflow_steps_async(destination),
        DBOS.write_stream_async("gs", 1),
        DBOS.get_workflow_status_async(destination),
        codeq.enqueue_async(async_child, 11),  # the child's id is the parent's and this position
    )
    enqueued = results[8]
    return [len(results[0]), results[1], results[2], results[3], results[4], results[6], results[7].workflow_id,
            enqueued.get_workflow_id(), await enqueued.get_result()]


@DBOS.workflow()
async def refuses_sync_calls():
    """Sync methods called on the workflow's own loop raise before taking a position."""
    out = []
    for name, call in [
        ("sleep", lambda: DBOS.sleep(0)),
        ("send", lambda: DBOS.send("x", 1)),
        ("set_event", lambda: DBOS.set_event("k", 1)),
        ("recv", lambda: DBOS.recv("t", 0)),
        ("patch", lambda: DBOS.patch("p")),
    ]:
        try:
            call()
        except RuntimeError as exc:
            out.append([name, str(exc)])
    out.append(await DBOS.get_all_events_async(DBOS.workflow_id))
    return out


def sync_calls(wfid):
    """Every sync method DBOS refuses on a running loop, with arguments it would accept."""
    return [
        ("register_queue", lambda: DBOS.register_queue("rq")),
        ("retrieve_queue", lambda: DBOS.retrieve_queue("rq")),
        ("delete_queue", lambda: DBOS.delete_queue("rq")),
        ("list_queues", lambda: DBOS.list_queues()),
        ("run_step", lambda: DBOS.run_step(None, lambda: 1)),
        ("get_workflow_status", lambda: DBOS.get_workflow_status(wfid)),
        ("get_result", lambda: DBOS.get_result(wfid)),
        ("wait_first", lambda: DBOS.wait_first([])),
        ("retrieve_workflow", lambda: DBOS.retrieve_workflow(wfid)),
        ("send", lambda: DBOS.send(wfid, 1)),
        ("send_bulk", lambda: DBOS.send_bulk([])),
        ("recv", lambda: DBOS.recv()),
        ("sleep", lambda: DBOS.sleep(0)),
        ("set_event", lambda: DBOS.set_event("k", 1)),
        ("get_event", lambda: DBOS.get_event(wfid, "k", 0)),
        ("get_all_events", lambda: DBOS.get_all_events(wfid)),
        ("cancel_workflow", lambda: DBOS.cancel_workflow(wfid)),
        ("cancel_workflows", lambda: DBOS.cancel_workflows([wfid])),
        ("update_workflow_attributes", lambda: DBOS.update_workflow_attributes(wfid, None)),
        ("delete_workflow", lambda: DBOS.delete_workflow(wfid)),
        ("delete_workflows", lambda: DBOS.delete_workflows([wfid])),
        ("resume_workflow", lambda: DBOS.resume_workflow(wfid)),
        ("resume_workflows", lambda: DBOS.resume_workflows([wfid])),
        ("set_workflow_delay", lambda: DBOS.set_workflow_delay(wfid, delay_seconds=1)),
        ("fork_workflow", lambda: DBOS.fork_workflow(wfid, 1)),
        ("list_workflows", lambda: DBOS.list_workflows()),
        ("list_queued_workflows", lambda: DBOS.list_queued_workflows()),
        ("list_workflow_steps", lambda: DBOS.list_workflow_steps(wfid)),
        ("write_stream", lambda: DBOS.write_stream("s", 1)),
        ("close_stream", lambda: DBOS.close_stream("s")),
        ("read_stream", lambda: next(DBOS.read_stream(wfid, "s"))),
        ("patch", lambda: DBOS.patch("p")),
        ("deprecate_patch", lambda: DBOS.deprecate_patch("p")),
    ]


async def outside_a_workflow():
    """The twins called from plain async code: nothing is recorded, values come back."""
    with SetWorkflowID("inbox-2"):
        handle = await asyncio.to_thread(DBOS.start_workflow, inbox, 3)
    see("send outside", await DBOS.send_async("inbox-2", "a", "t"))
    see("send_bulk outside", await DBOS.send_bulk_async([SendMessage("inbox-2", "b", "t"), SendMessage("inbox-2", "c", "t")]))
    see("inbox-2 got", await asyncio.to_thread(handle.get_result))
    await attempt_async("set_event outside", lambda: DBOS.set_event_async("k", 1))
    await attempt_async("write_stream outside", lambda: DBOS.write_stream_async("s", 1))
    await attempt_async("close_stream outside", lambda: DBOS.close_stream_async("s"))
    await attempt_async("patch_async outside", lambda: DBOS.patch_async("p"))
    await attempt_async("deprecate_patch_async outside", lambda: DBOS.deprecate_patch_async("p"))
    see("all events outside", await DBOS.get_all_events_async("messaging-1"))
    see("listed outside", [w.workflow_id for w in await DBOS.list_workflows_async(workflow_ids=["inbox-2"])])
    see("queued outside", await DBOS.list_queued_workflows_async(queue_name="nothing-here"))
    see("steps outside", [s["function_name"] for s in await DBOS.list_workflow_steps_async("inbox-2")])
    await attempt_async("send_async to nowhere", lambda: DBOS.send_async("nowhere", 1))

    with SetWorkflowID("blocked-2"):
        await pausedq.enqueue_async(blocked)
    see("cancel outside", await DBOS.cancel_workflow_async("blocked-2"))
    see("status after cancel", (await DBOS.get_workflow_status_async("blocked-2")).status)
    resumed = await DBOS.resume_workflow_async("blocked-2", queue_name="pausedq")
    see("resumed outside", [resumed.get_workflow_id(), (await resumed.get_status()).status])
    await DBOS.cancel_workflows_async(["blocked-2"])
    resumed = await DBOS.resume_workflows_async(["blocked-2"], queue_name="pausedq")
    see("resumed many outside", [[h.get_workflow_id(), (await h.get_status()).queue_name] for h in resumed])
    await attempt_async("resume nothing", lambda: DBOS.resume_workflow_async("no-such-workflow"))
    with SetWorkflowID("fork-2"):
        forked = await DBOS.fork_workflow_async("child-1", 1)
    see("forked outside", [forked.get_workflow_id(), await forked.get_result()])
    await attempt_async("fork nothing", lambda: DBOS.fork_workflow_async("no-such-workflow", 1))
    see("attributes outside", await DBOS.update_workflow_attributes_async("inbox-2", {"a": 1}))
    see("attributes read", (await DBOS.get_workflow_status_async("inbox-2")).attributes)
    see("delay outside", await DBOS.set_workflow_delay_async("inbox-2", delay_seconds=1))
    await attempt_async("delay both", lambda: DBOS.set_workflow_delay_async("inbox-2", delay_seconds=1, delay_until_epoch_ms=1))
    see("delete outside", await DBOS.delete_workflow_async("fork-2"))
    see("deleted", await DBOS.get_workflow_status_async("fork-2"))
    see("deletes outside", await DBOS.delete_workflows_async(["blocked-2"], delete_children=True))


async def queues_outside():
    q = await DBOS.register_queue_async("dbq2", worker_concurrency=1, concurrency=3, limiter={"limit": 5, "period": 2.0})
    settings = lambda: asyncio.gather(  # noqa: E731
        q.get_concurrency_async(), q.get_worker_concurrency_async(), q.get_limiter_async(),
        q.get_priority_enabled_async(), q.get_partition_queue_async(), q.get_polling_interval_sec_async(),
    )
    see("registered settings", await settings())
    await q.set_concurrency_async(6)
    await q.set_worker_concurrency_async(2)
    await q.set_limiter_async({"limit": 7, "period": 3.0})
    await q.set_priority_enabled_async(True)
    await q.set_partition_queue_async(True)
    await q.set_polling_interval_sec_async(0.5)
    see("changed settings", await settings())
    other = Queue("dbq2", database_backed_queue=True)
    see("read by another object", await other.get_concurrency_async())
    await attempt_async("worker above total", lambda: q.set_worker_concurrency_async(9))
    await attempt_async("bad limiter", lambda: q.set_limiter_async({"limit": 1}))
    await attempt_async("bad polling interval", lambda: q.set_polling_interval_sec_async(0))
    see("code queue settings", [await codeq.get_concurrency_async(), await codeq.get_worker_concurrency_async(),
                                await codeq.get_priority_enabled_async()])
    await attempt_async("code queue set", lambda: codeq.set_concurrency_async(1))
    await q.set_partition_queue_async(False)
    await q.set_concurrency_async(None)
    see("registered again", (await DBOS.register_queue_async("dbq2", on_conflict="never_update")).name)
    see("list queues", sorted(x.name for x in await DBOS.list_queues_async(application_name="diff-async-api")))
    await DBOS.delete_queue_async("dbq2")
    see("retrieve deleted", await DBOS.retrieve_queue_async("dbq2"))
    with SetWorkflowID("enq-1"):
        first = await codeq.enqueue_async(async_child, 6)
        second = await codeq.enqueue_async(sync_child, 7)
    see("SetWorkflowID consumed by the first enqueue", [first.get_workflow_id(), second.get_workflow_id() != "enq-1"])
    see("enqueued results", [await first.get_result(), await second.get_result()])
    see("enqueued status", [(await first.get_status()).queue_name, (await first.get_status()).status])
    await DBOS.register_queue_async("dbq3")
    with SetWorkflowID("enq-2"):
        by_name = await DBOS.enqueue_workflow_async("dbq3", async_child, 8)
    see("enqueue_workflow_async outside", [by_name.get_workflow_id(), await by_name.get_result()])
    options = {"queue_name": "dbq3", "workflow_name": "async_child", "workflow_id": "enq-3"}
    by_options = await DBOS.enqueue_workflow_with_options_async(options, 9)
    see("enqueue_workflow_with_options_async outside", [by_options.get_workflow_id(), await by_options.get_result()])
    try:  # a KeyError naming the key in both (pgfleet's also says what needs it: README)
        await DBOS.enqueue_workflow_with_options_async({"queue_name": "dbq3"})
    except KeyError as exc:
        see("enqueue_workflow_with_options_async bad key", ["KeyError", "workflow_name" in str(exc)])


async def schedules_and_versions_outside():
    await DBOS.create_schedule_async(schedule_name="out-sched", workflow_fn=nightly, schedule="0 0 1 1 *", context=1)
    see("schedule outside", (await DBOS.get_schedule_async("out-sched"))["schedule"])
    await attempt_async("schedule taken", lambda: DBOS.create_schedule_async(schedule_name="out-sched", workflow_fn=nightly, schedule="0 0 1 1 *"))
    await attempt_async("schedule bad cron", lambda: DBOS.create_schedule_async(schedule_name="x", workflow_fn=nightly, schedule="nope"))
    await DBOS.apply_schedules_async([{"schedule_name": "applied", "workflow_fn": nightly, "schedule": "0 0 1 1 *"}])
    see("schedules outside", sorted(s["schedule_name"] for s in await DBOS.list_schedules_async()))
    await DBOS.delete_schedule_async("out-sched")
    see("deleted schedule", await DBOS.get_schedule_async("out-sched"))
    see("versions outside", [v["version_name"] for v in await DBOS.list_application_versions_async()])
    see("latest outside", (await DBOS.get_latest_application_version_async())["version_name"])
    see("set latest", await DBOS.set_latest_application_version_async("PATCHING_ENABLED"))


async def refusals_on_the_loop():
    for name, call in sync_calls("messaging-1"):
        attempt(f"{name} on a loop", call)
    with SetWorkflowID("refuses-1"):
        see("refused in a workflow", await refuses_sync_calls())
    see("refused in a workflow steps", steps("refuses-1"))


async def main():
    with SetWorkflowID("inbox-1"):
        inbox_handle = await asyncio.to_thread(DBOS.start_workflow, inbox, 3)  # a sync workflow: off the loop
    with SetWorkflowID("messaging-1"):
        see("messaging twins", await messaging_twins("inbox-1"))
    see("messaging twins steps", steps("messaging-1"))
    see("inbox got", await asyncio.to_thread(inbox_handle.get_result))
    see("stream", list(await asyncio.to_thread(lambda: list(DBOS.read_stream("messaging-1", "s")))))
    for start_step in (6, 9):
        forked = await DBOS.fork_workflow_async("messaging-1", start_step)
        see(f"messaging twins forked from {start_step}", await forked.get_result())
        see(f"fork from {start_step} steps", steps(forked.get_workflow_id()))

    with SetWorkflowID("victim-1"):
        await pausedq.enqueue_async(blocked)
    with SetWorkflowID("child-1"):
        see("child", await asyncio.to_thread(lambda: DBOS.start_workflow(sync_child, 1).get_result()))
    with SetWorkflowID("admin-1"):
        see("admin twins", await admin_twins("victim-1", "child-1", "inbox-1"))
    see("admin twins steps", steps("admin-1"))
    see("victim status", [(await DBOS.get_workflow_status_async("victim-1")).status])
    see("attributes set in a workflow", (await DBOS.get_workflow_status_async("child-1")).attributes)

    with SetWorkflowID("queues-1"):
        see("queue twins", await queue_twins())
    see("queue twins steps", steps("queues-1"))

    with SetWorkflowID("inbox-3"):
        inbox3 = await asyncio.to_thread(DBOS.start_workflow, inbox, 1)
    with SetWorkflowID("gathered-1"):
        see("gathered", await gathered("inbox-3"))
    see("gathered steps", steps("gathered-1"))
    see("inbox-3 got", await asyncio.to_thread(inbox3.get_result))
    with SetWorkflowID("inbox-4"):
        inbox4 = await asyncio.to_thread(DBOS.start_workflow, inbox, 1)
    with SetWorkflowID("step-twins-1"):
        see("twins in a step", await step_twins("inbox-4"))
    see("twins in a step steps", steps("step-twins-1"))
    see("inbox-4 got", await asyncio.to_thread(inbox4.get_result))

    await outside_a_workflow()
    await queues_outside()
    await schedules_and_versions_outside()
    await refusals_on_the_loop()


if __name__ == "__main__":
    DBOS.launch()
    asyncio.run(main())
    attempt("sleep off the loop", lambda: DBOS.sleep(0))
    DBOS.destroy()
    report()
