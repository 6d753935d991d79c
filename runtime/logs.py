"""``DBOS.logger``: structlog rendering through the standard ``logging`` logger ``"dbos"``.

Code that configures or captures ``logging.getLogger("dbos")`` sees every message, and each one
carries the running workflow's id and the executor id without the caller passing them. pgfleet
does not call ``structlog.configure()``: the application's own structlog setup is untouched.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from .context import current_workflow

__all__ = ["logger", "set_executor_id", "configure_level"]

_executor_id: str | None = None


def set_executor_id(executor_id: str | None) -> None:
    global _executor_id
    _executor_id = executor_id


def _bind_workflow(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    ctx = current_workflow()
    if ctx is not None:
        event.setdefault("workflow_id", ctx.workflow_id)
        if ctx.step_id is not None:
            event.setdefault("step_id", ctx.step_id)
    if _executor_id is not None:
        event.setdefault("executor_id", _executor_id)
    return event


_stdlib_logger = logging.getLogger("dbos")

logger: structlog.stdlib.BoundLogger = structlog.wrap_logger(
    _stdlib_logger,
    wrapper_class=structlog.stdlib.BoundLogger,
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.stdlib.add_log_level,
        _bind_workflow,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
    ],
)


def configure_level(level: str) -> None:
    """Give the ``dbos`` logger a level and, if nobody configured logging, a stderr handler."""
    _stdlib_logger.setLevel(level)
    if not _stdlib_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        _stdlib_logger.addHandler(handler)
