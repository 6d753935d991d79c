"""``pgfleet chaos --json``: a run's whole :class:`~cluster.process.chaos.model.ChaosResult` as
one JSON document for machines.

The keys are the model's field names (stable: the model's fields are only ever added to), plus
``passed`` at the top, and ``ok`` and ``status`` (PASS / FAIL / not checked) on each invariant.
``format`` names the layout so a consumer can tell a future incompatible one apart. Evidence
rows hold whatever the checker attached; values JSON cannot hold (datetimes, bytes, decimals,
dataclass rows, NaN) are made strings or objects here, so the document always serializes.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import os
from collections.abc import Mapping
from typing import Any, TextIO

from cluster.process.chaos.model import ChaosResult, InvariantResult
from cluster.process.chaos.render import printable, status_of

__all__ = ["FORMAT", "to_json", "write_json", "jsonable"]

FORMAT = "pgfleet-chaos/1"


def jsonable(value: Any) -> Any:
    """``value`` with every part JSON holds kept as is and the rest made text (or objects)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN and inf are not JSON
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=repr)  # a stable order between runs
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return printable(value)  # the text the table shows, control characters escaped
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, decimal.Decimal):
        return str(value)  # a float would lose digits
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)


def _invariant(inv: InvariantResult) -> dict[str, Any]:
    row: dict[str, Any] = jsonable(inv)
    row["ok"] = inv.ok
    row["status"] = status_of(inv.checked, inv.ok)
    return row


def to_json(result: ChaosResult) -> dict[str, Any]:
    """Every field of ``result`` under its own name, with ``passed``, as JSON-safe values."""
    document: dict[str, Any] = {"format": FORMAT, "passed": result.passed}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if f.name == "invariants":
            document[f.name] = [_invariant(inv) for inv in value]
        else:
            document[f.name] = jsonable(value)
    return document


def write_json(result: ChaosResult, target: str | os.PathLike[str] | TextIO) -> None:
    """Write ``to_json(result)`` to a path or an open text stream (``sys.stdout`` for ``--json``)."""
    text = json.dumps(to_json(result), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    if isinstance(target, (str, os.PathLike)):
        with open(target, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        target.write(text)
        target.flush()
