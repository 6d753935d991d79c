"""Async and sync workflows mixed (#11): a sync child called from an async workflow, an async
child run by a sync workflow, gathered children, a child's error recorded in its parent, a step
called inside a step, two awaits of one workflow id at once."""

import asyncio

from dbos import DBOS, SetWorkflowID
from observe import database_url, report, see

DBOS(config={"name": "diff-async-mixing", "system_database_url": database_url()})
runs = {}
loops = []
began = asyncio.Event()


def count(name):
    runs[name] = runs.get(name, 0) + 1


@DBOS.step()
async def inner(x):
    count("inner")
    return [DBOS.step_id, x]


@DBOS.step()
async def outer(x):
    return [DBOS.step_id, await inner(x)]


@DBOS.step()
def sync_outer(x):
    return [DBOS.step_id, x, DBOS.step_status.step_id]


@DBOS.workflow()
def sync_kid(x):
    return [DBOS.workflow_id, sync_outer(x)]


@DBOS.workflow()
async def async_kid(x):
    if x < 0:
        raise ValueError(f"negative {x}")
    await asyncio.sleep(0.001 * (5 - x) if x < 5 else 0)
    return [DBOS.workflow_id, await inner(x)]


@DBOS.workflow()
async def async_parent():
    nested = await outer(1)
    sync_child = sync_kid(2)  # a sync child called from an async workflow: runs inline
    gathered = await asyncio.gather(async_kid(1), async_kid(2), async_kid(3))
    try:
        await async_kid(-1)
    except ValueError as exc:
        failed = str(exc)
    handle = await DBOS.start_workflow_async(async_kid, -2)
    try:
        await handle.get_result()
    except ValueError as exc:
        failed_started = str(exc)
    return [nested, sync_child, list(gathered), failed, failed_started]


@DBOS.workflow()
def sync_parent():
    # An async child driven by a loop of the sync workflow's own (never closed: see
    # async_workflows.py on dbos 2.30's shared default executor).
    loops.append(asyncio.new_event_loop())
    return [loops[-1].run_until_complete(async_kid(4)), sync_outer(5)]


@DBOS.workflow()
def sync_reader(workflow_id, failed_id):
    # DBOS.get_result in a workflow is one DBOS.getResult step (the async twin's too).
    try:
        DBOS.get_result(failed_id)
    except ValueError as exc:
        failed = str(exc)
    return [DBOS.get_result(workflow_id), failed]


@DBOS.workflow()
async def async_reader(workflow_id, failed_id):
    try:
        await DBOS.get_result_async(failed_id)
    except ValueError as exc:
        failed = str(exc)
    return [await DBOS.get_result_async(workflow_id), failed]


@DBOS.workflow()
def sync_quitter():
    DBOS.cancel_workflow(DBOS.workflow_id)
    return sync_outer("after the cancel")


@DBOS.workflow()
def sync_boss():
    try:
        sync_quitter()
    except Exception as exc:
        return [type(exc).__name__, str(exc)]


@DBOS.workflow()
async def async_quitter():
    await asyncio.to_thread(DBOS.cancel_workflow, DBOS.workflow_id)
    return await inner("after the cancel")


@DBOS.workflow()
async def async_boss():
    try:
        await async_quitter()
    except Exception as exc:
        return [type(exc).__name__, str(exc), await inner("boss goes on")]


@DBOS.workflow()
async def once(x):
    count("once")
    began.set()
    await DBOS.sleep_async(0.2)
    return x


def steps_of(workflow_id):
    return [
        [s["function_id"], s["function_name"], s["output"] if s["function_name"] != "DBOS.sleep" else "slept",
         s["error"] is not None, s["child_workflow_id"]]
        for s in DBOS.list_workflow_steps(workflow_id)
    ]


async def main():
    with SetWorkflowID("async-parent"):
        see("async parent", await async_parent())
    see("steps of async-parent", await asyncio.to_thread(steps_of, "async-parent"))
    see("steps of its sync child", await asyncio.to_thread(steps_of, "async-parent-2"))
    with SetWorkflowID("async-reader"):
        see("DBOS.get_result_async in an async workflow", await async_reader("sync-parent", "failing-kid"))
    see("steps of async-reader", await asyncio.to_thread(steps_of, "async-reader"))
    with SetWorkflowID("async-boss"):
        see("an async child that cancelled itself", await async_boss())
    see("steps of async-boss", await asyncio.to_thread(steps_of, "async-boss"))
    see("steps of its child", await asyncio.to_thread(steps_of, "async-boss-1"))
    see("async statuses", [(await DBOS.get_workflow_status_async("async-boss")).status,
                           (await DBOS.get_workflow_status_async("async-boss-1")).status])

    async def await_once(x):
        with SetWorkflowID("once-1"):
            return await once(x)

    first = asyncio.ensure_future(await_once(1))
    await began.wait()  # the first is running: the second start finds its row
    see("one id awaited twice at once", [await await_once(2), await first])
    see("runs", dict(runs))


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("sync-parent"):
        see("sync parent", sync_parent())
    see("steps of sync-parent", steps_of("sync-parent"))
    with SetWorkflowID("failing-kid"):
        try:
            loops[-1].run_until_complete(async_kid(-3))
        except ValueError:
            pass
    with SetWorkflowID("sync-reader"):
        see("DBOS.get_result in a sync workflow", sync_reader("sync-parent", "failing-kid"))
    see("steps of sync-reader", steps_of("sync-reader"))
    with SetWorkflowID("sync-boss"):
        see("a sync child that cancelled itself", sync_boss())
    see("steps of sync-boss", steps_of("sync-boss"))
    see("steps of its child", steps_of("sync-boss-1"))
    see("statuses", [DBOS.get_workflow_status("sync-boss").status, DBOS.get_workflow_status("sync-boss-1").status])
    asyncio.run(main())
    DBOS.destroy()
    report()
