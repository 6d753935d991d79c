"""Turning Python values into the text stored in the system database, and back.

Each row names its format in its ``serialization`` column, as DBOS 2.x writes it (see
:mod:`runtime.serializers`): ``py_pickle`` (base64 of a pickle, the default), ``portable_json``
(for workflows declared ``serialization_type=WorkflowSerializationFormat.PORTABLE`` and for
clients in other languages), or the name of the application's own serializer
(``DBOSConfig["serializer"]``). Workflow inputs are ``{"args": tuple, "kwargs": dict}`` (in
portable JSON ``{"namedArgs": {...}, "positionalArgs": [...]}``); errors are the exception
objects (in portable JSON ``{"name", "message", "code", "data"}``). pgfleet writes the same
texts, so DBOS's processes and clients read our rows, and we theirs.

A value written with no format named uses the process's default serializer: pickle, or the
configured custom one (:func:`use_serializer`, called when ``DBOS(config=...)`` is built).
"""

from __future__ import annotations

from typing import Any

from .errors import DBOSConfigError, DBOSSerializationError
from .serializers import (
    PICKLE,
    PORTABLE_JSON,
    DBOSPortableJSONSerializer,
    PickleSerializer,
    PortableWorkflowError,
    Serializer,
    WorkflowSerializationFormat,
    portable_error_data,
)

__all__ = [
    "SERIALIZATION_FORMAT",
    "PORTABLE_JSON",
    "use_serializer",
    "default_format",
    "format_for",
    "serialize",
    "deserialize",
    "serialize_args",
    "deserialize_args",
    "serialize_exception",
    "deserialize_exception",
]

# The value of the ``serialization`` column for pickled rows (DBOS's default for Python).
SERIALIZATION_FORMAT = PICKLE

_PICKLE = PickleSerializer()
_PORTABLE = DBOSPortableJSONSerializer()
# The application's serializer (``DBOSConfig["serializer"]``), or None for pickle.
_custom: Serializer | None = None


def use_serializer(serializer: Any) -> None:
    """Make ``serializer`` (a :class:`~runtime.serializers.Serializer`, or None for pickle) the
    process's default: what values are written in when no format is named, and what reads rows
    that name its ``name()`` (or name none, as DBOS reads them)."""
    global _custom
    if serializer is not None:
        for method in ("serialize", "deserialize", "name"):
            if not callable(getattr(serializer, method, None)):
                raise DBOSConfigError(
                    f"config key 'serializer': {serializer!r} has no {method}() method: it must be a "
                    "runtime.Serializer (serialize(data) -> str, deserialize(text) -> data, name() -> str)"
                )
    _custom = serializer


def default_format() -> str:
    """The ``serialization`` column of a value written with no format named."""
    return _custom.name() if _custom is not None else PICKLE


def format_for(serialization_type: WorkflowSerializationFormat | str | None, inherited: str | None = None) -> str:
    """The format a ``serialization_type`` argument asks for: ``PORTABLE`` portable JSON,
    ``NATIVE`` pickle, ``DEFAULT`` (or None) ``inherited`` (the running workflow's format)
    when given, else the process's default."""
    if serialization_type == WorkflowSerializationFormat.PORTABLE:
        return PORTABLE_JSON
    if serialization_type == WorkflowSerializationFormat.NATIVE:
        return PICKLE
    if serialization_type is None or serialization_type == WorkflowSerializationFormat.DEFAULT:
        return inherited or default_format()
    raise DBOSSerializationError(
        f"serialization_type must be a WorkflowSerializationFormat (PORTABLE, NATIVE or DEFAULT), got {serialization_type!r}"
    )


def _serializer(fmt: str | None) -> Serializer:
    """The serializer for a row's ``serialization`` column (NULL: the default, as DBOS reads it)."""
    if fmt == PORTABLE_JSON:
        return _PORTABLE
    if fmt == PICKLE:
        return _PICKLE
    if _custom is not None and (fmt is None or fmt == _custom.name()):
        return _custom
    if fmt is None:
        return _PICKLE
    raise DBOSSerializationError(
        f"Serialization {fmt} is not available: the row was written by a serializer named {fmt!r}; "
        "configure it as DBOSConfig['serializer'] to read it"
    )


