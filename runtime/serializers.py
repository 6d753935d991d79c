"""The serializers behind the ``serialization`` column, and the public names DBOS gives them.

Every serialized value in the system database sits next to the name of the serializer that
wrote it: ``py_pickle`` (base64 of a pickle, DBOS's default for Python), ``portable_json``
(JSON that clients in other languages read and write), or the ``name()`` of the custom
:class:`Serializer` an application configured (``DBOSConfig["serializer"]``). A reader picks the
serializer by that name, so a row written in one format is read back in it whatever the
reader's own default.
"""

from __future__ import annotations

import base64
import json
import pickle
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

__all__ = [
    "PICKLE",
    "PORTABLE_JSON",
    "Serializer",
    "PickleSerializer",
    "DBOSPortableJSONSerializer",
    "WorkflowSerializationFormat",
    "PortableWorkflowError",
    "portable_value",
    "portable_error_data",
]

# The names written in the ``serialization`` column (DBOS's).
PICKLE = "py_pickle"
PORTABLE_JSON = "portable_json"


class Serializer(ABC):
    """Turns program data into the text stored in the system database, and back.

    Subclass it and pass an instance as ``DBOSConfig["serializer"]`` to store workflow
    inputs, outputs, step results, messages, events and stream values your way; ``name()`` is
    written beside every value it serialized, so it must be stable across deploys (and the
    same in every process and client reading the rows).
    """

    @abstractmethod
    def serialize(self, data: Any) -> str:
        """The text stored for ``data``."""

    @abstractmethod
    def deserialize(self, serialized_data: str) -> Any:
        """The value :meth:`serialize` stored as ``serialized_data``."""

    def name(self) -> str:
        """The value of the ``serialization`` column for rows this serializer writes."""
        return "custom_serializer"


class PickleSerializer(Serializer):
    """DBOS's default for Python: base64 text of a pickle."""

    def serialize(self, data: Any) -> str:
        return base64.b64encode(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")

    def deserialize(self, serialized_data: str) -> Any:
        return pickle.loads(base64.b64decode(serialized_data))

    def name(self) -> str:
        return PICKLE


def _utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and ``Z``, the canonical portable timestamp (a naive
    datetime is taken as UTC)."""
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def portable_value(value: Any) -> Any:
    """``value`` as plain JSON data: datetimes become UTC RFC 3339 text, dates ISO dates,
    decimals their digits, tuples and sets lists. Anything else raises ``TypeError``
    (DBOS's text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):  # before date: a datetime is a date
        return _utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (list, tuple, set, frozenset)):
        return [portable_value(item) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("Attempt to do portable JSON serialization of a map with non-string keys")
            out[key] = portable_value(item)
        return out
    raise TypeError(f"Object of type {type(value).__name__} is not portable JSON serializable")


class DBOSPortableJSONSerializer(Serializer):
    """DBOS's language-neutral format: compact JSON of :func:`portable_value`; read back as
    plain JSON (a datetime comes back as its text unless the workflow's type hints say
    otherwise)."""

    def name(self) -> str:
        return PORTABLE_JSON

    def deserialize(self, serialized_data: str | None) -> Any:
        return None if serialized_data is None else json.loads(serialized_data)

    def serialize(self, data: Any) -> str:
        return json.dumps(portable_value(data), separators=(",", ":"), ensure_ascii=False)


class WorkflowSerializationFormat(str, Enum):
    """How a workflow (``@DBOS.workflow(serialization_type=...)``), an event, a stream value or
    a message is serialized: ``PORTABLE`` JSON, ``NATIVE`` pickle, or the ``DEFAULT`` (the
    application's serializer; inside a workflow, the workflow's own format)."""

    PORTABLE = "portable"
    NATIVE = "native"
    DEFAULT = None  # the str mixin makes its value "None", as DBOS's is


@dataclass(eq=False)
class PortableWorkflowError(Exception):
    """An error recorded in portable JSON (``{"name", "message", "code", "data"}``), as read
    back: a workflow whose outcome another language recorded, or one of this language run
    with portable serialization (whose recorded ``name`` is the raised error's type name)."""

    message: str
    name: str
    code: int | str | None = None
    data: Any = None

    def __str__(self) -> str:
        return self.message

    def to_error_data(self) -> dict[str, Any]:
        """The portable payload: ``name`` and ``message``, and ``code``/``data`` when set."""
        out: dict[str, Any] = {"name": self.name, "message": self.message}
        if self.code is not None:
            out["code"] = self.code
        if self.data is not None:
            out["data"] = self.data
        return out


def _text_of(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return "<unprintable>"


_CODE_ATTRIBUTES = ("code", "error_code", "errno", "status", "status_code")
_DATA_ATTRIBUTES = ("data", "details", "payload", "extra", "meta", "metadata")


def portable_error_data(error: BaseException) -> dict[str, Any]:
    """What DBOS records for an error in portable JSON: its type name, its message, an
    application code if it carries one (``code``, ``errno``, ``status_code``...; else null),
    and its structured details (``data``, ``details``...) when it has them. Never raises: a
    detail that is not portable is recorded as its text."""
    out: dict[str, Any] = {"name": type(error).__name__, "message": _text_of(error), "code": None}
    for attribute in _CODE_ATTRIBUTES:
        try:
            code = getattr(error, attribute)
        except Exception:
            continue
        if code is None or isinstance(code, (int, str)):
            out["code"] = code
            break
    for attribute in _DATA_ATTRIBUTES:
        try:
            data = getattr(error, attribute)
        except Exception:
            continue
        if callable(data):
            continue
        try:
            out["data"] = portable_value(data)
        except Exception:
            out["data"] = _text_of(data)
        break
    return out
