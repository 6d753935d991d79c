"""Async workflows and steps (#11): awaiting, retries, gather, mixing sync and async, children,
ids, timeouts, context, errors, and the result/status/handle ``_async`` calls."""

import asyncio
import logging
import re

from dbos import DBOS, DBOSConfiguredInstance, SetWorkflowID, SetWorkflowTimeout
from observe import app_database_url, attempt, database_url, report, see

DBOS(config={
    "name": "diff-async-workflows",
    "system_database_url": database_url(),
    "application_database_url": app_database_url(),
})
calls = {}
loops = []


def count(name):
    calls[name] = calls.get(name, 0) + 1
    return calls[name]


class Remember(logging.Handler):
    """Keeps the warnings DBOS's logger gives about transactions on a running loop."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.seen = []

    def emit(self, record):
        # (pgfleet's records carry structlog's key=value rendering around DBOS's sentence.)
        found = re.search(r"Transaction \S+ was called while an event loop is running\.[^'\"]*loop\.", record.getMessage())
        if found:
            self.seen.append(found.group(0))


@DBOS.step()
async def double(x):
    await asyncio.sleep(0)
    return x * 2


@DBOS.step()
def triple(x):
    return x * 3


@DBOS.step(retries_allowed=True, max_attempts=4, interval_seconds=0.01, backoff_rate=1.5)
async def flaky(key, fail_times):
    if count(key) <= fail_times:
        raise ValueError(f"{key} attempt {calls[key]} failed")
    return f"{key} ok after {calls[key]}"


def only_value_errors(exc):
    return isinstance(exc, ValueError)


async def only_value_errors_async(exc):
    await asyncio.sleep(0)
    return isinstance(exc, ValueError)


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01, should_retry=only_value_errors)
async def picky(key, error):
    count(key)
    raise error


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01, should_retry=only_value_errors_async)
async def picky_async(key, error):
    count(key)
    raise error


@DBOS.workflow()
async def simple(x):
    a = await double(x)
    b = triple(a)  # a sync step called from an async workflow
    await DBOS.sleep_async(0.01)
    return [a, b, DBOS.workflow_id]


@DBOS.workflow()
async def retrying():
    out = [await flaky("twice", 2), await attempts_seen("attempts")]
    try:
        await flaky("always", 10)
    except Exception as exc:
        out.append([type(exc).__name__, str(exc)])
    for step_fn, label in ((picky, "picky"), (picky_async, "picky_async")):
        for error in (ValueError("v"), KeyError("k")):
            key = f"{label}-{type(error).__name__}"
            try:
                await step_fn(key, error)
            except Exception as exc:
                out.append([key, calls[key], type(exc).__name__, str(exc)])
    return out


@DBOS.workflow()
async def gathered():
    return list(await asyncio.gather(double(1), double(2), asyncio.sleep(0), double(3)))


@DBOS.workflow()
def sync_calls_async_step(x):
    # A loop of its own, never closed: closing it (or asyncio.run) shuts down its default
    # executor, which dbos 2.30 makes its own worker pool, and every later start fails.
    # (Kept referenced: a collected loop closes itself.)
    loops.append(asyncio.new_event_loop())
    return loops[-1].run_until_complete(double(x)) + triple(x)


@DBOS.workflow()
async def child(x):
    return [DBOS.workflow_id, await double(x)]


@DBOS.workflow()
def sync_child(x):
    return [DBOS.workflow_id, triple(x)]


@DBOS.workflow()
async def parent(x):
    awaited = await child(x)
    handle = await DBOS.start_workflow_async(child, x + 1)
    started = await handle.get_result()
    with SetWorkflowID("named-child"):
        named = await child(x + 3)
    return [awaited, handle.get_workflow_id(), started, named]


@DBOS.workflow()
async def sleeper(seconds):
    await DBOS.sleep_async(seconds)
    return "woke"


@DBOS.workflow()
async def sleepy_parent():
    return await sleeper(2)


@DBOS.workflow()
def sync_sleeper(seconds):
    DBOS.sleep(seconds)
    return "woke"


@DBOS.workflow(name="renamed-async")
async def renamed(x):
    return x


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01)
async def attempts_seen(key):
    calls.setdefault(key, []).append(DBOS.step_status.current_attempt)
    if len(calls[key]) < 3:
        raise ValueError("again")
    return calls[key]


@DBOS.workflow()
async def returns_unpicklable():
    await double(1)
    return lambda: None


@DBOS.step()
async def context_step():
    status = DBOS.step_status
    return [DBOS.workflow_id, DBOS.step_id, status.step_id, status.current_attempt, status.max_attempts]


@DBOS.step(retries_allowed=True, max_attempts=5)
async def context_retried_step():
    status = DBOS.step_status
    return [DBOS.step_id, status.current_attempt, status.max_attempts]


@DBOS.workflow()
async def contexts():
    before = [DBOS.workflow_id, DBOS.step_id, DBOS.step_status]
    steps = await asyncio.gather(context_step(), context_retried_step())
    return [before, list(steps), DBOS.step_id]


@DBOS.workflow()
async def fails(text):
    await double(1)
    raise RuntimeError(f"async failure: {text}")


@DBOS.transaction()
def add_in_transaction(a, b):
    return a + b


@DBOS.workflow()
async def calls_sync_transaction(a, b):
    return add_in_transaction(a, b)


@DBOS.workflow()
async def reads_others(workflow_id):
    status = await DBOS.get_workflow_status_async(workflow_id)
    result = await DBOS.get_result_async(workflow_id)
    handle = await DBOS.retrieve_workflow_async(workflow_id)
    via_handle = await handle.get_result()
    handle_status = await handle.get_status()
    missing = await DBOS.get_workflow_status_async("no-such-workflow")
    return [status.status, result, via_handle, handle_status.status, missing]


@DBOS.dbos_class()
class Shop(DBOSConfiguredInstance):
    def __init__(self, name):
        super().__init__(name)
        self.name = name

    @DBOS.workflow()
    async def sell(self, item):
        return [self.name, item, await self.wrap(item)]

    @DBOS.step()
    async def wrap(self, item):
        return f"wrapped {item} at {self.name}"

    @classmethod
    @DBOS.workflow()
    async def open_all(cls, n):
        return [cls.__name__, await double(n)]

    @staticmethod
    @DBOS.workflow()
    async def hours(day):
        await DBOS.sleep_async(0.01)
        return f"{day}: 9-17"


shop = Shop("corner")


def steps_of(workflow_id):
    # (A sleep's output is its wake-up time: only whether it is there is compared.)
    return [
        [s["function_id"], s["function_name"], s["output"] if s["function_name"] != "DBOS.sleep" else s["output"] is not None,
         s["child_workflow_id"]]
        for s in DBOS.list_workflow_steps(workflow_id)
    ]


def status_of(workflow_id):
    status = DBOS.get_workflow_status(workflow_id)
    return None if status is None else [status.status, status.name, status.class_name, status.config_name]


async def main():
    with SetWorkflowID("simple-1"):
        see("awaited async workflow", await simple(4))
    see("steps of simple-1", await off(steps_of, "simple-1"))
    with SetWorkflowID("simple-1"):
        see("same id again (not run again)", await simple(99))
    with SetWorkflowID("retrying-1"):
        see("retries", await retrying())
    see("steps of retrying-1", [s[:2] for s in await off(steps_of, "retrying-1")])
    with SetWorkflowID("gathered-1"):
        see("gathered", await gathered())
    see("steps of gathered-1", await off(steps_of, "gathered-1"))
    with SetWorkflowID("parent-1"):
        see("parent", await parent(10))
    see("steps of parent-1", await off(steps_of, "parent-1"))
    see("status of named-child", await off(status_of, "named-child"))
    with SetWorkflowID("started-1"):
        handle = await DBOS.start_workflow_async(simple, 5)
    see("start_workflow_async id", handle.get_workflow_id())
    see("start_workflow_async result", await handle.get_result())
    see("start_workflow_async status", (await handle.get_status()).status)
    # (DBOS.start_workflow_async of a sync workflow is left out: dbos 2.30 records it as an
    # ERROR, "object list can't be used in 'await' expression"; pgfleet runs it in a thread.)
    with SetWorkflowTimeout(0.3), SetWorkflowID("timed-1"):
        timed = await DBOS.start_workflow_async(sleeper, 2)
    await attempt_async("timed-out async sleep", timed.get_result())
    see("timed-out status", (await timed.get_status()).status)
    with SetWorkflowTimeout(5):
        see("sleep within its timeout", await sleeper(0.05))
    with SetWorkflowTimeout(0.3), SetWorkflowID("sleepy-parent"):
        await attempt_async("child past its inherited deadline", sleepy_parent())
    see("statuses of sleepy-parent and its child", [await off(status_of, "sleepy-parent"), await off(status_of, "sleepy-parent-1")])
    with SetWorkflowID("renamed-1"):
        see("a renamed async workflow", await renamed(3))
    see("status of renamed-1", await off(status_of, "renamed-1"))
    with SetWorkflowID("unpicklable-1"):
        try:
            await returns_unpicklable()
            see("unpicklable result", "returned")
        except Exception:
            see("unpicklable result", "raised")
    see("status of unpicklable-1", (await off(status_of, "unpicklable-1"))[:2])
    with SetWorkflowID("contexts-1"):
        see("contexts", await contexts())
    see("outside: workflow_id, step_id", [DBOS.workflow_id, DBOS.step_id])
    with SetWorkflowID("fails-1"):
        await attempt_async("async workflow error", fails("boom"))
    see("status of fails-1", await off(status_of, "fails-1"))
    await attempt_async("retrieved error", (await DBOS.retrieve_workflow_async("fails-1")).get_result())
    await attempt_async("get_result_async error", DBOS.get_result_async("fails-1"))
    see("status of fails-1 via _async", (await DBOS.get_workflow_status_async("fails-1")).status)
    see("outside: get_result_async", await DBOS.get_result_async("simple-1"))
    await attempt_async("retrieve_workflow_async missing", DBOS.retrieve_workflow_async("no-such-workflow"))
    see("retrieve_workflow_async existing_workflow=False",
        (await DBOS.retrieve_workflow_async("no-such-workflow", existing_workflow=False)).get_workflow_id())
    see("get_workflow_status_async missing", await DBOS.get_workflow_status_async("no-such-workflow"))
    with SetWorkflowID("reads-1"):
        see("reads inside a workflow", await reads_others("simple-1"))
    see("steps of reads-1", await off(steps_of, "reads-1"))
    remember = Remember()
    logging.getLogger("dbos").addHandler(remember)
    with SetWorkflowID("tx-1"):
        see("sync transaction from an async workflow", await calls_sync_transaction(2, 3))
    see("transaction called on a running loop: warned", remember.seen)
    logging.getLogger("dbos").removeHandler(remember)
    see("steps of tx-1", await off(steps_of, "tx-1"))
    with SetWorkflowID("sell-1"):
        see("instance method", await shop.sell("apple"))
    see("status of sell-1", await off(status_of, "sell-1"))
    see("steps of sell-1", await off(steps_of, "sell-1"))
    with SetWorkflowID("open-1"):
        see("classmethod", await Shop.open_all(7))
    see("status of open-1", await off(status_of, "open-1"))
    with SetWorkflowID("hours-1"):
        see("staticmethod", await Shop.hours("mon"))
    see("status of hours-1", await off(status_of, "hours-1"))
    with SetWorkflowID("sell-started"):
        sell_handle = await DBOS.start_workflow_async(shop.sell, "pear")
    see("started instance method", await sell_handle.get_result())
    see("outside a workflow: async step is a plain call", await double(21))


async def off(fn, *args):
    """A blocking DBOS call from the loop: in a thread, as DBOS asks (its check_async)."""
    return await asyncio.to_thread(fn, *args)


async def attempt_async(label, awaitable):
    try:
        value = await awaitable
    except Exception as exc:
        see(label, ["raised", type(exc).__name__, str(exc)])
        return None
    see(label, value)
    return value


def transaction_on_coroutine():
    @DBOS.transaction()
    async def bad_transaction():
        return 1

    return "decorated"


if __name__ == "__main__":
    DBOS.launch()
    # Sync code first: dbos 2.30 makes its worker pool the loop's default executor, which
    # asyncio.run shuts down on leaving, so everything else must precede it.
    with SetWorkflowID("sync-calls-async-step-1"):
        see("sync workflow awaiting an async step with asyncio.run", attempt("sync->async step", lambda: sync_calls_async_step(5)))
    see("steps of sync-calls-async-step-1", steps_of("sync-calls-async-step-1"))
    attempt("@DBOS.transaction on a coroutine", transaction_on_coroutine)
    with SetWorkflowID("bg-1"):
        background = DBOS.start_workflow(simple, 8)
    see("DBOS.start_workflow(async) from sync code", background.get_result())
    see("status of bg-1", status_of("bg-1"))
    with SetWorkflowTimeout(0.3), SetWorkflowID("sync-timed-1"):
        attempt("a sync workflow past its deadline", lambda: sync_sleeper(2))
    see("status of sync-timed-1", status_of("sync-timed-1"))
    asyncio.run(main())
    DBOS.destroy()
    report()
