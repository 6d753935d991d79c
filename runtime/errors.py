"""The exceptions users see, with DBOS Transact's names.

Each keeps the arguments it was built from (``__reduce__``) so it pickles and unpickles exactly:
errors raised by steps and workflows are recorded in the system database and raised again on
replay and by ``get_result()`` in another process.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DBOSException",
    "DBOSBaseException",
    "DBOSNotLaunchedError",
    "DBOSConfigError",
    "DBOSSerializationError",
    "DBOSInvalidInputError",
    "DBOSNonExistentWorkflowError",
    "DBOSConflictingWorkflowError",
    "DBOSConflictingRegistrationError",
    "DBOSWorkflowFunctionNotFoundError",
    "DBOSUnexpectedStepError",
    "DBOSMaxStepRetriesExceeded",
    "DBOSMaxRecoveryAttemptsExceededError",
    "DBOSDeadLetterQueueError",
    "DBOSQueueDeduplicatedError",
    "DBOSWorkflowCancelledError",
    "DBOSAwaitedWorkflowCancelledError",
    "DBOSWorkflowFencedError",
    "DBOSDatabaseUnavailableError",
    "DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded",
]


class _DBOSError(BaseException):
    """What every pgfleet error shares: its message, and exact pickling from its arguments."""

    def __init__(self, message: str, *args: Any) -> None:
        self.message = message
        self._init_args = (message, *args)
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self)._from_args, (self._init_args,), self.__dict__)

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> Any:
        instance = cls.__new__(cls)
        _DBOSError.__init__(instance, *args)
        return instance

    def __str__(self) -> str:
        return self.message


class DBOSException(_DBOSError, Exception):
    """Base class of every pgfleet (DBOS-compatible) error."""


class DBOSBaseException(_DBOSError):
    """A control-flow error that user code must not swallow (DBOS defines it the same way): a
    BaseException, so ``except Exception`` around a step does not catch it and the workflow
    stops, instead of running its next step's body after it was cancelled or fenced."""


class DBOSNotLaunchedError(DBOSException):
    """A workflow was started before ``DBOS.launch()`` (or after ``DBOS.destroy()``)."""

    def __init__(self, what: str = "this") -> None:
        super().__init__(
            f"cannot run {what}: DBOS is not launched. Create DBOS(config=...) and call DBOS.launch() first",
            what,
        )


class DBOSConfigError(DBOSException):
    """The configuration is malformed: an unknown key, a wrong type or an impossible value."""


class DBOSSerializationError(DBOSException):
    """A workflow argument, step result or error cannot be pickled (or unpickled)."""


class DBOSInvalidInputError(DBOSException):
    """A workflow's ``validate_input`` rejected its arguments; nothing was recorded."""


