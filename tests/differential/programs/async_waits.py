"""The waiting _async APIs: recv_async and get_event_async (messages and events from outside,
timeouts, from a step), read_stream_async, wait_first_async, run_step_async with sync and async
functions, and DBOS.asyncio_wait (its replay, by a fork, returns the recorded done/pending
split)."""

import asyncio

from dbos import DBOS, SetWorkflowID, SetWorkflowTimeout
from observe import attempt, database_url, report, see

DBOS(config={"name": "differential-async-waits", "system_database_url": database_url()})


@DBOS.step()
async def recv_in_step():
    try:
        await DBOS.recv_async("t", timeout_seconds=0)
    except Exception as exc:  # noqa: BLE001 - what DBOS raises is the observation
        return [type(exc).__name__, str(exc)]
    return "no error"


@DBOS.workflow()
async def receiver():
    first = await DBOS.recv_async("t", timeout_seconds=10)
    second = await DBOS.recv_async("t", timeout_seconds=0.2)  # nothing comes: None
    untopiced = await DBOS.recv_async(timeout_seconds=10)
    refused = await recv_in_step()
    return [first, second, untopiced, refused]


@DBOS.step()
async def event_in_step(workflow_id):
    return await DBOS.get_event_async(workflow_id, "missing", timeout_seconds=0)


@DBOS.workflow()
async def event_reader(target):
    missing = await DBOS.get_event_async(target, "never", timeout_seconds=0.2)
    in_step = await event_in_step(target)
    present = await DBOS.get_event_async(target, "k", timeout_seconds=5)  # set already
    return [missing, in_step, present]


@DBOS.workflow()
def event_setter(value):
    DBOS.recv("go", timeout_seconds=10)
    DBOS.set_event("k", value)
    return value


@DBOS.workflow()
def sync_event_reader(target):
    return DBOS.get_event(target, "k", timeout_seconds=5)  # set already: the timeout is recorded too


@DBOS.workflow()
def stream_writer(count):
    for i in range(count):
        DBOS.write_stream("s", {"i": i})
    DBOS.close_stream("s")
    return count


@DBOS.workflow()
async def quick(x):
    return x


@DBOS.workflow()
async def slow(x):
    await DBOS.recv_async("never", timeout_seconds=2)
    return x


@DBOS.workflow()
async def waits_for_first():
    await DBOS.sleep_async(0.05)  # the children start after their parent, whatever the clock's resolution
    slow_handle = await DBOS.start_workflow_async(slow, "slow")
    await DBOS.sleep_async(0.05)
    quick_handle = await DBOS.start_workflow_async(quick, "quick")
    first = await DBOS.wait_first_async([slow_handle, quick_handle], polling_interval_sec=0.1)
    return [first.workflow_id == quick_handle.workflow_id, await first.get_result()]


def sync_double(x):
    return 2 * x


async def async_triple(x):
    await asyncio.sleep(0)
    return 3 * x


def failing():
    raise ValueError("sync step failed")


@DBOS.workflow()
async def runs_steps():
    out = [await DBOS.run_step_async(None, sync_double, 4)]
    out.append(await DBOS.run_step_async({"name": "tripler"}, async_triple, 5))
    try:
        await DBOS.run_step_async({"retries_allowed": True, "max_attempts": 2, "interval_seconds": 0}, failing)
    except Exception as exc:  # noqa: BLE001 - what DBOS raises is the observation
        out.append(type(exc).__name__)
    return out


@DBOS.step()
async def fast_step():
    return "fast"


@DBOS.step()
async def slow_step():
    await asyncio.sleep(0.5)
    return "slow"


@DBOS.workflow()
async def waits_durably():
    fast, slow_one = fast_step(), slow_step()
    done, pending = await DBOS.asyncio_wait([fast, slow_one], return_when=asyncio.FIRST_COMPLETED)
    done_values = sorted([t.result() for t in done])
    for task in pending:
        await task
    after = await fast_step()
    return [done_values, len(pending), after]


@DBOS.step(preemptible=True)
async def long_step():
    DBOS.logger.info("long step started")
    await asyncio.sleep(60)
    return "finished"


@DBOS.workflow()
async def preempted():
    await DBOS.sleep_async(0.01)
    return await long_step()


