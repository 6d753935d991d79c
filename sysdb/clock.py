"""The database server's clock, as estimated in this process.

Every comparison between hosts uses the database clock, never a host's wall clock: with one
host's clock 5 s ahead, its rate-limit windows, delays and deadlines would disagree with
everyone else's. Comparisons made inside a statement read the server clock there
(``clock_timestamp()``/``statement_timestamp()`` in the SQL). The few decisions a process makes on
its own (the deadline it records when it starts a workflow, the delay of an enqueue, the check
before each step of whether a workflow passed its deadline) use this estimate instead.

The estimate is one observation of the server clock (at open, then at every heartbeat)
carried forward on this process's monotonic clock, so it neither follows this host's wall clock
nor jumps when that clock is stepped. Its error is half a round trip plus the monotonic drift
since the observation: milliseconds, against the seconds that skewed hosts disagree by.

:class:`Clock` is a different thing: the time the cluster's coordination (heartbeats, member
timeouts, leader leases) runs on, injectable so that tests can move it (:class:`FakeClock`).
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["DatabaseClock", "Clock", "SystemClock", "FakeClock"]

# A newer observation with a longer round trip than the current one replaces it only once the
# current one is this old: a heartbeat answered slowly (a busy server, a pause) is a worse
# measurement, but monotonic drift makes an old one worse still.
KEEP_BETTER_OBSERVATION_SEC = 30.0


class DatabaseClock:
    """Estimated database time in epoch milliseconds (DBOS's unit)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        # (server epoch ms, local monotonic time it corresponds to, round trip of the observation)
        self._base: tuple[int, float, float] | None = None
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """The local monotonic clock observations are measured on (for ``observe``)."""
        return self._monotonic()

    def observe(self, server_ms: int, sent: float, received: float) -> None:
        """Record that the server read ``server_ms`` between ``sent`` and ``received``
        (``monotonic()`` readings around the round trip): the midpoint is the best guess."""
        rtt = max(0.0, received - sent)
        with self._lock:
            if self._base is not None:
                _, at, best_rtt = self._base
                if rtt > best_rtt and received - at < KEEP_BETTER_OBSERVATION_SEC:
                    return
            self._base = (int(server_ms), sent + rtt / 2, rtt)

    @property
    def synced(self) -> bool:
        return self._base is not None

    def now_ms(self) -> int:
        """The database clock now; this host's wall clock until a first observation."""
        base = self._base
        if base is None:
            return int(time.time() * 1000)
        server_ms, at, _ = base
        return server_ms + int((self._monotonic() - at) * 1000)

    def offset_ms(self) -> int | None:
        """How far the database clock is ahead of this host's wall clock (None: not measured)."""
        if self._base is None:
            return None
        return self.now_ms() - int(time.time() * 1000)


class Clock(Protocol):
    """The time the cluster's coordination runs on: the liveness statements' "now" (heartbeats,
    member timeouts, leader leases) and the local monotonic clock members and the leader trust
    their leases by. Injectable River's way, so tests drive leadership and takeover with a fake
    clock instead of sleeping; production uses :class:`SystemClock`, which changes nothing."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (the local lease and leader trust)."""
        ...

    def database_now(self) -> datetime.datetime | None:
        """The "now" liveness statements compare with; ``None``: the database's own ``now()``."""
        ...


class SystemClock:
    """The real clocks: this process's monotonic clock, and the database's ``now()`` in SQL
    (every cross-host liveness comparison stays on the database clock)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def database_now(self) -> datetime.datetime | None:
        return None


class FakeClock:
    """A clock that moves only when told (:meth:`advance`): the database's "now" and the
    monotonic clock move together, so a test that advances it past the member timeout sees the
    leader declare a silent member dead and that member's local lease expire at the same time."""

    def __init__(self, start: datetime.datetime | None = None, monotonic_start: float = 1000.0) -> None:
        self._start = start if start is not None else datetime.datetime.now(datetime.timezone.utc)
        self._monotonic_start = monotonic_start
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock never goes back")
        with self._lock:
            self._elapsed += seconds

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic_start + self._elapsed

    def database_now(self) -> datetime.datetime:
        with self._lock:
            return self._start + datetime.timedelta(seconds=self._elapsed)
