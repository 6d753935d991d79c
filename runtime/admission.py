"""Thread admission: how many background workflows run at once in one executor.

At most ``limit`` (``max_executor_threads``) admitted workflows run at once; the rest wait in
order and run on the threads that free up (a thread runs waiting work before it ends). A child
started by a running workflow is part of work already admitted: it never waits, or a parent
waiting for its child could hold the last thread forever.

An async workflow is admitted the same way and counts the same, but runs as a task of the
process's background loop instead of a thread (:meth:`ThreadAdmission.admit_async`).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

__all__ = ["ThreadAdmission"]

# One unit of admitted work: a thread name and what it runs, or (async work) what submits it
# to a loop, given what to call once it ended.
Job = tuple[str, Callable[[], None] | None, Callable[[Callable[[], None]], None] | None]


class ThreadAdmission:
    """The background-workflow threads of one executor, bounded by ``limit``."""

    def __init__(self, limit: int, stopping: threading.Event) -> None:
        self._limit = limit
        self._stopping = stopping  # once set, waiting work is left waiting (it stays PENDING)
        self._lock = threading.Lock()
        self._active = 0  # admitted work running now, counted against the limit
        self._waiting: collections.deque[Job] = collections.deque()
        self._threads: set[threading.Thread] = set()

    def admit(self, name: str, work: Callable[[], None], *, child: bool = False) -> None:
        """Run ``work`` in a thread now, or once a thread frees up (never waits when ``child``).
        ``work`` must not raise: its outcome is recorded or handed to waiters by itself."""
        job: Job = (name, work, None)
        if self._take_slot(job, child):
            self._start_thread(job, counted=not child)

    def admit_async(self, name: str, submit: Callable[[Callable[[], None]], None], *, child: bool = False) -> None:
        """Async work: ``submit(done)`` starts it on a loop now, or once a slot frees up; it
        must call ``done()`` when it ended (it holds its slot until then)."""
        job: Job = (name, None, submit)
        if self._take_slot(job, child):
            submit(self._async_done if not child else _nothing)

    def _take_slot(self, job: Job, child: bool) -> bool:
        """Count ``job`` as running (True), or leave it waiting for a slot (False)."""
        with self._lock:
            if not child and self._active >= self._limit:
                self._waiting.append(job)
                return False
            if not child:
                self._active += 1
        return True

    def _async_done(self) -> None:
        """A counted async job ended: its slot goes to the next waiting job."""
        job = self._next()
        if job is None:
            return
        if job[2] is not None:
            job[2](self._async_done)
        else:
            self._start_thread(job, counted=True)

    def capacity(self) -> int:
        """How many more background workflows could start running now (claims take no more)."""
        with self._lock:
            return max(0, self._limit - self._active - len(self._waiting))

    def join_until(self, deadline: float) -> None:
        """Wait, until the ``time.monotonic()`` deadline at most, for the threads running now."""
        for thread in self._snapshot():
            thread.join(max(0.0, deadline - time.monotonic()))

    def join_each(self, timeout_sec: float) -> None:
        """Wait up to ``timeout_sec`` for each thread running now (a thread stuck in user code
        is left behind: it is a daemon and writes nothing once its executor stopped)."""
        for thread in self._snapshot():
            thread.join(timeout_sec)

    def _snapshot(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)

    def _next(self) -> Job | None:
        """The waiting job a finishing counted thread runs next, or None (and one fewer active)."""
        with self._lock:
            if self._waiting and not self._stopping.is_set():
                return self._waiting.popleft()
            self._active -= 1
            return None

    def _start_thread(self, job: Job, *, counted: bool) -> None:
        def target() -> None:
            current: Job | None = job
            try:
                while current is not None:
                    if current[2] is not None:  # async work: the slot passes to its task
                        current[2](self._async_done)
                        break
                    try:
                        assert current[1] is not None
                        current[1]()
                    except BaseException:  # the outcome is recorded or handed to waiters; logged where it ran
                        pass
                    current = self._next() if counted else None
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=target, name=job[0], daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()


def _nothing() -> None:
    pass
