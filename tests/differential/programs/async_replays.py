"""Async workflows on queues, and replayed (#11): Queue.enqueue and enqueue_async of async
workflows, enqueue from inside one, a start with an existing id, a fork and a cancel-then-resume
of an async workflow whose steps were gathered (the positions and rows of the replay)."""

import asyncio

from dbos import DBOS, Queue, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-async-replays", "system_database_url": database_url()})
queue = Queue("async-queue")
ran = []
reached = {}


@DBOS.step()
async def record(label):
    ran.append(label)
    await asyncio.sleep(0)
    return label


@DBOS.step()
def record_sync(label):
    ran.append(label)
    return label


async def async_verdict(exc):
    return True


@DBOS.step(retries_allowed=True, should_retry=async_verdict)
def sync_step_with_async_verdict():
    return "ran"


@DBOS.workflow()
async def queued(x):
    await record(f"queued {x}")
    return [DBOS.workflow_id, x * 2]


@DBOS.workflow()
async def enqueues_children():
    first = await queue.enqueue_async(queued, 1)
    second = await queue.enqueue_async(queued, 2)
    return [first.get_workflow_id(), await first.get_result(), second.get_workflow_id(), await second.get_result()]


@DBOS.workflow()
async def replayed(tag):
    a = await record(f"{tag} a")
    b, c = await asyncio.gather(record(f"{tag} b"), record(f"{tag} c"))
    d = record_sync(f"{tag} d")
    await DBOS.sleep_async(0.01)
    e = await record(f"{tag} e")
    return [a, b, c, d, e]


@DBOS.workflow()
async def paused(tag):
    a = await record(f"{tag} a")
    b, c = await asyncio.gather(record(f"{tag} b"), record(f"{tag} c"))
    reached[tag].set()
    await DBOS.sleep_async(1)
    d = await record(f"{tag} d")
    return [a, b, c, d]


@DBOS.workflow()
async def calls_bad_step():
    return sync_step_with_async_verdict()


async def plain_async(x):
    await asyncio.sleep(0)
    return [DBOS.workflow_id, DBOS.step_id, x]


def plain_sync(x):
    return [DBOS.workflow_id, DBOS.step_id, x]


@DBOS.workflow()
async def uses_run_step_async():
    a = await DBOS.run_step_async({"name": "custom-async"}, plain_async, 2)
    b = await DBOS.run_step_async(None, plain_sync, 3)
    c, d = await asyncio.gather(
        DBOS.run_step_async(None, plain_async, 4), DBOS.run_step_async({"retries_allowed": True}, plain_sync, 5)
    )
    return [a, b, c, d]


@DBOS.workflow()
def sync_run_step_of_async():
    return DBOS.run_step({"name": "async-in-sync"}, plain_async, 6)


def steps_of(workflow_id):
    return [
        [s["function_id"], s["function_name"], s["output"] if s["function_name"] != "DBOS.sleep" else s["output"] is not None,
         s["error"] is not None]
        for s in DBOS.list_workflow_steps(workflow_id)
    ]


async def off(fn, *args):
    """A blocking DBOS call from the loop: in a thread, as DBOS asks (its check_async)."""
    return await asyncio.to_thread(fn, *args)


async def main():
    with SetWorkflowID("enqueued-async"):
        handle = await queue.enqueue_async(queued, 3)
    see("enqueue_async result", await handle.get_result())
    see("enqueue_async status", [(await handle.get_status()).status, (await handle.get_status()).queue_name])
    with SetWorkflowID("enqueuer"):
        see("enqueue_async inside a workflow", await enqueues_children())
    see("steps of enqueuer", steps_of_rows(await off(steps_of, "enqueuer")))
    see("status of a child", (await DBOS.get_workflow_status_async("enqueuer-1")).queue_name)

    with SetWorkflowID("replayed-1"):
        see("first run", await replayed("r"))
    see("steps of replayed-1", await off(steps_of, "replayed-1"))
    ran.clear()
    with SetWorkflowID("fork-of-replayed"):
        fork = await off(DBOS.fork_workflow, "replayed-1", 4)
    see("fork result", await off(fork.get_result))
    see("step bodies the fork ran", sorted(ran))
    see("steps of the fork", await off(steps_of, "fork-of-replayed"))

    ran.clear()
    reached["p"] = asyncio.Event()
    with SetWorkflowID("paused-1"):
        paused_handle = await DBOS.start_workflow_async(paused, "p")
    await reached["p"].wait()
    await off(DBOS.cancel_workflow, "paused-1")
    try:
        await paused_handle.get_result()
    except Exception as exc:
        see("cancelled while sleeping", type(exc).__name__)
    see("status after cancel", (await DBOS.get_workflow_status_async("paused-1")).status)
    see("bodies before the resume", sorted(ran))
    ran.clear()
    reached["p"] = asyncio.Event()
    resumed = await off(DBOS.resume_workflow, "paused-1")
    see("resumed result", await off(resumed.get_result))
    see("bodies the resume ran", sorted(ran))
    see("steps of paused-1", await off(steps_of, "paused-1"))

    ran.clear()
    with SetWorkflowID("enqueued-async"):
        again = await queue.enqueue_async(queued, 99)
    see("enqueue_async with a finished id", await again.get_result())
    with SetWorkflowID("replayed-1"):
        started_again = await DBOS.start_workflow_async(replayed, "again")
    see("start_workflow_async with a finished id", await started_again.get_result())
    see("bodies run by those", ran)
    with SetWorkflowID("run-step-async"):
        see("run_step_async in a workflow", await uses_run_step_async())
    see("steps of run-step-async", await off(steps_of, "run-step-async"))
    see("run_step_async outside a workflow", [await DBOS.run_step_async(None, plain_async, 7),
                                              await DBOS.run_step_async(None, plain_sync, 8)])
    with SetWorkflowID("bad-step"):
        try:
            see("sync step with an async should_retry", await calls_bad_step())
        except Exception as exc:
            see("sync step with an async should_retry", [type(exc).__name__, str(exc)])


def steps_of_rows(rows):
    return [row[:2] + [row[3]] for row in rows]


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("enqueued-from-sync"):
        sync_handle = queue.enqueue(queued, 5)
    see("Queue.enqueue(async) from sync code", sync_handle.get_result())
    see("its status", [DBOS.get_workflow_status("enqueued-from-sync").status, DBOS.get_workflow_status("enqueued-from-sync").queue_name])
    attempt("steps of enqueued-from-sync", lambda: steps_of("enqueued-from-sync"))
    with SetWorkflowID("sync-run-step-of-async"):
        attempt("run_step(async function) in a sync workflow", sync_run_step_of_async)
    attempt("its steps", lambda: steps_of("sync-run-step-of-async"))
    asyncio.run(main())
    DBOS.destroy()
    report()
