"""DBOSClient's _async methods (#11), driven from asyncio code against a DBOS app in the same
program: enqueues and async handles, events, messages, streams, wait_first, cancel/resume,
delays, forks, listings, database-backed queues, schedules, versions and renames; what each
returns and raises, and the rows they leave."""

import asyncio

from dbos import DBOS, DBOSClient, Queue, SendMessage, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-async-client", "system_database_url": database_url(), "application_version": "v-ac"})
Queue("client-q")
# "parked-q" is declared by nobody: what is enqueued there stays ENQUEUED until moved.


@DBOS.step()
def twice(x):
    return 2 * x


@DBOS.workflow()
def doubled(x):
    return twice(x) + 0


@DBOS.step()
async def thrice(x):
    await asyncio.sleep(0)
    return 3 * x


@DBOS.workflow()
async def tripled(x):
    return await thrice(x)


@DBOS.workflow()
def waiter(topic):
    DBOS.set_event("ready", topic)
    got = DBOS.recv(topic, timeout_seconds=30)
    DBOS.set_event("got", got)
    return got


@DBOS.workflow()
def inbox(count):
    return [DBOS.recv("b", timeout_seconds=30) for _ in range(count)]


@DBOS.workflow()
def streamer(n):
    for i in range(n):
        DBOS.write_stream("s", {"i": i})
    DBOS.close_stream("s")
    return n


@DBOS.workflow()
def fails():
    raise ValueError("it failed")


CLIENTS = []


@DBOS.workflow()
async def peeker(target):
    # A client inside a workflow records nothing: the step after its calls is the first step.
    handle = await CLIENTS[0].retrieve_workflow_async(target)
    status = (await handle.get_status()).status
    return [status, await handle.get_result(), await thrice(1)]


async def trying(label, make):
    """``attempt`` for a coroutine: its value, or what it raised, in the transcript."""
    try:
        value = await make()
    except Exception as exc:  # noqa: BLE001 - the transcript is about exactly this
        def reraise(exc=exc):
            raise exc

        attempt(label, reraise)
        return None
    return see(label, value)


def opts(name, wfid, queue="client-q", **more):
    return {"workflow_name": name, "queue_name": queue, "workflow_id": wfid, **more}


async def handles_and_results(client):
    h = await client.enqueue_async(opts("doubled", "c-1"), 21)
    see("handle id", h.get_workflow_id())
    see("enqueued result", await h.get_result())
    see("status", [(await h.get_status()).status, (await h.get_status()).name])
    see("async workflow result", await (await client.enqueue_async(opts("tripled", "c-3"), 5)).get_result())
    await client.enqueue_async(opts("fails", "c-fail"))
    failing = await client.retrieve_workflow_async("c-fail")
    await trying("failing result", failing.get_result)
    see("retrieved result", await (await client.retrieve_workflow_async("c-1")).get_result())
    await trying("retrieve missing", lambda: client.retrieve_workflow_async("no-such-wf"))
    parked = await client.enqueue_async(opts("doubled", "p-1", queue="parked-q", deduplication_id="d1"), 1)
    await trying("dedup", lambda: client.enqueue_async(opts("doubled", "p-2", queue="parked-q", deduplication_id="d1"), 2))
    see("parked status", (await parked.get_status()).status)
    await trying("wait_first none", lambda: client.wait_first_async([]))
    await trying("wait_first dup", lambda: client.wait_first_async([h, h]))
    first = await client.wait_first_async([parked, h], polling_interval_sec=0.1)
    see("wait_first", first.get_workflow_id())
    await client.cancel_workflow_async("p-1")
    await trying("cancelled result", parked.get_result)
    resumed = await client.resume_workflow_async("p-1", queue_name="client-q")
    see("resumed result", await resumed.get_result())


async def events_messages_streams(client):
    h = await client.enqueue_async(opts("waiter", "w-1"), "t")
    see("ready event", await client.get_event_async("w-1", "ready", timeout_seconds=30))
    see("missing event", await client.get_event_async("w-1", "never", timeout_seconds=0.2))
    await client.send_async("w-1", "hello", "t")
    see("waiter result", await h.get_result())
    see("got event", await client.get_event_async("w-1", "got"))
    await trying("send to nowhere", lambda: client.send_async("no-such-wf", 1, "t"))
    box = await client.enqueue_async(opts("inbox", "b-1"), 2)
    await client.send_bulk_async([SendMessage("b-1", "x", "b"), SendMessage("b-1", "y", "b")])
    see("bulk inbox", await box.get_result())
    s = await client.enqueue_async(opts("streamer", "s-1"), 3)
    see("stream", [v async for v in client.read_stream_async("s-1", "s")])
    see("stream from offset", [v async for v in client.read_stream_async("s-1", "s", offset=2)])
    see("stream of a missing workflow", [v async for v in client.read_stream_async("no-such-wf", "s")])
    see("streamer result", await s.get_result())


