"""What the text table and the HTML report of a chaos run share: how a time, a value and an
evidence row read, and how a takeover row names its workflow, executors and time.

Evidence rows are whatever the checker attached to a :class:`~cluster.process.chaos.model.Violation`
(dicts, or the dataclass rows of ``sysdb.chaos_history``); both are read as field → value.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from cluster.process.chaos.model import ChaosResult, FaultRecord

__all__ = [
    "clock",
    "plural",
    "printable",
    "as_row",
    "is_time_key",
    "show_value",
    "describe_row",
    "takeover_parts",
    "verdict",
    "status_of",
    "faults_by_kind",
]

# Floats under keys like these are database-clock unix seconds, shown as a UTC clock time.
_TIME_KEYS = {"at", "start", "end", "time", "ts"}
# Earlier than this a float under a time key is not a unix time (an offset or a duration).
_EPOCH_2001 = 978_307_200.0


def clock(t: float | None) -> str:
    """``t`` (unix seconds) as ``HH:MM:SS.mmm`` UTC; ``-`` for None."""
    if t is None:
        return "-"
    try:
        stamp = datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return str(t)
    return stamp.strftime("%H:%M:%S.%f")[:-3]


def plural(count: int, noun: str) -> str:
    """``1 violation``, ``2 violations``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def printable(value: str | bytes | bytearray | memoryview) -> str:
    """Text with control characters (and undecodable bytes) as ``\\xNN`` escapes, so a value
    cannot break a line, ring a bell or move the cursor of the terminal it is printed on."""
    text = bytes(value).decode("utf-8", "backslashreplace") if not isinstance(value, str) else value
    return "".join(c if c.isprintable() or c == " " else _escape(c) for c in text)


def _escape(c: str) -> str:
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def as_row(row: Any) -> dict[str, Any]:
    """An evidence row (a mapping or a dataclass row) as a dict; anything else as ``value``."""
    if isinstance(row, Mapping):
        return {str(k): v for k, v in row.items()}
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    return {"value": row}


def is_time_key(key: str) -> bool:
    """Whether a row's ``key`` holds a database time (``at``, ``started_at``, ``recorded_at``...)."""
    return key in _TIME_KEYS or key.endswith("_at")


def show_value(key: str, value: Any, limit: int = 60) -> str:
    """A value of a row as the operator reads it: times as clock times, long values cut."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and is_time_key(key) and value > _EPOCH_2001:
        return clock(float(value))
    text: str
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        text = value.strftime("%H:%M:%S.%f")[:-3]
    elif isinstance(value, float):
        text = f"{value:.6g}" if abs(value) < 1e6 else f"{value:.3f}"  # a bare unix time keeps its milliseconds
    elif isinstance(value, (bytes, bytearray, memoryview)):
        text = printable(value)
    elif (dataclasses.is_dataclass(value) and not isinstance(value, type)) or isinstance(value, Mapping):
        text = "{" + describe_row(value, limit=limit) + "}"
    else:
        text = "None" if value is None else printable(str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_row(row: Any, limit: int = 60) -> str:
    """One evidence row on one line: ``key=value, ...`` with times as UTC clock times."""
    return ", ".join(f"{k}={show_value(k, v, limit)}" for k, v in as_row(row).items())


def _first(row: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return None


def takeover_parts(takeover: Any) -> tuple[str | None, str | None, str | None, float | None]:
    """``(workflow, from executor, to executor, at)`` of a takeover row of ``ChaosResult.takeovers``.

    The keys read are ``sysdb.chaos_history.TakeoverRecord``'s (``workflow_uuid``,
    ``from_executor_id``, ``to_executor_id``, ``at``), or the short ``workflow``, ``from``,
    ``to`` (``from_executor``, ``to_executor``), so either the record or a dict of it fits."""
    row = as_row(takeover)
    workflow = _first(row, "workflow_uuid", "workflow", "workflow_id")
    source = _first(row, "from_executor_id", "from_executor", "from")
    target = _first(row, "to_executor_id", "to_executor", "to")
    at = row.get("at")
    return (
        None if workflow is None else str(workflow),
        None if source is None else str(source),
        None if target is None else str(target),
        float(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else None,
    )


def verdict(result: ChaosResult) -> str:
    """The run in one phrase: ``PASSED (...)`` or ``FAILED (...)``."""
    failed = [i for i in result.invariants if not i.ok]
    unchecked = sum(1 for i in result.invariants if i.ok and i.checked == 0)
    if failed:
        return f"FAILED ({len(failed)} of {len(result.invariants)} invariants violated)"
    held = len(result.invariants) - unchecked
    tail = f", {unchecked} not checked" if unchecked else ""
    return f"PASSED ({held} invariants held{tail})"


def status_of(checked: int, ok: bool) -> str:
    """An invariant's row status: FAIL wins, then "not checked" when nothing was looked at."""
    if not ok:
        return "FAIL"
    return "not checked" if checked == 0 else "PASS"


def faults_by_kind(faults: list[FaultRecord]) -> dict[str, int]:
    """How many faults of each kind, in the order the kinds were first injected."""
    counts: dict[str, int] = {}
    for fault in sorted(faults, key=lambda f: f.at):
        counts[fault.kind] = counts.get(fault.kind, 0) + 1
    return counts
