"""Loaded (through PYTHONPATH) into a process that runs under libfaketime; see tests/faults/clock.py.

It shifts no clock. libfaketime 0.9.10 (Debian 12) answers the ``clock_nanosleep`` that
``time.sleep`` uses on Python 3.11+ with EINVAL when monotonic time is left alone, so ``time.sleep``
waits in ``select`` instead: a relative timeout, which no clock shift touches.
"""

import select
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], seconds)


time.sleep = _sleep
