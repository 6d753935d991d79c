"""The background-loop base never lets a failing pass end its thread, however long it fails."""

from __future__ import annotations

import threading

from cluster.coordination.service import BackgroundService
from conftest import wait_until


class _AlwaysFailing(BackgroundService):
    def __init__(self) -> None:
        super().__init__("test-always-failing", 0.001)
        self.MAX_BACKOFF_SEC = 0.001  # keep the test quick: the cap, not the formula, bounds waits
        self.passes = 0
        self.passed = threading.Event()

    def run_once(self) -> None:
        self.passes += 1
        if self.passes > 1:
            self.passed.set()
        raise RuntimeError("this pass always fails")


def test_a_service_failing_for_hours_keeps_its_thread_and_backs_off_at_the_cap() -> None:
    service = _AlwaysFailing()
    # As if it had failed for about 85 minutes at a 5 s cap: 2 ** 1024 overflows a float.
    service.failures = 1024
    service.start()
    try:
        assert service.passed.wait(10), "the service stopped passing"
        wait_until(lambda: service.failures > 1030, "more failed passes", timeout=10)
        assert service.is_alive()
    finally:
        service.stop()
