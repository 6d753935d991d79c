"""``WorkflowHandle``: a reference to a workflow that may be running anywhere in the fleet."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .context import WorkflowContext, current_workflow
from .errors import DBOSNonExistentWorkflowError
from .status import WorkflowStatus, status_from_row

if TYPE_CHECKING:
    from sysdb import SystemDatabase

__all__ = ["WorkflowHandle", "WorkflowHandleAsync"]

R = TypeVar("R")


class ResultSource(Protocol):
    """What a handle reads its workflow through: an Executor, or a DBOSClient (no workflows of
    its own, so it records nothing and waits by polling)."""

    @property
    def db(self) -> SystemDatabase: ...

    def recorded_call(self, function_name: str, thunk: Callable[[], Any]) -> Any: ...

    def child_result(self, parent: WorkflowContext, workflow_id: str) -> Any: ...

    def wait_result(self, workflow_id: str, timeout_sec: float | None = None) -> Any: ...


class WorkflowHandle(Generic[R]):
    """Returned by ``DBOS.start_workflow``, ``Queue.enqueue`` and ``DBOS.retrieve_workflow``."""

    def __init__(self, executor: ResultSource, workflow_id: str) -> None:
        self._executor = executor
        self.workflow_id = workflow_id

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"

    def get_workflow_id(self) -> str:
        """The workflow's id."""
        return self.workflow_id

    def get_result(self, *, timeout_seconds: float | None = None) -> R:
        """Block until the workflow finishes and return its result (or raise its error).

        Inside a workflow this is a checkpointed operation (``DBOS.getResult``): a replay
        returns the recorded result without waiting again.
        """
        parent = current_workflow()
        if parent is not None and not parent.in_step and timeout_seconds is None:
            return self._executor.child_result(parent, self.workflow_id)
        return self._executor.wait_result(self.workflow_id, timeout_seconds)

    def get_status(self) -> WorkflowStatus:
        """The workflow's current status row."""

        def read() -> WorkflowStatus:
            row = self._executor.db.workflows.status(self.workflow_id)
            if row is None:
                raise DBOSNonExistentWorkflowError("target", self.workflow_id)
            return status_from_row(row)

        return self._executor.recorded_call("DBOS.getStatus", read)


class WorkflowHandleAsync(Generic[R]):
    """The asyncio flavour of :class:`WorkflowHandle` (blocking calls run in a thread)."""

    def __init__(self, handle: WorkflowHandle[R]) -> None:
        self._handle = handle
        self.workflow_id = handle.workflow_id

    def get_workflow_id(self) -> str:
        return self.workflow_id

    async def get_result(self) -> R:
        return await asyncio.to_thread(self._handle.get_result)

    async def get_status(self) -> WorkflowStatus:
        return await asyncio.to_thread(self._handle.get_status)


