"""Turning Python values into the text stored in the system database, and back.

DBOS 2.x stores base64 text of a pickle and names the format in each row's ``serialization``
column; workflow inputs are the pickle of ``{"args": tuple, "kwargs": dict}`` and errors are
pickled exception objects. pgfleet writes the same, so DBOS's client reads our rows.
"""

from __future__ import annotations

import base64
import json
import pickle
from typing import Any

from .errors import DBOSSerializationError

__all__ = [
    "SERIALIZATION_FORMAT",
    "PORTABLE_JSON",
    "serialize",
    "deserialize",
    "serialize_args",
    "deserialize_args",
    "serialize_exception",
    "deserialize_exception",
]

# The value of the ``serialization`` column for rows pgfleet writes.
SERIALIZATION_FORMAT = "py_pickle"
# DBOS's language-neutral format (written by clients in other languages and for sleep times).
PORTABLE_JSON = "portable_json"


def serialize(value: Any, *, what: str = "value", fmt: str | None = None) -> str:
    """Pickle ``value`` to base64 text (or, with ``fmt=PORTABLE_JSON``, write it as JSON); a value
    that cannot be written raises a clear error naming ``what``."""
    if fmt == PORTABLE_JSON:
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise DBOSSerializationError(
                f"cannot serialize {what} of type {type(value).__name__} as JSON: {exc}. This workflow "
                "was started with portable (JSON) serialization, so its result must be JSON"
            ) from exc
    try:
        return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")
    except Exception as exc:  # pickle raises TypeError, AttributeError, PicklingError...
        raise DBOSSerializationError(
            f"cannot serialize {what} of type {type(value).__name__}: {exc}. Workflow arguments, "
            "step results and errors must be picklable"
        ) from exc


def deserialize(text: str | None, fmt: str | None = None, *, what: str = "value") -> Any:
    """The value stored by :func:`serialize` (``None`` stays ``None``); ``fmt`` is the row's
    ``serialization`` column (pickle when NULL, as DBOS reads it)."""
    if text is None:
        return None
    try:
        if fmt == PORTABLE_JSON:
            return json.loads(text)
        return pickle.loads(base64.b64decode(text))
    except Exception as exc:
        raise DBOSSerializationError(f"cannot deserialize the recorded {what}: {exc}") from exc


def serialize_args(args: tuple[Any, ...], kwargs: dict[str, Any], *, workflow_name: str) -> str:
    """Workflow inputs, pickled as DBOS does: ``{"args": ..., "kwargs": ...}``.

    When they cannot be pickled, the error names the argument at fault.
    """
    try:
        return serialize({"args": tuple(args), "kwargs": dict(kwargs)})
    except DBOSSerializationError:
        named = [(f"argument {i}", v) for i, v in enumerate(args)]
        named += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
        for label, value in named:
            serialize(value, what=f"{label} of workflow {workflow_name!r}")
        raise


def deserialize_args(text: str, fmt: str | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The ``(args, kwargs)`` stored by :func:`serialize_args` (or by a portable-JSON client)."""
    inputs = deserialize(text, fmt, what="workflow inputs")
    if fmt == PORTABLE_JSON:
        return tuple(inputs.get("positionalArgs") or ()), dict(inputs.get("namedArgs") or {})
    return tuple(inputs.get("args", ())), dict(inputs.get("kwargs", {}))


def serialize_exception(exc: BaseException, fmt: str | None = None) -> str:
    """Pickle an exception; one that cannot be pickled is recorded as an equivalent Exception
    carrying its type name and message, so the failure itself is never lost. In portable JSON
    it is DBOS's ``{"name": ..., "message": ...}``."""
    if fmt == PORTABLE_JSON:
        return json.dumps({"name": type(exc).__name__, "message": str(exc)}, ensure_ascii=False)
    try:
        return serialize(exc, what="error")
    except DBOSSerializationError:
        return serialize(Exception(f"{type(exc).__qualname__}: {exc}"), what="error")


def deserialize_exception(text: str | None, fmt: str | None = None) -> BaseException:
    value = deserialize(text, fmt, what="error")
    if fmt == PORTABLE_JSON and isinstance(value, dict):
        return Exception(f"{value.get('name', 'Error')}: {value.get('message', '')}")
    if not isinstance(value, BaseException):
        return Exception(str(value))
    return value
