"""programs/nesting.py's rules from asyncio code: an async step awaiting, starting or enqueueing
a workflow, DBOS.sleep_async inside an async step and outside any workflow, and a sync step
called from an async workflow doing the same."""

import asyncio

from dbos import DBOS, Queue, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-async-nesting", "system_database_url": database_url()})
queue = Queue("async-nesting-queue")


@DBOS.workflow()
async def async_child(x):
    return [x, DBOS.workflow_id]


@DBOS.step()
async def awaits_workflow(x):
    return await async_child(x)


@DBOS.step()
async def starts_workflow(x):
    handle = await DBOS.start_workflow_async(async_child, x)
    return await handle.get_result()


@DBOS.step()
async def enqueues_workflow(x):
    handle = await queue.enqueue_async(async_child, x)
    return await handle.get_result()


@DBOS.step()
async def sleeps_async():
    await DBOS.sleep_async(0.01)
    return "slept"


@DBOS.step()
def sync_step_sleeping():
    DBOS.sleep(0.01)
    return "slept"


@DBOS.step()
async def plain_async_step(x):
    return [x, DBOS.step_id]


async def attempt_in(make, *, error=True):
    """``["value", v]`` or ``["raised", class, message]`` (``error=False``: only that it raised;
    see programs/nesting.py)."""
    try:
        return ["value", await make()]
    except Exception as exc:  # noqa: BLE001 - recorded for the transcript
        return ["raised", type(exc).__name__, str(exc)] if error else ["raised"]


@DBOS.workflow()
async def async_parent(x):
    await DBOS.sleep_async(0)  # no position taken
    seen = {
        "awaits workflow": await attempt_in(lambda: awaits_workflow(x), error=False),
        "starts workflow": await attempt_in(lambda: starts_workflow(x), error=False),
        "enqueues workflow": await attempt_in(lambda: enqueues_workflow(x), error=False),
        "sleep_async in step": await attempt_in(sleeps_async),
        "sync step sleeping": await attempt_in(lambda: asyncio.to_thread(sync_step_sleeping)),
        "plain step": await attempt_in(lambda: plain_async_step(x)),
    }
    return seen


async def main():
    with SetWorkflowID("async-nesting-parent"):
        await attempt_async("parent", lambda: async_parent(1))
    steps = await DBOS.list_workflow_steps_async("async-nesting-parent")
    see("steps", [[s["function_id"], s["function_name"].split(".")[-1], s["error"] is not None] for s in steps])
    see("children", len(await DBOS.list_workflows_async(parent_workflow_id="async-nesting-parent")))
    await attempt_async("sleep_async outside a workflow", lambda: DBOS.sleep_async(0.01))
    await attempt_async("sleep_async 0 outside a workflow", lambda: DBOS.sleep_async(0))


async def attempt_async(label, make):
    """observe.attempt for a coroutine: its value, or what it raised, in the transcript."""
    try:
        value = await make()
    except Exception as exc:  # noqa: BLE001 - recorded for the transcript
        error = exc
        attempt(label, lambda: _raise(error))
        return None
    see(label, value)
    return value


def _raise(error):
    raise error


if __name__ == "__main__":
    DBOS.launch()
    asyncio.run(main())
    report()
    DBOS.destroy()
