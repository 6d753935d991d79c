"""Errors raised by the system database layer.

They describe what happened to the data, in database terms; ``runtime`` translates them into
the DBOS-compatible exceptions users see.
"""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg_pool

__all__ = [
    "SystemDatabaseError",
    "DatabaseUnavailableError",
    "InvalidDatabaseUrlError",
    "SchemaTooNewError",
    "OwnershipLostError",
    "DuplicateCheckpointError",
    "DeduplicatedError",
    "NoSuchWorkflowError",
    "SerializationConflict",
    "UniqueKeyConflict",
    "DeadlockConflict",
    "PoolClosedError",
    "EmbeddedPostgresError",
]

# Postgres errors the layers above handle by name, re-exported so that they need not import
# the driver: a transaction to retry, and a second write of a unique key.
SerializationConflict = psycopg.errors.SerializationFailure
UniqueKeyConflict = psycopg.errors.UniqueViolation
# Two transactions that each wait for the other; Postgres aborts one, which may simply retry.
DeadlockConflict = psycopg.errors.DeadlockDetected
# A statement issued after the pool was closed (the owner shut it down): not an outage.
PoolClosedError = psycopg_pool.PoolClosed


def _rebuild(cls: type[SystemDatabaseError], args: tuple[Any, ...]) -> SystemDatabaseError:
    error = cls.__new__(cls)
    error.args = args
    return error


class SystemDatabaseError(Exception):
    """Base class for system database errors.

    Errors are pickled into the database (a workflow that fails with one records it), and a
    subclass whose ``__init__`` takes several arguments cannot be rebuilt by pickle's default of
    calling ``cls(*self.args)``: rebuild without ``__init__``, from the message and attributes.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args), self.__dict__)


class InvalidDatabaseUrlError(SystemDatabaseError):
    """The configured database URL cannot be parsed or names no database."""


class DatabaseUnavailableError(SystemDatabaseError):
    """The system database could not be reached within the retry budget."""


class SchemaTooNewError(SystemDatabaseError):
    """The database was migrated by a newer pgfleet than this one."""


class OwnershipLostError(SystemDatabaseError):
    """A fenced write matched no row: this executor no longer owns the workflow with this epoch.

    ``status`` and ``owner`` describe the row as it is now (``None`` when it no longer exists),
    so the caller can say whether the workflow was cancelled, finished, or taken over.
    """

    def __init__(
        self,
        workflow_id: str,
        executor_id: str,
        owner_epoch: int,
        status: str | None,
        owner: str | None,
        current_epoch: int | None,
    ) -> None:
        self.workflow_id = workflow_id
        self.executor_id = executor_id
        self.owner_epoch = owner_epoch
        self.status = status
        self.owner = owner
        self.current_epoch = current_epoch
        super().__init__(
            f"workflow {workflow_id!r} is no longer owned by executor {executor_id!r} "
            f"with epoch {owner_epoch} (now: status={status}, owner={owner!r}, epoch={current_epoch}); "
            "nothing more is written for it here"
        )


class DuplicateCheckpointError(SystemDatabaseError):
    """A step position of a workflow was already recorded by somebody else."""

    def __init__(self, workflow_id: str, function_id: int, recorded_name: str) -> None:
        self.workflow_id = workflow_id
        self.function_id = function_id
        self.recorded_name = recorded_name
        super().__init__(
            f"step {function_id} of workflow {workflow_id!r} is already recorded "
            f"(as {recorded_name!r}); it is never recorded twice"
        )


class DeduplicatedError(SystemDatabaseError):
    """An enqueue used a deduplication id that a live workflow of the same queue holds."""

    def __init__(self, queue_name: str, deduplication_id: str) -> None:
        self.queue_name = queue_name
        self.deduplication_id = deduplication_id
        super().__init__(f"queue {queue_name!r} already has a live workflow with deduplication id {deduplication_id!r}")


class NoSuchWorkflowError(SystemDatabaseError):
    """A statement named a workflow id that does not exist (for example a message's destination)."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id!r} does not exist")


class EmbeddedPostgresError(RuntimeError):
    """The embedded Postgres (``sysdb.embedded``) could not be set up: initdb or a server
    start/stop failed (the message includes the end of server.log), or the host lacks what it needs."""
