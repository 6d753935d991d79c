"""Which process object the ``DBOS`` facade stands for, and which executor a call goes to.

``DBOS(config=...)`` builds a :class:`~runtime.process.DBOSProcess` and makes it current here;
``DBOS``'s class methods, the decorated functions and ``Queue.enqueue`` act on it. Inside a
workflow a call goes to the executor that runs the workflow (its context names it), never to
the current one, so several process objects can run side by side in one interpreter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .context import current_workflow
from .errors import DBOSException

if TYPE_CHECKING:
    from .executor import Executor
    from .process import DBOSProcess

__all__ = ["current_process", "make_current", "executor_for", "not_launched", "NOT_LAUNCHED"]

# DBOS's words (and class, DBOSException) for anything that reaches the system database outside
# a launch: before DBOS.launch(), after DBOS.destroy(), or through a handle of a destroyed launch.
NOT_LAUNCHED = "System database accessed before DBOS was launched"

# The one slot of the facade (DBOS is a singleton API, as in DBOS Transact): replaced by
# DBOS(config=...), emptied by DBOS.destroy(). Everything else lives in the process object.
_current: DBOSProcess | None = None


def current_process() -> DBOSProcess | None:
    """The process object ``DBOS`` stands for (launched or not), if ``DBOS()`` was created."""
    return _current


def make_current(process: DBOSProcess | None) -> None:
    global _current
    _current = process


def executor_for(what: str) -> Executor:
    """The executor a call made here goes to: inside a workflow, the one running it; else the
    current process's. Raises DBOS's not-launched error (see :func:`not_launched`) if neither."""
    ctx = current_workflow()
    if ctx is not None:
        return ctx.executor
    process = _current
    if process is None or process.executor is None:
        raise not_launched()
    return process.executor


def not_launched() -> DBOSException:
    """What DBOS raises for a call that needs the system database while DBOS is not launched."""
    return DBOSException(NOT_LAUNCHED)
