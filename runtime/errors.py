"""The exceptions users see: DBOS Transact 2.30's error module (``dbos.error``), class for class.

Each class has DBOS's base, constructor, ``message``, ``dbos_error_code`` (the value of its
:class:`DBOSErrorCode`, or ``None``), ``status_code`` and ``str()`` ("DBOS Error N: ..." or
"DBOS Error: ..."). pgfleet's own errors (fencing, configuration, serialization, ...) are
subclasses of the DBOS class a program would catch for them.

Every error pickles and unpickles exactly, whatever its constructor takes: errors raised by steps
and workflows are recorded in the system database and raised again on replay and by
``get_result()`` in another process. Unpickling rebuilds the instance without calling its
``__init__`` and restores its attributes, so a user's subclass with its own constructor survives
too (DBOS's own classes do not all: one whose constructor takes two arguments fails to unpickle).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = [
    "DBOSErrorCode",
    "DBOSException",
    "DBOSBaseException",
    "DBOSConflictingWorkflowError",
    "DBOSRecoveryError",
    "DBOSInitializationError",
    "DBOSWorkflowFunctionNotFoundError",
    "DBOSNonExistentWorkflowError",
    "MaxRecoveryAttemptsExceededError",
    "DBOSNotAuthorizedError",
    "DBOSMaxStepRetriesExceeded",
    "DBOSConflictingRegistrationError",
    "DBOSUnexpectedStepError",
    "DBOSPatchNondeterminismError",
    "DBOSQueueDeduplicatedError",
    "DBOSAwaitedWorkflowCancelledError",
    "DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded",
    "DBOSWorkflowCancelledError",
    "DBOSWorkflowConflictIDError",
    # pgfleet's own, and older names
    "DBOSMaxRecoveryAttemptsExceededError",
    "DBOSDeadLetterQueueError",
    "DBOSNotLaunchedError",
    "DBOSConfigError",
    "DBOSSerializationError",
    "DBOSInvalidInputError",
    "DBOSWorkflowFencedError",
    "DBOSDatabaseUnavailableError",
]


class DBOSErrorCode(Enum):
    ConflictingIDError = 1
    RecoveryError = 2
    InitializationError = 3
    WorkflowFunctionNotFound = 4
    NonExistentWorkflowError = 5
    MaxRecoveryAttemptsExceeded = 6
    MaxStepRetriesExceeded = 7
    NotAuthorized = 8
    ConflictingWorkflowError = 9
    WorkflowCancelled = 10
    UnexpectedStep = 11
    QueueDeduplicated = 12
    AwaitedWorkflowCancelled = 13
    AwaitedWorkflowMaxRecoveryAttemptsExceeded = 14
    PatchNondeterminism = 15
    ConflictingRegistrationError = 25


def _rebuild(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """An instance of ``cls`` with these ``args``, its ``__init__`` not run: pickle then restores
    its attributes (``message``, ``dbos_error_code``, and whatever the subclass set)."""
    return cls.__new__(cls, *args)


# DBOSException and DBOSBaseException are apart in DBOS (one an Exception, the other not), so
# they share these as functions rather than through a base class of their own.


def _init(self: Any, message: str, dbos_error_code: int | None = None) -> None:
    self.message = message
    self.dbos_error_code = dbos_error_code
    self.status_code = None
    BaseException.__init__(self, message)


def _str(self: Any) -> str:
    if self.dbos_error_code:
        return f"DBOS Error {self.dbos_error_code}: {self.message}"
    return f"DBOS Error: {self.message}"


def _reduce(self: BaseException) -> tuple[Any, ...]:
    return (_rebuild, (type(self), self.args), self.__dict__)


def _from_args(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """How errors recorded by earlier pgfleet versions unpickle (their message first)."""
    return cls.__new__(cls, *args[:1])


class DBOSException(Exception):
    """Base class of DBOS exceptions.

    Attributes:
        message(str): The error message string
        dbos_error_code(int): The error code, a value of the ``DBOSErrorCode`` enum
    """

    message: str
    # Class-level defaults, for errors recorded by pgfleet versions that did not set them.
    dbos_error_code: int | None = None
    status_code: int | None = None
    __init__ = _init
    __str__ = _str
    __reduce__ = _reduce
    _from_args = classmethod(_from_args)


class DBOSBaseException(BaseException):
    """A DBOS exception that user code must not catch: a BaseException, so ``except Exception``
    around a step does not swallow it and the workflow stops (cancelled, or fenced)."""

    message: str
    dbos_error_code: int | None = None
    status_code: int | None = None
    __init__ = _init
    __str__ = _str
    __reduce__ = _reduce
    _from_args = classmethod(_from_args)


def _code(code: DBOSErrorCode) -> int:
    return code.value


# -- DBOS's exceptions ---------------------------------------------------------------------------


class DBOSConflictingWorkflowError(DBOSException):
    """Different workflows were started with the same workflow ID."""

    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        super().__init__(
            f"Conflicting workflow invocation with the same ID ({workflow_id}): {message}",
            dbos_error_code=_code(DBOSErrorCode.ConflictingWorkflowError),
        )


class DBOSRecoveryError(DBOSException):
    """Recovering a workflow failed."""

    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        super().__init__(
            f"Recovery error for workflow ID {workflow_id}: {message}",
            dbos_error_code=_code(DBOSErrorCode.RecoveryError),
        )


class DBOSInitializationError(DBOSException):
    """DBOS could not be initialized."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Error initializing DBOS Transact: {message}", _code(DBOSErrorCode.InitializationError))


