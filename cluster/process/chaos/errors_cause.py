"""Whether a workflow's recorded ERROR has an infrastructure cause: a fault the chaos run injected
showing through (a lost connection, a pool timeout, a fenced write, pgfleet's own errors), as
opposed to the app's own exception, which the same run without faults would have raised too.

Infrastructure, by class (runtime/errors.py and sysdb/errors.py):

- the driver's and the pool's errors: any class of ``psycopg``, ``psycopg_pool`` (``psycopg2``);
- pgfleet's internal errors, which runtime translates before users see them: any class of ``sysdb``;
- ``DBOSWorkflowFencedError`` (the execution lost its workflow), ``DBOSDatabaseUnavailableError``
  (the system database could not be reached), ``DBOSNotLaunchedError`` (the executor was torn
  down under a running workflow);
- a deserialization failure: ``DBOSSerializationError`` "cannot deserialize the recorded ...",
  or a recorded error that cannot be read at all.

A pickled error is read without being unpickled: the checker lists the classes its pickle names
(anywhere inside it, so a ``DBOSMaxStepRetriesExceeded`` whose attempts failed with a lost
connection counts), which needs none of the app's modules importable in the checker's process.
Everything else (the app's exceptions, DBOS's other errors) is the app's.
"""

from __future__ import annotations

import base64
import binascii
import pickletools
from typing import Any

from runtime.serialization import PORTABLE_JSON, SERIALIZATION_FORMAT, deserialize, deserialize_exception

__all__ = ["infrastructure_cause", "pickle_classes", "describe_error"]

_INFRA_MODULES = ("psycopg", "psycopg_pool", "psycopg2", "sysdb")
_INFRA_RUNTIME = {"DBOSWorkflowFencedError", "DBOSDatabaseUnavailableError", "DBOSNotLaunchedError"}
# What a portable (JSON) error's "name" says for the same classes.
_INFRA_NAMES = _INFRA_RUNTIME | {
    "OperationalError", "InterfaceError", "PoolTimeout", "PoolClosed", "TooManyRequests",
    "DatabaseUnavailableError", "OwnershipLostError", "SystemDatabaseError", "DuplicateCheckpointError",
}  # fmt: skip
_DESERIALIZE_FAILED = "cannot deserialize the recorded"
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def pickle_classes(data: bytes) -> tuple[set[tuple[str, str]], list[str]]:
    """The (module, name) of every global a pickle names, and its strings, read op by op
    (never unpickled). Raises ValueError when it is not a pickle."""
    found: set[tuple[str, str]] = set()
    strings: list[str] = []
    memo: dict[int, Any] = {}
    recent: list[Any] = []  # the values the last ops pushed, most recent last
    try:
        for op, raw, _ in pickletools.genops(data):
            arg: Any = raw
            if op.name in _STRING_OPS:
                text = arg if isinstance(arg, str) else bytes(arg).decode("latin-1")
                strings.append(text)
                recent.append(text)
            elif op.name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = recent[-1] if recent else None
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo.get(int(arg)))
            elif op.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                found.add((module, name))
                recent.append(None)
            elif op.name == "STACK_GLOBAL":
                if len(recent) >= 2 and isinstance(recent[-2], str) and isinstance(recent[-1], str):
                    found.add((recent[-2], recent[-1]))
                recent.append(None)
            elif op.name not in ("FRAME", "PROTO", "STOP"):
                recent.append(None)
            del recent[:-4]
    except Exception as exc:  # pickletools raises ValueError, or others on garbage
        raise ValueError(f"not a pickle: {exc}") from exc
    return found, strings


def _pickled_cause(text: str) -> str | None:
    try:
        classes, strings = pickle_classes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        return f"the recorded error cannot be read ({exc})"
    for module, name in sorted(classes):
        if module.split(".")[0] in _INFRA_MODULES or (module == "runtime.errors" and name in _INFRA_RUNTIME):
            return f"{module}.{name}"
    if ("runtime.errors", "DBOSSerializationError") in classes and any(s.startswith(_DESERIALIZE_FAILED) for s in strings):
        return "runtime.errors.DBOSSerializationError (a deserialization failure)"
    return None


def _object_cause(exc: BaseException) -> str | None:
    """For errors in another format, read back as objects: their class, cause and context chain."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        cls = type(e)
        name = getattr(e, "name", None) if cls.__name__ == "PortableWorkflowError" else cls.__name__
        if cls.__module__.split(".")[0] in _INFRA_MODULES or name in _INFRA_NAMES:
            return f"{cls.__module__}.{name}"
        if name == "DBOSSerializationError" and str(getattr(e, "message", e)).startswith(_DESERIALIZE_FAILED):
            return "DBOSSerializationError (a deserialization failure)"
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
        todo += [c for c in getattr(e, "errors", None) or [] if isinstance(c, BaseException)]
    return None


def infrastructure_cause(error: str | None, serialization: str | None) -> str | None:
    """Why a recorded error is an infrastructure cause (naming the class that makes it one), or
    None when it is the app's own."""
    if error is None:
        return None
    if serialization is None or serialization == SERIALIZATION_FORMAT:
        return _pickled_cause(error)
    try:
        if serialization == PORTABLE_JSON:
            value = deserialize(error, serialization, what="error")
            name = str(value.get("name")) if isinstance(value, dict) else ""
            message = str(value.get("message", "")) if isinstance(value, dict) else ""
            if name in _INFRA_NAMES:
                return f"{name} (portable)"
            return "DBOSSerializationError (a deserialization failure)" if message.startswith(_DESERIALIZE_FAILED) else None
        return _object_cause(deserialize_exception(error, serialization))
    except Exception as exc:
        return f"the recorded error cannot be read ({exc})"


def describe_error(error: str | None, serialization: str | None) -> str | None:
    """The recorded error as ``repr``, for messages; a short account when it cannot be read here
    (an app class the checker's process cannot import)."""
    if error is None:
        return None
    try:
        return repr(deserialize_exception(error, serialization))
    except Exception as exc:
        return f"<unreadable here: {exc}>"
