"""pgfleet's runtime: the DBOS Transact programming model in one process.

A DBOS program runs with only its import line changed::

    from runtime import DBOS, SetWorkflowID   # was: from dbos import DBOS, SetWorkflowID
"""

from . import errors as error
from .client import DBOSClient, EnqueueOptions
from .config import DBOSConfig
from .context import (
    DBOSContext,
    DBOSContextEnsure,
    DBOSContextSetAuth,
    PropagateOtelContext,
    SetEnqueueOptions,
    SetWorkflowID,
    SetWorkflowTimeout,
)
from .dbos import DBOS
from .debouncer import Debouncer, DebouncerClient
from .errors import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded,
    DBOSBaseException,
    DBOSConfigError,
    DBOSConflictingRegistrationError,
    DBOSConflictingWorkflowError,
    DBOSDatabaseUnavailableError,
    DBOSDeadLetterQueueError,
    DBOSErrorCode,
    DBOSException,
    DBOSInitializationError,
    DBOSInvalidInputError,
    DBOSMaxRecoveryAttemptsExceededError,
    DBOSMaxStepRetriesExceeded,
    DBOSNonExistentWorkflowError,
    DBOSNotAuthorizedError,
    DBOSNotLaunchedError,
    DBOSPatchNondeterminismError,
    DBOSQueueDeduplicatedError,
    DBOSRecoveryError,
    DBOSSerializationError,
    DBOSUnexpectedStepError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowConflictIDError,
    DBOSWorkflowFencedError,
    DBOSWorkflowFunctionNotFoundError,
    MaxRecoveryAttemptsExceededError,
)
from .handles import WorkflowHandle, WorkflowHandleAsync
from .migrations import run_dbos_database_migrations
from .queues import Queue, QueueRateLimit
from .registry import DBOSConfiguredInstance
from .status import StepInfo, WorkflowStatus, WorkflowStatusString

__all__ = [
    "DBOS",
    "DBOSConfig",
    "DBOSClient",
    "EnqueueOptions",
    "DBOSContext",
    "DBOSContextSetAuth",
    "DBOSContextEnsure",
    "Debouncer",
    "DebouncerClient",
    "PropagateOtelContext",
    "run_dbos_database_migrations",
    "DBOSConfiguredInstance",
    "SetWorkflowID",
    "SetWorkflowTimeout",
    "SetEnqueueOptions",
    "Queue",
    "QueueRateLimit",
    "WorkflowHandle",
    "WorkflowHandleAsync",
    "WorkflowStatus",
    "WorkflowStatusString",
    "StepInfo",
    "error",
    "DBOSAwaitedWorkflowCancelledError",
    "DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded",
    "DBOSBaseException",
    "DBOSConfigError",
    "DBOSConflictingRegistrationError",
    "DBOSConflictingWorkflowError",
    "DBOSDatabaseUnavailableError",
    "DBOSDeadLetterQueueError",
    "DBOSErrorCode",
    "DBOSException",
    "DBOSInitializationError",
    "DBOSInvalidInputError",
    "DBOSMaxRecoveryAttemptsExceededError",
    "DBOSMaxStepRetriesExceeded",
    "DBOSNonExistentWorkflowError",
    "DBOSNotAuthorizedError",
    "DBOSNotLaunchedError",
    "DBOSPatchNondeterminismError",
    "DBOSQueueDeduplicatedError",
    "DBOSRecoveryError",
    "DBOSSerializationError",
    "DBOSUnexpectedStepError",
    "DBOSWorkflowCancelledError",
    "DBOSWorkflowConflictIDError",
    "DBOSWorkflowFencedError",
    "DBOSWorkflowFunctionNotFoundError",
    "MaxRecoveryAttemptsExceededError",
]