class DBOSWorkflowFunctionNotFoundError(DBOSException):
    """The database names a workflow function that is not registered in this program."""

    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        super().__init__(
            f"Could not execute workflow {workflow_id}: {message}",
            dbos_error_code=_code(DBOSErrorCode.WorkflowFunctionNotFound),
        )


class DBOSNonExistentWorkflowError(DBOSException):
    """No workflow has this ID; ``destination`` says which one was looked for ("target" for
    retrieve and status, "`send` destination" for send)."""

    def __init__(self, destination: str, destination_id: str) -> None:
        super().__init__(
            f"Non-existent {destination} workflow ID: {destination_id}",
            dbos_error_code=_code(DBOSErrorCode.NonExistentWorkflowError),
        )


class MaxRecoveryAttemptsExceededError(DBOSException):
    """A workflow was started or recovered more than its ``max_recovery_attempts``."""

    def __init__(self, wf_id: str, max_retries: int | None = None) -> None:
        limit = "its maximum" + (f" of {max_retries}" if max_retries is not None else " number of")
        super().__init__(
            f"Workflow {wf_id} has exceeded {limit} execution or recovery attempts. Further attempts "
            "to execute or recover it will fail. See documentation for details: "
            "https://docs.dbos.dev/python/reference/decorators",
            dbos_error_code=_code(DBOSErrorCode.MaxRecoveryAttemptsExceeded),
        )


class DBOSNotAuthorizedError(DBOSException):
    """Role-based security refused the call (HTTP status 403)."""

    def __init__(self, msg: str) -> None:
        self.msg = msg
        super().__init__(msg, dbos_error_code=_code(DBOSErrorCode.NotAuthorized))
        self.status_code = 403


class DBOSMaxStepRetriesExceeded(DBOSException):
    """A step was retried the maximum number of times without success; ``errors`` are the
    errors of its attempts, in order."""

    def __init__(self, step_name: str, max_retries: int, errors: list[Exception]) -> None:
        self.step_name = step_name
        self.max_retries = max_retries
        self.errors = errors
        super().__init__(
            f"Step {step_name} has exceeded its maximum of {max_retries} retries",
            dbos_error_code=_code(DBOSErrorCode.MaxStepRetriesExceeded),
        )