class DBOSNonExistentWorkflowError(DBOSException):
    """No workflow has this id."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id!r} does not exist", workflow_id)

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSException:
        return cls(args[1])


class DBOSConflictingWorkflowError(DBOSException):
    """A workflow id is already used by a different workflow function."""

    def __init__(self, workflow_id: str, message: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"conflicting workflow id {workflow_id!r}: {message}", workflow_id, message)

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSException:
        return cls(args[1], args[2])


class DBOSConflictingRegistrationError(DBOSException):
    """Two different functions were registered under one workflow or step name."""


class DBOSWorkflowFunctionNotFoundError(DBOSException):
    """A workflow name in the database has no registered function in this process."""

    def __init__(self, workflow_id: str, name: str) -> None:
        self.workflow_id = workflow_id
        self.name = name
        super().__init__(
            f"workflow {workflow_id!r} runs function {name!r}, which is not registered in this "
            "process (import the module that defines it before DBOS.launch())",
            workflow_id,
            name,
        )

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSException:
        return cls(args[1], args[2])


class DBOSUnexpectedStepError(DBOSException):
    """Replay found a different operation recorded at a step position: the workflow is not
    deterministic."""

    def __init__(self, workflow_id: str, step_id: int, expected_name: str, recorded_name: str) -> None:
        self.workflow_id = workflow_id
        self.step_id = step_id
        self.expected_name = expected_name
        self.recorded_name = recorded_name
        super().__init__(
            f"during execution of workflow {workflow_id!r} step {step_id}, function "
            f"{recorded_name!r} was recorded when {expected_name!r} was expected. "
            "Check that your workflow is deterministic",
            workflow_id,
            step_id,
            expected_name,
            recorded_name,
        )

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSException:
        return cls(*args[1:])


class DBOSMaxStepRetriesExceeded(DBOSException):
    """A step with ``retries_allowed`` failed on every one of its ``max_attempts``."""

    def __init__(self, step_name: str, max_attempts: int, errors: list[Exception] | None = None) -> None:
        self.step_name = step_name
        self.max_retries = max_attempts
        self.errors = list(errors or [])
        last = f": last error: {self.errors[-1]!r}" if self.errors else ""
        super().__init__(
            f"step {step_name!r} has exceeded its maximum of {max_attempts} attempts{last}",
            step_name,
            max_attempts,
            self.errors,
        )

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSException:
        return cls(*args[1:])


class DBOSMaxRecoveryAttemptsExceededError(DBOSException):
    """A workflow was recovered more than ``max_recovery_attempts`` times; it is dead-lettered."""

    def __init__(self, workflow_id: str, max_recovery_attempts: int) -> None:
        self.workflow_id = workflow_id
        self.max_recovery_attempts = max_recovery_attempts
        super().__init__(
            f"workflow {workflow_id!r} exceeded its maximum of {max_recovery_attempts} recovery "
            "attempts and is now MAX_RECOVERY_ATTEMPTS_EXCEEDED",
            workflow_id,
            max_recovery_attempts,
        )

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSException:
        return cls(args[1], args[2])


# DBOS's older name for the same condition.
DBOSDeadLetterQueueError = DBOSMaxRecoveryAttemptsExceededError


class DBOSQueueDeduplicatedError(DBOSException):
    """An enqueue used a deduplication id that a live workflow of the queue holds."""

    def __init__(self, workflow_id: str, queue_name: str, deduplication_id: str) -> None:
        self.workflow_id = workflow_id
        self.queue_name = queue_name
        self.deduplication_id = deduplication_id
        super().__init__(
            f"workflow {workflow_id!r} was deduplicated: queue {queue_name!r} already has a "
            f"live workflow with deduplication id {deduplication_id!r}",
            workflow_id,
            queue_name,
            deduplication_id,
        )

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSException:
        return cls(*args[1:])


class DBOSWorkflowCancelledError(DBOSBaseException):
    """The running workflow was cancelled; it stops at its next step."""


class DBOSAwaitedWorkflowCancelledError(DBOSException):
    """A workflow whose result was awaited was cancelled."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"awaited workflow {workflow_id!r} was cancelled", workflow_id)

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSException:
        return cls(args[1])


class DBOSWorkflowFencedError(DBOSBaseException):
    """This executor no longer owns the workflow (it was taken over, recovered elsewhere or
    finished by someone else). The workflow stops here and writes nothing more."""

    def __init__(self, workflow_id: str, detail: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id!r} stopped: {detail}", workflow_id, detail)

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSWorkflowFencedError:
        return cls(args[1], args[2])


class DBOSDatabaseUnavailableError(DBOSException):
    """The system database cannot be reached (or its URL is malformed)."""


class DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded(DBOSException):
    """A workflow whose result was awaited was dead-lettered (MAX_RECOVERY_ATTEMPTS_EXCEEDED)."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"awaited workflow {workflow_id!r} exceeded its maximum recovery attempts", workflow_id
        )

    @classmethod
    def _from_args(cls, args: tuple[Any, ...]) -> DBOSException:
        return cls(args[1])
