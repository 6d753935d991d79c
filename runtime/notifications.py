"""Waking code that waits for a message or an event, when a NOTIFY says one arrived.

Each process object has its own hub (:class:`runtime.process.DBOSProcess`): its services'
listener forwards payloads (``"<workflow id>::<topic or key>"``) here; a waiter
re-checks the database when its key is notified, and at least once a second regardless, so a
lost notification delays it by at most that. Only keys somebody waits on are tracked.

A thread waits on the hub's condition (:meth:`Watch.wait`); asyncio code waits on the loop
(:meth:`Watch.wait_async`): each async waiter is a future of its own loop, which ``notify``
(called from the listener's thread) resolves with ``loop.call_soon_threadsafe``, so a thousand
tasks waiting hold no thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["NotificationHub", "Watch"]


class Watch:
    """One waiter's view of one key."""

    def __init__(self, hub: NotificationHub, key: str, seen: int) -> None:
        self._hub, self._key, self._seen = hub, key, seen

    def wait(self, timeout_sec: float) -> bool:
        """Wait (blocking this thread) until the key is notified again, or the timeout passes."""
        return self._hub._wait(self, timeout_sec)

    async def wait_async(self, timeout_sec: float) -> bool:
        """Wait on the running loop (no thread held) until the key is notified again, or the
        timeout passes."""
        return await self._hub._wait_async(self, timeout_sec)


class NotificationHub:
    """Version counters for watched keys, a condition for threads and futures for tasks."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._versions: dict[str, int] = {}
        self._watchers: dict[str, int] = {}
        # Async waiters by key: (their loop, their future), resolved by notify().
        self._futures: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    @contextmanager
    def watch(self, key: str) -> Iterator[Watch]:
        """Watch ``key``; notifications from now on wake :meth:`Watch.wait` and
        :meth:`Watch.wait_async` (a plain ``with``: entering and leaving never block)."""
        with self._cond:
            self._watchers[key] = self._watchers.get(key, 0) + 1
            watch = Watch(self, key, self._versions.setdefault(key, 0))
        try:
            yield watch
        finally:
            with self._cond:
                self._watchers[key] -= 1
                if self._watchers[key] == 0:
                    del self._watchers[key]
                    del self._versions[key]

    def notify(self, key: str) -> None:
        with self._cond:
            if key not in self._versions:
                return
            self._versions[key] += 1
            self._cond.notify_all()
            futures = self._futures.pop(key, [])
        for loop, future in futures:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed: its waiter is gone with it
                pass

    def watching(self) -> int:
        """How many watches are open now (each waiting ``recv`` or ``get_event`` holds one)."""
        with self._cond:
            return sum(self._watchers.values())

    def waiting_tasks(self) -> int:
        """How many asyncio waiters are parked now (for tests and metrics)."""
        with self._cond:
            return sum(len(f) for f in self._futures.values())

    def _wait(self, watch: Watch, timeout_sec: float) -> bool:
        with self._cond:
            woke = self._cond.wait_for(lambda: self._versions[watch._key] != watch._seen, timeout=max(0.0, timeout_sec))
            watch._seen = self._versions[watch._key]
            return woke

    async def _wait_async(self, watch: Watch, timeout_sec: float) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._cond:
            if self._versions[watch._key] != watch._seen:  # notified since the last look
                watch._seen = self._versions[watch._key]
                return True
            self._futures.setdefault(watch._key, []).append(entry)
        try:
            await asyncio.wait_for(future, max(0.0, timeout_sec))
        except asyncio.TimeoutError:  # TimeoutError from 3.11 on
            pass
        finally:
            self._forget(watch._key, entry)
        with self._cond:
            woke = self._versions[watch._key] != watch._seen
            watch._seen = self._versions[watch._key]
            return woke

    def _forget(self, key: str, entry: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]) -> None:
        """Drop a waiter that timed out or was cancelled (a notified one is gone already)."""
        with self._cond:
            waiting = self._futures.get(key)
            if waiting is not None and entry in waiting:
                waiting.remove(entry)
                if not waiting:
                    del self._futures[key]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