class DBOSConflictingRegistrationError(DBOSException):
    """One name was registered with conflicting function types (a workflow and a step)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Operation (Name: {name}) is already registered with a conflicting function type",
            dbos_error_code=_code(DBOSErrorCode.ConflictingRegistrationError),
        )


class DBOSUnexpectedStepError(DBOSException):
    """Replay found another operation recorded at a step position: the workflow is not
    deterministic."""

    def __init__(self, workflow_id: str, step_id: int, expected_name: str, recorded_name: str) -> None:
        self.inputs = (workflow_id, step_id, expected_name, recorded_name)
        super().__init__(
            f"During execution of workflow {workflow_id} step {step_id}, function {recorded_name} was "
            f"recorded when {expected_name} was expected. Check that your workflow is deterministic.",
            dbos_error_code=_code(DBOSErrorCode.UnexpectedStep),
        )


class DBOSPatchNondeterminismError(DBOSException):
    """A patch cannot be applied deterministically to a workflow's recorded history."""

    def __init__(self, workflow_id: str, patch_name: str, details: str) -> None:
        self.inputs = (workflow_id, patch_name, details)
        super().__init__(
            f"Cannot deterministically apply patch {patch_name} in workflow {workflow_id}: {details}. "
            "Check that your workflow is deterministic.",
            dbos_error_code=_code(DBOSErrorCode.PatchNondeterminism),
        )


class DBOSQueueDeduplicatedError(DBOSException):
    """An enqueue used a deduplication ID that a live workflow of the queue holds."""

    def __init__(self, workflow_id: str, queue_name: str, deduplication_id: str) -> None:
        self.workflow_id = workflow_id
        self.queue_name = queue_name
        self.deduplication_id = deduplication_id
        super().__init__(
            f"Workflow {workflow_id} was deduplicated due to an existing workflow in queue {queue_name} "
            f"with deduplication ID {deduplication_id}.",
            dbos_error_code=_code(DBOSErrorCode.QueueDeduplicated),
        )


class DBOSAwaitedWorkflowCancelledError(DBOSException):
    """A workflow whose result was awaited was cancelled."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Awaited workflow {workflow_id} was cancelled",
            dbos_error_code=_code(DBOSErrorCode.AwaitedWorkflowCancelled),
        )


class DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded(DBOSException):
    """A workflow whose result was awaited exceeded its maximum recovery attempts."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"Awaited workflow {workflow_id} exceeded its maximum recovery attempts",
            dbos_error_code=_code(DBOSErrorCode.AwaitedWorkflowMaxRecoveryAttemptsExceeded),
        )


class DBOSWorkflowCancelledError(DBOSBaseException):
    """The running workflow was cancelled; it stops at its next step."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, dbos_error_code=_code(DBOSErrorCode.WorkflowCancelled))


class DBOSWorkflowConflictIDError(DBOSBaseException):
    """A workflow record with this ID exists already."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"Conflicting workflow ID {workflow_id}", dbos_error_code=_code(DBOSErrorCode.ConflictingIDError))


# pgfleet's earlier name, and DBOS's older one, for the same condition.
DBOSMaxRecoveryAttemptsExceededError = MaxRecoveryAttemptsExceededError
DBOSDeadLetterQueueError = MaxRecoveryAttemptsExceededError


# -- pgfleet's own -------------------------------------------------------------------------------


class DBOSNotLaunchedError(DBOSException):
    """A workflow was started before ``DBOS.launch()`` (or after ``DBOS.destroy()``)."""

    def __init__(self, what: str = "this") -> None:
        super().__init__(
            f"cannot run {what}: DBOS is not launched. Create DBOS(config=...) and call DBOS.launch() first"
        )


class DBOSConfigError(DBOSInitializationError):
    """The configuration is malformed: an unknown key, a wrong type or an impossible value."""


class DBOSSerializationError(DBOSException):
    """A workflow argument, step result or error cannot be pickled (or unpickled)."""


class DBOSInvalidInputError(DBOSException):
    """A workflow's ``validate_input`` rejected its arguments; nothing was recorded."""


class DBOSWorkflowFencedError(DBOSBaseException):
    """This executor no longer owns the workflow (it was taken over, recovered elsewhere or
    finished by someone else). The workflow stops here and writes nothing more."""

    def __init__(self, workflow_id: str, detail: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id!r} stopped: {detail}")


class DBOSDatabaseUnavailableError(DBOSException):
    """The system database cannot be reached (or its URL is malformed)."""
