"""Structured logs for pgfleet's own components (sysdb, cluster, runtime internals).

structlog renders each event and hands it to a standard ``logging`` logger (``pgfleet.<part>``),
so applications route, filter and capture pgfleet's logs with the logging setup they already
have. pgfleet never calls ``structlog.configure()``: an application's own structlog setup is
left alone. Each record's message is the ``event='...' key=value`` text; it names the line that
logged (not structlog's), and carries the event's fields as ``record.pgfleet_event`` for
handlers that send structure (``runtime.otlp_logs``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import structlog

__all__ = ["get_logger", "PROCESSORS", "FIELDS_ATTRIBUTE", "format_positional_args", "render"]


def format_positional_args(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``logger.info("took %s s", 1.5)`` as the standard library formats it ("took 1.5 s"; one
    mapping argument fills ``%(name)s``). ``DBOS.logger`` is a stdlib logger in DBOS, and DBOS
    programs log this way. A template its arguments do not fit is left as it was, with the
    arguments beside it: logging must never raise at the call (the standard library reports it
    at emit instead)."""
    args = event_dict.get("positional_args")
    event = event_dict.get("event")
    if not args or not isinstance(event, str):
        return event_dict
    if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        args = args[0]  # as logging.LogRecord does
    try:
        event_dict["event"] = event % args
    except (TypeError, ValueError, KeyError):
        return event_dict
    del event_dict["positional_args"]
    return event_dict


_STRUCTLOG_DIR = os.path.dirname(structlog.__file__) + os.sep
_key_value_text = structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True)

# The LogRecord attribute that carries an event's fields beside its rendered text.
FIELDS_ATTRIBUTE = "pgfleet_event"


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that makes ``logging`` record the line that called the structlog
    logger, not structlog's own (``%(filename)s:%(lineno)d``, OTLP's ``code.*`` attributes):
    one more than the structlog frames between that line and the stdlib call."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and not frame.f_code.co_filename.startswith(_STRUCTLOG_DIR):
        frame = frame.f_back  # up from this module and the processors to structlog's frames
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_STRUCTLOG_DIR):
        if frame.f_code.co_name != "_process_event":  # called before the stdlib call, not under it
            level += 1
        frame = frame.f_back
    return level


def render(logger: Any, method_name: str, event_dict: dict[str, Any]) -> tuple[tuple[str], dict[str, Any]]:
    """The event as ``event='...' key=value`` text (a traceback on the lines after it), the
    message every ``logging`` handler formats, and its fields on the record as
    ``record.pgfleet_event``, for a handler that sends structure (``runtime.otlp_logs``). Values
    that are not plain scalars are kept as their repr, so that the record still pickles (a
    ``QueueHandler`` to another process)."""
    fields = {key: value if value is None or isinstance(value, (str, int, float, bool)) else repr(value)
              for key, value in event_dict.items()}
    # A traceback follows the line on lines of its own, as the standard library prints one:
    # inside key=value text it was one line of escaped newlines that nobody could read.
    traceback = event_dict.pop("exception", None)
    text = _key_value_text(logger, method_name, event_dict)
    if traceback:
        text = f"{text}\n{traceback}"
    return (text,), {"extra": {FIELDS_ATTRIBUTE: fields}, "stacklevel": _caller_stacklevel()}


# Shared by every pgfleet logger; runtime.logs adds the running workflow's ids in front.
PROCESSORS: list[Callable[..., Any]] = [
    structlog.stdlib.filter_by_level,
    structlog.stdlib.add_log_level,
    format_positional_args,
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
    render,
]


def get_logger(name: str, extra_processors: list[Callable[..., Any]] | None = None) -> Any:
    """A structlog logger that writes through ``logging.getLogger(name)``."""
    processors = PROCESSORS[:3] + (extra_processors or []) + PROCESSORS[3:]
    return structlog.wrap_logger(logging.getLogger(name), wrapper_class=structlog.stdlib.BoundLogger, processors=processors)
