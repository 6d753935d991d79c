"""Structured logs for pgfleet's own components (sysdb, cluster, runtime internals).

structlog renders each event and hands it to a standard ``logging`` logger (``pgfleet.<part>``),
so applications route, filter and capture pgfleet's logs with the logging setup they already
have. pgfleet never calls ``structlog.configure()``: an application's own structlog setup is
left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import structlog

__all__ = ["get_logger", "PROCESSORS", "format_positional_args"]

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


# Shared by every pgfleet logger; runtime.logs adds the running workflow's ids in front.
PROCESSORS: list[Callable[..., Any]] = [
    structlog.stdlib.filter_by_level,
    structlog.stdlib.add_log_level,
    format_positional_args,
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
    structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
]


def get_logger(name: str, extra_processors: list[Callable[..., Any]] | None = None) -> Any:
    """A structlog logger that writes through ``logging.getLogger(name)``."""
    processors = PROCESSORS[:3] + (extra_processors or []) + PROCESSORS[3:]
    return structlog.wrap_logger(logging.getLogger(name), wrapper_class=structlog.stdlib.BoundLogger, processors=processors)
