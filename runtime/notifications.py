"""Waking threads that wait for a message or an event, when a NOTIFY says one arrived.

Each process object has its own hub (:class:`runtime.process.DBOSProcess`): its services'
listener forwards payloads (``"<workflow id>::<topic or key>"``) here; a waiter
re-checks the database when its key is notified, and at least once a second regardless, so a
lost notification delays it by at most that. Only keys somebody waits on are tracked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["NotificationHub", "Watch"]


class Watch:
    """One waiter's view of one key."""

    def __init__(self, hub: NotificationHub, key: str, seen: int) -> None:
        self._hub, self._key, self._seen = hub, key, seen

    def wait(self, timeout_sec: float) -> bool:
        """Wait until the key is notified again, or the timeout passes."""
        return self._hub._wait(self, timeout_sec)


class NotificationHub:
    """Version counters for watched keys, and a condition to wait on them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._versions: dict[str, int] = {}
        self._watchers: dict[str, int] = {}

    @contextmanager
    def watch(self, key: str) -> Iterator[Watch]:
        """Watch ``key``; notifications from now on wake :meth:`Watch.wait`."""
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
            if key in self._versions:
                self._versions[key] += 1
                self._cond.notify_all()

    def _wait(self, watch: Watch, timeout_sec: float) -> bool:
        with self._cond:
            woke = self._cond.wait_for(lambda: self._versions[watch._key] != watch._seen, timeout=max(0.0, timeout_sec))
            watch._seen = self._versions[watch._key]
            return woke
