"""Running pgfleet's blocking database work from asyncio code, and a loop of pgfleet's own.

pgfleet's system-database calls are blocking (psycopg's sync pool): an ``_async`` API call
runs them in a bounded pool of worker threads (:class:`AsyncWork`), one per connection the
pool may open, so a thousand workflows awaiting at once share those threads and connections
and the event loop never blocks on the database. Every database write of an async workflow
takes this route, its hot ones included: the start insert (``runtime/async_starts.py``), the
step and sleep checkpoints (``runtime/async_steps.py``, ``Executor.checkpoint`` in a thread)
and the finish (``WorkflowRuns.run_async``); only the waits (for a result, a message, an
event) wait on the loop itself.

``ops/bench/async_route.py`` measured this route against psycopg's ``AsyncConnectionPool`` on
the bare statements, and ``ops/bench/async_workflows.py`` on real workflows with the
checkpoints and finishes moved to an async pool per loop: no faster for one or eight callers,
25 % slower for a hundred, and a second budget of connections per loop, so the threads stay
(``ops/bench/RESULTS.md``, "Hot path on the async pool").

Inside a workflow, an ``_async`` call that takes step positions takes them on the loop, in call
order, before it leaves for a thread (:func:`in_thread` with ``positions``): two calls gathered
with ``asyncio.gather`` then get the same positions at every execution, as in DBOS.

Async workflows that nobody awaits (started from sync code, recovered, claimed from a queue)
run on the process's :class:`BackgroundLoop`, one thread with one event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .context import WorkflowContext, active_workflow, carry_back_start_options, current_workflow, use_reserved_positions

__all__ = ["AsyncWork", "BackgroundLoop", "in_thread", "active_workflow", "when_calls_settled"]

T = TypeVar("T")


class AsyncWork:
    """The worker threads that run the blocking side of ``_async`` calls: as many as the
    system database's pool has connections (more would only wait for one)."""

    def __init__(self, threads: int, name: str) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self.closed = False
        # Workflow tasks started on a caller's loop: the loop keeps only weak references.
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        return self._pool

    def keep(self, task: asyncio.Future[Any]) -> None:
        """Hold ``task`` until it ends (nobody may await it: its outcome is recorded)."""
        self._tasks.add(task)

        def finished(done: asyncio.Future[Any]) -> None:
            self._tasks.discard(done)
            if not done.cancelled():
                done.exception()  # retrieved: it was logged where it ran

        task.add_done_callback(finished)

    def close(self) -> None:
        self.closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


class _CallsInFlight:
    """The worker-thread calls of each workflow execution that have not ended. A call outlives
    the task that awaited it when that task is cancelled: its write may still commit, so the
    execution is not over (nor its epoch free for another run) until its calls ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}  # by id() of the context: alive while a call holds it
        self._then: dict[int, list[Callable[[], None]]] = {}

    def enter(self, ctx: WorkflowContext) -> None:
        with self._lock:
            self._counts[id(ctx)] = self._counts.get(id(ctx), 0) + 1

    def leave(self, ctx: WorkflowContext) -> None:
        with self._lock:
            left = self._counts[id(ctx)] - 1
            if left:
                self._counts[id(ctx)] = left
                return
            del self._counts[id(ctx)]
            then = self._then.pop(id(ctx), [])
        for fn in then:
            fn()

    def after(self, ctx: WorkflowContext, fn: Callable[[], None]) -> None:
        with self._lock:
            if id(ctx) in self._counts:
                self._then.setdefault(id(ctx), []).append(fn)
                return
        fn()


_IN_FLIGHT = _CallsInFlight()


def when_calls_settled(ctx: WorkflowContext, fn: Callable[[], None]) -> None:
    """``fn()`` now if no :func:`in_thread` call of ``ctx``'s execution is running, else once
    the last one ended (in its worker thread)."""
    _IN_FLIGHT.after(ctx, fn)


async def in_thread(work: AsyncWork | None, fn: Callable[..., T], *args: Any, positions: int = 0, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread of ``work`` (the loop's default executor if
    None), with this task's context variables (the running workflow, its start options).

    Inside a workflow body, ``positions`` step positions are taken now, on the loop, and are
    the ones ``fn`` takes in its thread. A ``SetWorkflowID`` that ``fn`` consumed is consumed
    here too."""
    ctx = active_workflow() if positions else None
    reserved = ctx.reserve_positions(positions) if ctx is not None else []
    context = contextvars.copy_context()

    def call() -> T:
        if ctx is not None:
            use_reserved_positions(ctx, reserved)
        return fn(*args, **kwargs)

    loop = asyncio.get_running_loop()
    try:
        if work is None or work.closed:
            # Closed with its executor (DBOS.destroy()) under a workflow of a caller's loop: the
            # call runs in the loop's own executor, to fail as it would in sync code (the
            # execution was abandoned, or DBOS is not launched), not with "after shutdown".
            return await loop.run_in_executor(None, context.run, call)
        return await _tracked(work, context, call)
    finally:
        carry_back_start_options(context)


async def _tracked(work: AsyncWork, context: contextvars.Context, call: Callable[[], T]) -> T:
    """``call()`` in ``work``'s threads, counted against the running workflow's execution (a
    step's call too) until it ended, whether or not its awaiting task is still there."""
    owner = current_workflow()
    try:
        future = work.pool.submit(context.run, call)
    except RuntimeError:
        if not work.closed:
            raise
        return await asyncio.get_running_loop().run_in_executor(None, context.run, call)  # closed meanwhile
    if owner is not None:
        _IN_FLIGHT.enter(owner)
        future.add_done_callback(lambda _done: _IN_FLIGHT.leave(owner))
    return await asyncio.wrap_future(future)


class BackgroundLoop:
    """One thread running one event loop: where this process runs the async workflows that no
    caller awaits. Started at the first such workflow; stopped with its executor."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Strong references: the loop keeps only weak ones, and nobody awaits these tasks.
        self._tasks: set[asyncio.Task[Any]] = set()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name=self._name, daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def submit(self, make: Callable[[], Coroutine[Any, Any, Any]], on_done: Callable[[], None] | None = None) -> None:
        """Run the coroutine ``make()`` as a task of the loop; ``on_done()`` once it ended.
        The coroutine must not raise for its outcome (it is recorded, or handed to waiters)."""
        loop = self._started()

        def create() -> None:
            task = loop.create_task(make())
            self._tasks.add(task)

            def finished(done: asyncio.Task[Any]) -> None:
                self._tasks.discard(done)
                if not done.cancelled():
                    done.exception()  # retrieved: it was logged where it ran
                if on_done is not None:
                    on_done()

            task.add_done_callback(finished)

        loop.call_soon_threadsafe(create)

    def running(self) -> int:
        """How many tasks it runs now."""
        return len(self._tasks)

    def stop(self, timeout_sec: float) -> None:
        """Cancel what still runs (it wrote what it wrote; the rest is recovered) and end the
        thread, waiting up to ``timeout_sec`` for it."""
        with self._lock:
            loop, thread, self._loop = self._loop, self._thread, None
        if loop is None or thread is None:
            return

        async def shut_down() -> None:
            tasks = [t for t in self._tasks if not t.done()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        loop.call_soon_threadsafe(lambda: loop.create_task(shut_down()))
        thread.join(timeout_sec)
        if not thread.is_alive():
            loop.close()