def serialize(value: Any, *, what: str = "value", fmt: str | None = None) -> str:
    """``value`` as stored text in format ``fmt`` (default: the process's default); a value
    that cannot be written raises a clear error naming ``what``."""
    serializer = _serializer(fmt or default_format())
    try:
        return serializer.serialize(value)
    except Exception as exc:  # pickle raises TypeError, AttributeError, PicklingError...
        if serializer is _PORTABLE:
            hint = "This workflow uses portable (JSON) serialization, so its values must be JSON data"
        elif serializer is _PICKLE:
            hint = "Workflow arguments, step results and errors must be picklable"
        else:
            hint = f"The configured serializer {serializer.name()!r} refused it"
        raise DBOSSerializationError(f"cannot serialize {what} of type {type(value).__name__}: {exc}. {hint}") from exc


def deserialize(text: str | None, fmt: str | None = None, *, what: str = "value") -> Any:
    """The value stored by :func:`serialize` (``None`` stays ``None``); ``fmt`` is the row's
    ``serialization`` column."""
    if text is None:
        return None
    serializer = _serializer(fmt)
    try:
        return serializer.deserialize(text)
    except Exception as exc:
        raise DBOSSerializationError(f"cannot deserialize the recorded {what}: {exc}") from exc


def serialize_args(args: tuple[Any, ...], kwargs: dict[str, Any], *, workflow_name: str, fmt: str | None = None) -> str:
    """Workflow inputs as DBOS stores them in format ``fmt``. When they cannot be written, the
    error names the argument at fault."""
    fmt = fmt or default_format()
    inputs: Any = (
        {"namedArgs": dict(kwargs), "positionalArgs": list(args)}
        if fmt == PORTABLE_JSON
        else {"args": tuple(args), "kwargs": dict(kwargs)}
    )
    try:
        return serialize(inputs, fmt=fmt, what=f"the inputs of workflow {workflow_name!r}")
    except DBOSSerializationError:
        named = [(f"argument {i}", v) for i, v in enumerate(args)]
        named += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
        for label, value in named:
            serialize(value, what=f"{label} of workflow {workflow_name!r}", fmt=fmt)
        raise


def deserialize_args(text: str, fmt: str | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The ``(args, kwargs)`` stored by :func:`serialize_args` (or by a portable-JSON client)."""
    inputs = deserialize(text, fmt, what="workflow inputs")
    if not isinstance(inputs, dict):
        raise DBOSSerializationError(f"cannot deserialize the recorded workflow inputs: not an object but {type(inputs).__name__}")
    if fmt == PORTABLE_JSON:
        return tuple(inputs.get("positionalArgs") or ()), dict(inputs.get("namedArgs") or {})
    return tuple(inputs.get("args", ())), dict(inputs.get("kwargs", {}))


def serialize_exception(exc: BaseException, fmt: str | None = None) -> str:
    """An error as stored in format ``fmt``: the exception object, or in portable JSON DBOS's
    ``{"name", "message", "code", "data"}``. One that cannot be written, or whose written form
    cannot be read back (pickle re-calls the constructor with ``exc.args``: a keyword-only
    ``__init__`` fails there), is recorded as an equivalent Exception carrying its type name and
    message, so every later read of the failure gets it, not a decoding error."""
    fmt = fmt or default_format()
    if fmt == PORTABLE_JSON:
        return _PORTABLE.serialize(portable_error_data(exc))
    try:
        text = serialize(exc, what="error", fmt=fmt)
        deserialize(text, fmt, what="error")  # only on a failure's path: worth the check
        return text
    except DBOSSerializationError:
        return serialize(Exception(f"{type(exc).__qualname__}: {exc}"), what="error", fmt=fmt)


def deserialize_exception(text: str | None, fmt: str | None = None) -> BaseException:
    """The error stored by :func:`serialize_exception`; a portable one comes back as a
    :class:`~runtime.serializers.PortableWorkflowError`."""
    value = deserialize(text, fmt, what="error")
    if fmt == PORTABLE_JSON and isinstance(value, dict):
        return PortableWorkflowError(
            str(value.get("message", "")), str(value.get("name", "Error")), value.get("code"), value.get("data")
        )
    if not isinstance(value, BaseException):
        return Exception(str(value))
    return value