async def management(client):
    await client.enqueue_async(opts("doubled", "delayed-1", delay_seconds=3600), 4)
    see("delayed status", (await (await client.retrieve_workflow_async("delayed-1")).get_status()).status)
    await trying("delay neither", lambda: client.set_workflow_delay_async("delayed-1"))
    await trying("delay both", lambda: client.set_workflow_delay_async("delayed-1", delay_seconds=1, delay_until_epoch_ms=1))
    await client.set_workflow_delay_async("delayed-1", delay_seconds=0)
    see("delayed result", await (await client.retrieve_workflow_async("delayed-1")).get_result())
    steps = await client.list_workflow_steps_async("c-1")
    see("steps", [[s["function_id"], s["function_name"], s["output"]] for s in steps])
    with SetWorkflowID("fork-1"):
        forked = await client.fork_workflow_async("c-1", 1)
    see("fork", [forked.get_workflow_id(), await forked.get_result()])
    listed = await client.list_workflows_async(name="doubled", sort_desc=False, workflow_id_prefix=["c-", "fork-"])
    see("listed", [[w.workflow_id, w.status] for w in listed])
    await client.update_workflow_attributes_async("c-1", {"team": "a"})
    see("by attributes", [w.workflow_id for w in await client.list_workflows_async(attributes={"team": "a"})])
    await client.enqueue_async(opts("doubled", "p-3", queue="parked-q"), 3)
    see("queued", [[w.workflow_id, w.status] for w in await client.list_queued_workflows_async(queue_name="parked-q")])
    await client.cancel_workflows_async(["p-3"])
    await client.delete_workflow_async("p-3")
    await client.delete_workflows_async(["c-fail"])
    await trying("retrieve deleted", lambda: client.retrieve_workflow_async("p-3"))
    handles = await client.resume_workflows_async(["delayed-1"])
    see("resume finished", [h.get_workflow_id() for h in handles])


def settings(q):
    return None if q is None else [q.name, q.concurrency, q.worker_concurrency, q.limiter, q.priority_enabled]


async def queues_schedules_versions(client):
    see("registered", settings(await client.register_queue_async("db-q", concurrency=2, limiter={"limit": 3, "period": 1.0})))
    see("retrieved", settings(await client.retrieve_queue_async("db-q")))
    see("listed queues", sorted(q.name for q in await client.list_queues_async()))
    await trying("register bad conflict", lambda: client.register_queue_async("db-q", on_conflict="update_if_latest_version"))
    await client.delete_queue_async("db-q")
    see("retrieved after delete", settings(await client.retrieve_queue_async("db-q")))
    await trying("bad cron", lambda: client.create_schedule_async(schedule_name="x", workflow_name="doubled", schedule="nope"))
    await trying("bad timezone", lambda: client.create_schedule_async(
        schedule_name="x", workflow_name="doubled", schedule="0 0 1 1 *", cron_timezone="Nowhere/City"))
    await client.create_schedule_async(schedule_name="yearly", workflow_name="doubled", schedule="0 0 1 1 *", context={"k": 1})
    await trying("duplicate schedule", lambda: client.create_schedule_async(
        schedule_name="yearly", workflow_name="doubled", schedule="0 0 1 1 *"))
    await client.apply_schedules_async([{"schedule_name": "other", "workflow_name": "doubled", "schedule": "0 0 1 1 *"}])
    see("schedules", sorted(s["schedule_name"] for s in await client.list_schedules_async()))
    got = await client.get_schedule_async("yearly")
    see("schedule", [got["schedule_name"], got["workflow_name"], got["schedule"], got["status"], got["context"]])
    await client.delete_schedule_async("yearly")
    await client.delete_schedule_async("other")
    see("schedule after delete", await client.get_schedule_async("yearly"))
    see("versions", [v["version_name"] for v in await client.list_application_versions_async()])
    see("latest version", (await client.get_latest_application_version_async())["version_name"])
    await trying("promote unknown", lambda: client.set_latest_application_version_async("no-such-version"))
    await trying("rename nobody", lambda: client.rename_application_async("nobody", "renamed"))


async def main():
    client = DBOSClient(system_database_url=database_url())
    await trying("check connection", client.check_connection_async)
    await handles_and_results(client)
    CLIENTS.append(client)
    with SetWorkflowID("peek-1"):
        see("client inside a workflow", await peeker("c-1"))
    await events_messages_streams(client)
    await management(client)
    await queues_schedules_versions(client)
    client.destroy()


if __name__ == "__main__":
    DBOS.launch()
    asyncio.run(main())
    DBOS.destroy()
    report()