async def main():
    handle = await DBOS.start_workflow_async(receiver)
    await asyncio.to_thread(DBOS.send, handle.workflow_id, "hello", "t")
    await asyncio.to_thread(DBOS.send, handle.workflow_id, "no topic")
    see("receiver", await handle.get_result())
    refork = await asyncio.to_thread(DBOS.fork_workflow, handle.workflow_id, 8)
    see("receiver replayed", await (await DBOS.retrieve_workflow_async(refork.workflow_id)).get_result())
    see("recv outside a workflow", await attempt_async(lambda: DBOS.recv_async("t", timeout_seconds=0)))

    # A sync workflow started from a thread (DBOS runs a sync one started with
    # start_workflow_async on the loop, where its blocking calls refuse to run).
    setter = await asyncio.to_thread(_start_with_id, "setter-1", event_setter, {"v": 1})
    waiting = asyncio.ensure_future(DBOS.get_event_async("setter-1", "k", timeout_seconds=10))
    await asyncio.to_thread(DBOS.send, "setter-1", "now", "go")
    see("get_event outside, woken", await waiting)
    see("setter", await asyncio.to_thread(setter.get_result))
    see("get_event outside, set already", await DBOS.get_event_async("setter-1", "k", timeout_seconds=0))
    see("get_event outside, times out", await DBOS.get_event_async("setter-1", "nope", timeout_seconds=0.1))
    see("sync event reader", await asyncio.to_thread(lambda: DBOS.start_workflow(sync_event_reader, "setter-1").get_result()))
    see("event reader", await (await DBOS.start_workflow_async(event_reader, "setter-1")).get_result())

    writer = await asyncio.to_thread(_start_with_id, "writer-1", stream_writer, 3)
    see("stream", [v async for v in DBOS.read_stream_async("writer-1", "s")])
    see("stream from offset", [v async for v in DBOS.read_stream_async("writer-1", "s", offset=2)])
    see("writer", await asyncio.to_thread(writer.get_result))
    see("stream of nobody", await attempt_async(lambda: _drain(DBOS.read_stream_async("nobody", "s"))))

    with SetWorkflowID("first-1"):
        see("wait_first", await (await DBOS.start_workflow_async(waits_for_first)).get_result())
    see("wait_first of none", await attempt_async(lambda: DBOS.wait_first_async([])))

    see("run_step_async", await (await DBOS.start_workflow_async(runs_steps)).get_result())
    see("run_step_async outside", [await DBOS.run_step_async(None, sync_double, 1), await DBOS.run_step_async(None, async_triple, 1)])

    with SetWorkflowID("durable-wait"):
        see("asyncio_wait", await (await DBOS.start_workflow_async(waits_durably)).get_result())
    steps = await asyncio.to_thread(DBOS.list_workflow_steps, "durable-wait")
    see("asyncio_wait steps", [[s["function_id"], s["function_name"]] for s in steps])
    last = max(s["function_id"] for s in steps)
    forked = await asyncio.to_thread(DBOS.fork_workflow, "durable-wait", last + 1)
    see("asyncio_wait replayed", await (await DBOS.retrieve_workflow_async(forked.workflow_id)).get_result())
    fs = [asyncio.ensure_future(async_triple(1)), asyncio.ensure_future(asyncio.sleep(5))]
    done, pending = await DBOS.asyncio_wait(fs, timeout=0.2)
    see("asyncio_wait outside", [len(done), len(pending)])
    for task in pending:
        task.cancel()
    with SetWorkflowID("preempted-1"):
        victim = await DBOS.start_workflow_async(preempted)
    while (await DBOS.get_workflow_status_async("preempted-1")).status != "PENDING" or not await _started("preempted-1"):
        await asyncio.sleep(0.05)
    await asyncio.to_thread(DBOS.cancel_workflow, "preempted-1")
    see("preempted", await attempt_async(victim.get_result))
    steps = await asyncio.to_thread(DBOS.list_workflow_steps, "preempted-1")
    see("preempted steps", [s["function_name"] for s in steps])
    with SetWorkflowID("preempted-2"), SetWorkflowTimeout(0.5):
        timed_out = await DBOS.start_workflow_async(preempted)
    see("preempted by its deadline", await attempt_async(timed_out.get_result))
    steps = await asyncio.to_thread(DBOS.list_workflow_steps, "preempted-2")
    see("preempted by its deadline: steps", [s["function_name"] for s in steps])
    # The slow child of waits_for_first (a task of this loop) ends before the loop does.
    see("slow child", await (await DBOS.retrieve_workflow_async("first-1-2")).get_result())


async def _started(workflow_id):
    steps = await asyncio.to_thread(DBOS.list_workflow_steps, workflow_id)
    return len(steps) >= 1  # its sleep is recorded: the long step comes next


def _start_with_id(workflow_id, fn, *args):
    with SetWorkflowID(workflow_id):
        return DBOS.start_workflow(fn, *args)


async def _drain(generator):
    return [v async for v in generator]


async def attempt_async(make):
    try:
        value = await make()
    except Exception as exc:  # noqa: BLE001 - what DBOS raises is the observation
        return ["raised", type(exc).__name__, str(exc)]
    return ["value", value]


if __name__ == "__main__":
    DBOS.launch()
    asyncio.run(main())
    attempt("done", lambda: "done")
    report()
