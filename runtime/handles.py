"""``WorkflowHandle``: a reference to a workflow that may be running anywhere in the fleet."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from .aio import active_workflow, in_thread
from .context import WorkflowContext, current_workflow
from .current import current_process, executor_for
from .errors import DBOSNonExistentWorkflowError
from .results import recorded_result_async
from .status import WorkflowStatus, status_from_row

if TYPE_CHECKING:
    from sysdb import SystemDatabase

    from .executor import Executor

__all__ = ["WorkflowHandle", "WorkflowHandleAsync", "ResultSource", "register_client", "unregister_client"]

R = TypeVar("R")


class ResultSource(Protocol):
    """What a handle reads its workflow through: an Executor, or a DBOSClient (no workflows of
    its own, so it records nothing and waits by polling)."""

    @property
    def db(self) -> SystemDatabase: ...

    def recorded_call(self, function_name: str, thunk: Callable[[], Any]) -> Any: ...

    def child_result(self, parent: WorkflowContext, workflow_id: str) -> Any: ...

    def wait_result(self, workflow_id: str, timeout_sec: float | None = None) -> Any: ...


# The DBOSClient made last in this process, for a handle built with only an id where no DBOS
# process is current (a script that only has a client). Weak: the handle keeps no client alive.
_last_client: weakref.ReferenceType[Any] | None = None


def register_client(client: ResultSource) -> None:
    """Remember ``client`` as where id-only handles read when no DBOS process is current."""
    global _last_client
    _last_client = weakref.ref(client)


def unregister_client(client: ResultSource) -> None:
    """Forget ``client`` (it was destroyed) if it is the one id-only handles would read through."""
    global _last_client
    if _last_client is not None and _last_client() is client:
        _last_client = None


def _default_source() -> ResultSource:
    """Where an id-only handle reads: inside a workflow the executor running it, else the current
    DBOS process's executor, else the last DBOSClient made; DBOS's not-launched error if none."""
    process = current_process()
    client = _last_client() if _last_client is not None else None
    if current_workflow() is None and (process is None or process.executor is None) and client is not None:
        return client
    return executor_for("WorkflowHandle")


class WorkflowHandle(Generic[R]):
    """Returned by ``DBOS.start_workflow``, ``Queue.enqueue`` and ``DBOS.retrieve_workflow``.

    ``WorkflowHandle(workflow_id)`` (DBOS's signature) reads the workflow through the current
    DBOS process (or, in a process with only a ``DBOSClient``, the last client made), looked up
    at each call; pgfleet's own handles pass the executor or client they came from as
    ``source``."""

    def __init__(self, workflow_id: str, *, source: ResultSource | None = None) -> None:
        self._source = source
        self.workflow_id = workflow_id

    @property
    def _executor(self) -> ResultSource:
        return self._source if self._source is not None else _default_source()

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"

    def get_workflow_id(self) -> str:
        """The workflow's id."""
        return self.workflow_id

    def get_result(self, *, polling_interval_sec: float = 1.0, timeout_seconds: float | None = None) -> R:
        """Block until the workflow finishes and return its result (or raise its error).

        Inside a workflow this is a checkpointed operation (``DBOS.getResult``): a replay
        returns the recorded result without waiting again. ``polling_interval_sec`` is DBOS's
        and accepted for it: pgfleet wakes from its local run or polls backing off to 0.5 s.
        ``timeout_seconds`` (pgfleet's) raises TimeoutError when it passes.
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
    """The asyncio flavour of :class:`WorkflowHandle`: ``await get_result()`` waits on the
    caller's loop (no thread is held while it waits), reads run in pgfleet's worker threads.
    ``WorkflowHandleAsync(workflow_id)`` finds its process or client as ``WorkflowHandle`` does."""

    def __init__(self, workflow_id: str, *, handle: WorkflowHandle[R] | None = None) -> None:
        self._handle: WorkflowHandle[R] = handle if handle is not None else WorkflowHandle(workflow_id)
        self.workflow_id = workflow_id

    @classmethod
    def of(cls, handle: WorkflowHandle[R]) -> WorkflowHandleAsync[R]:
        """The asyncio view of ``handle``."""
        return cls(handle.workflow_id, handle=handle)

    def __repr__(self) -> str:
        return f"WorkflowHandleAsync({self.workflow_id!r})"

    def get_workflow_id(self) -> str:
        return self.workflow_id

    async def get_result(self, *, polling_interval_sec: float = 1.0) -> R:
        """Wait for the workflow to finish and return its result (or raise its error); inside a
        workflow a checkpointed ``DBOS.getResult``, as :meth:`WorkflowHandle.get_result`."""
        source = self._handle._executor
        waiting = getattr(source, "wait_result_async", None)
        if waiting is None:  # a source without an async wait
            return await in_thread(None, self._handle.get_result, polling_interval_sec=polling_interval_sec, positions=1)
        parent = active_workflow()
        if parent is None or not hasattr(source, "checkpoint"):  # a client records nothing
            value: R = await waiting(self.workflow_id)
            return value
        function_id = parent.next_function_id()  # on the loop, in call order
        executor = cast("Executor", source)
        return await recorded_result_async(executor, parent, function_id, self.workflow_id, lambda: waiting(self.workflow_id))

    async def get_status(self) -> WorkflowStatus:
        """The workflow's current status row (inside a workflow, a recorded ``DBOS.getStatus``)."""
        source = self._handle._executor
        # Only an executor records DBOS.getStatus (one position); a client's read takes none.
        positions = 1 if hasattr(source, "checkpoint") else 0
        return await in_thread(getattr(source, "async_work", None), self._handle.get_status, positions=positions)
