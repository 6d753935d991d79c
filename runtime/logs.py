"""``DBOS.logger``: structlog rendering through the standard ``logging`` logger ``"dbos"``.

Code that configures or captures ``logging.getLogger("dbos")`` sees every message, and each one
carries the running workflow's id and the executor id without the caller passing them. pgfleet
does not call ``structlog.configure()``: the application's own structlog setup is untouched.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from sysdb.logs import get_logger

from .context import current_workflow

__all__ = ["logger", "set_executor_id", "configure_level"]

# The executor id that log lines outside any workflow carry: the launched DBOS's (set by the
# facade). Inside a workflow a line carries the id of the executor that runs it.
_executor_id: str | None = None


def set_executor_id(executor_id: str | None) -> None:
    global _executor_id
    _executor_id = executor_id


def _bind_workflow(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    ctx = current_workflow()
    executor_id = _executor_id
    if ctx is not None:
        event.setdefault("workflow_id", ctx.workflow_id)
        if ctx.step_id is not None:
            event.setdefault("step_id", ctx.step_id)
        executor_id = ctx.executor_id
    if executor_id is not None:
        event.setdefault("executor_id", executor_id)
    return event


logger: structlog.stdlib.BoundLogger = get_logger("dbos", [_bind_workflow])


def configure_level(level: str) -> None:
    """Give the ``dbos`` and ``pgfleet`` loggers a level and, if the application configured no
    logging at all, a stderr handler (a configured application keeps full control)."""
    for name in ("dbos", "pgfleet"):
        std = logging.getLogger(name)
        std.setLevel(level)
        if not std.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
            std.addHandler(handler)
