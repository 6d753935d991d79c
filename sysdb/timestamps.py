"""The timestamps pgfleet writes into rows (``created_at``, ``updated_at``, step times ...)."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """The current time in epoch milliseconds, the unit of every DBOS timestamp column."""
    return int(time.time() * 1000)
