"""The two loops of a chaos run besides its fault schedule: the wave feeder that starts the
workload's waves on time (so a fault held for seconds never delays work), and the ticker that
keeps the progress line current. Both are :class:`BackgroundService` loops."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from cluster.coordination.service import BackgroundService

from .model import ExpectedOutcome

__all__ = ["WaveFeeder", "ProgressTicker"]

TICK_SEC = 0.5


class WaveFeeder(BackgroundService):
    """Starts wave ``w`` of the workload at ``wave_times[w]`` seconds after ``t0`` (monotonic),
    one at a time, and collects what each wave says to expect."""

    def __init__(self, wave_times: list[float], t0: float, start_wave: Callable[[int], list[ExpectedOutcome]],
                 on_failure: Callable[[int, str], None]) -> None:  # fmt: skip
        super().__init__("pgfleet-chaos-waves", TICK_SEC)
        self._times, self._t0, self._start_wave, self._on_failure = wave_times, t0, start_wave, on_failure
        self._next = 0
        self._lock = threading.Lock()
        self.expected: list[ExpectedOutcome] = []
        self.failed: dict[int, str] = {}
        self.finished = threading.Event()
        if not wave_times:
            self.finished.set()

    def wait_first(self) -> bool:
        return False

    def run_once(self) -> float | None:
        while self._next < len(self._times):
            due = self._t0 + self._times[self._next] - time.monotonic()
            if due > 0:
                return min(due, TICK_SEC)
            wave, self._next = self._next, self._next + 1
            try:
                outcomes = self._start_wave(wave)
            except Exception as exc:  # the workload's own error: the run reports it, the feeder goes on
                self.failed[wave] = f"{type(exc).__name__}: {exc}"
                self._on_failure(wave, "".join(traceback.format_exception_only(type(exc), exc)).strip())
                continue
            with self._lock:
                self.expected.extend(outcomes)
        self.finished.set()
        self.stop_soon()
        return None

    def stop_soon(self) -> None:
        """Nothing left to start: end the loop from inside it (stop() would join this thread)."""
        self._stop.set()

    def expected_ids(self) -> list[str]:
        with self._lock:
            return [e.workflow_id for e in self.expected]


class ProgressTicker(BackgroundService):
    """Calls ``tick()`` every half second; a failing tick (the database restarting) is the base's
    to log and back off from, and the progress line simply stays as it was."""

    def __init__(self, tick: Callable[[], Any]) -> None:
        super().__init__("pgfleet-chaos-progress", TICK_SEC)
        self._tick = tick

    def wait_first(self) -> bool:
        return False

    def run_once(self) -> float | None:
        self._tick()
        return None
