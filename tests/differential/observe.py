"""What a differential program reports: the values it saw, the errors it caught, in order.

This module is on the path of both runs of a program (under ``dbos`` and under pgfleet) and
imports neither, so the two transcripts are produced by the same code. A program calls
``see(label, value)`` for a value, ``attempt(label, fn)`` for a call that may raise, and
``report()`` last, which prints the transcript as one JSON line that the harness compares.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable
from typing import Any

__all__ = ["see", "attempt", "report", "database_url", "app_database_url"]

_transcript: list[list[Any]] = []
_MARK = "DIFFERENTIAL-TRANSCRIPT "


def database_url() -> str:
    """The system database URL this run was given (a database of its own)."""
    return os.environ["DIFFERENTIAL_DATABASE_URL"]


def app_database_url() -> str:
    """An application database URL of this run's own (empty), for transactions."""
    return os.environ["DIFFERENTIAL_APP_DATABASE_URL"]


def _plain(value: Any) -> Any:
    """A JSON-able rendering that is the same for equal values under both packages."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return "<object>"  # a handle or status object: programs observe its fields, not its class


def see(label: str, value: Any) -> Any:
    """Record a value the program observed; returns it, so it can wrap an expression."""
    _transcript.append([label, "value", _plain(value)])
    return value


def attempt(label: str, fn: Callable[[], Any], *, message: bool = True) -> Any:
    """Call ``fn``: record its value, or the class name and message of what it raised
    (``message=False`` for errors whose text is the driver's, not DBOS's)."""
    try:
        value = fn()
    except BaseException as exc:  # noqa: BLE001 - the transcript is about exactly this
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        _transcript.append([label, "raised", type(exc).__name__] + ([str(exc)] if message else []))
        return None
    _transcript.append([label, "value", _plain(value)])
    return value


def report() -> None:
    """Print the transcript for the harness (the last line of the program's output)."""
    print(_MARK + json.dumps(_transcript), flush=True)
