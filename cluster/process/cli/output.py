"""How commands print: one JSON document with ``--json``, else text and plain-text tables."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any


def _jsonable(value: Any) -> Any:
    """``value`` with every part JSON can hold kept and the rest made text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, BaseException):
        return _describe_exception(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def _emit(args: argparse.Namespace, payload: Any, text: str | None) -> None:
    if args.json:
        print(json.dumps(_jsonable(payload), default=str))
    elif text is not None:
        print(text)


def _describe_exception(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _ms_time(ms: Any) -> str:
    if ms is None:
        return "-"
    try:
        stamp = datetime.datetime.fromtimestamp(int(ms) / 1000, tz=datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ms)
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _dt_time(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        stamp = value.astimezone(datetime.timezone.utc) if value.tzinfo is not None else value
        return stamp.strftime("%Y-%m-%d %H:%M:%S") + "Z"
    return "-" if value is None else str(value)


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)
