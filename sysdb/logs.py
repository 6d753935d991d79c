"""Structured logs for pgfleet's own components (sysdb, cluster, runtime internals).

structlog renders each event and hands it to a standard ``logging`` logger (``pgfleet.<part>``),
so applications route, filter and capture pgfleet's logs with the logging setup they already
have. pgfleet never calls ``structlog.configure()``: an application's own structlog setup is
left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import structlog

__all__ = ["get_logger", "PROCESSORS"]

# Shared by every pgfleet logger; runtime.logs adds the running workflow's ids in front.
PROCESSORS: list[Callable[..., Any]] = [
    structlog.stdlib.filter_by_level,
    structlog.stdlib.add_log_level,
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
    structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
]


def get_logger(name: str, extra_processors: list[Callable[..., Any]] | None = None) -> Any:
    """A structlog logger that writes through ``logging.getLogger(name)``."""
    processors = PROCESSORS[:2] + (extra_processors or []) + PROCESSORS[2:]
    return structlog.wrap_logger(logging.getLogger(name), wrapper_class=structlog.stdlib.BoundLogger, processors=processors)
