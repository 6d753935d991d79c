"""The one base of every background loop: a thread, its wait, and an error boundary.

A background loop must never die of one failure (a bad row, a lost connection, a bug in a
callback): a dead heartbeat or claimer thread leaves a process that looks alive and does
nothing. :class:`BackgroundService` owns the thread and calls :meth:`run_once` over and over;
an exception from it is logged and the loop backs off (doubling up to ``MAX_BACKOFF_SEC``)
and goes on. Subclasses write only ``run_once`` (tests call it directly) and say how long to
wait before the next pass.
"""

from __future__ import annotations

import threading
import time

from sysdb.logs import get_logger

__all__ = ["BackgroundService", "exponential_backoff"]

log = get_logger("pgfleet.cluster")


# Doubling stops here: 2 ** 1024 overflows a float, and long before that the cap applies.
_MAX_DOUBLINGS = 30


def exponential_backoff(first_sec: float, failures: int, cap_sec: float) -> float:
    """``first_sec`` doubled for each failure after the first, never above ``cap_sec``; safe
    for any number of failures (a loop may fail for hours)."""
    doublings: int = min(max(0, failures - 1), _MAX_DOUBLINGS)
    return min(cap_sec, first_sec * float(2**doublings))


class BackgroundService:
    """A named daemon thread running ``run_once`` every ``interval_sec`` until stopped."""

    # After a failed pass, wait this long (doubling per consecutive failure, up to the max).
    FIRST_BACKOFF_SEC = 0.1
    MAX_BACKOFF_SEC = 5.0
    STOP_JOIN_SEC = 5.0

    def __init__(self, name: str, interval_sec: float) -> None:
        self.name = name
        self.interval_sec = interval_sec
        self._stop = threading.Event()
        # Set to cut the current wait short (wake()); stop() sets it too.
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.failures = 0  # consecutive failed passes (0 after a good one)

    # -- what subclasses provide ---------------------------------------------------------------

    def run_once(self) -> float | None:
        """One pass. Returns how long to wait before the next (None: ``interval_sec``)."""
        raise NotImplementedError

    def wait_first(self) -> bool:
        """True to wait one interval before the first pass (the default), False to run at once."""
        return True

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.STOP_JOIN_SEC)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        """Run the next pass now instead of at the end of the current wait."""
        self._wake.set()

    def _run(self) -> None:
        wait = self.interval_sec if self.wait_first() else 0.0
        while not self._stop.is_set():
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                return
            wait = self._pass()

    def _pass(self) -> float:
        """One guarded pass: never lets an exception end the loop."""
        started = time.monotonic()
        try:
            wait = self.run_once()
        except Exception as exc:
            self.failures += 1
            backoff = exponential_backoff(self.FIRST_BACKOFF_SEC, self.failures, self.MAX_BACKOFF_SEC)
            log.exception("background pass failed; backing off", service=self.name, error=str(exc),
                          failures=self.failures, backoff_sec=backoff, took_sec=round(time.monotonic() - started, 3))
            return max(backoff, min(self.interval_sec, self.MAX_BACKOFF_SEC))
        self.failures = 0
        return self.interval_sec if wait is None else max(0.0, wait)
