"""``DBOS.step_status``: which step of its workflow is running, and which attempt of it.

Set by :func:`runtime.steps.run_step` around a step's body (in the workflow's thread, so a
context variable carries it): DBOS's ``StepStatus`` shape, with the attempt fields filled in only
for a step with automatic retries. Outside a step (or inside a transaction) it is ``None``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

__all__ = ["StepStatus", "current_step_status", "running_step", "attempting"]


@dataclass
class StepStatus:
    """Status of a step execution.

    ``step_id`` is the step's position in its workflow; for a step with automatic retries,
    ``current_attempt`` is the attempt running now (from 0) and ``max_attempts`` how many it
    gets, else both are ``None``.
    """

    step_id: int
    current_attempt: int | None
    max_attempts: int | None


_status: contextvars.ContextVar[StepStatus | None] = contextvars.ContextVar("pgfleet_step_status", default=None)


def current_step_status() -> StepStatus | None:
    """The running step's status (None outside a step)."""
    return _status.get()


class running_step:  # noqa: N801 - used as the context manager it replaced: with running_step(id) as status
    """While a workflow's step at ``step_id`` runs (its retries included): ``with
    running_step(step_id) as status``. A class rather than a generator context: it wraps every
    step, and a generator context costs several times more (issue #14)."""

    __slots__ = ("_status", "_token")

    def __init__(self, step_id: int) -> None:
        self._status = StepStatus(step_id, None, None)
        self._token: contextvars.Token[StepStatus | None] | None = None

    def __enter__(self) -> StepStatus:
        self._token = _status.set(self._status)
        return self._status

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._token is not None:
            _status.reset(self._token)
            self._token = None


@contextmanager
def attempting(status: StepStatus | None, attempt: int, max_attempts: int) -> Iterator[None]:
    """While attempt ``attempt`` (from 0) of a retried step runs."""
    if status is None:
        yield
        return
    status.current_attempt, status.max_attempts = attempt, max_attempts
    try:
        yield
    finally:
        status.current_attempt = status.max_attempts = None
