"""pgfleet's runtime: the DBOS Transact programming model in one process.

A DBOS program runs with only its import line changed::

    from runtime import DBOS, SetWorkflowID   # was: from dbos import DBOS, SetWorkflowID
"""

from typing import TYPE_CHECKING, Any

from . import errors as error
from .api_messaging import StepOptions
from .attributes import SetWorkflowAttributes
from .client import DBOSClient, EnqueueOptions
from .config import DBOSConfig
from .context import DBOSContext
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
from .messages import SendMessage
from .migrations import run_dbos_database_migrations
from .option_blocks import (
    DBOSContextEnsure,
    DBOSContextSetAuth,
    DuplicationPolicy,
    PropagateOtelContext,
    SetEnqueueOptions,
    SetWorkflowID,
    SetWorkflowTimeout,
)
from .queue_admin import VersionInfo
from .queues import Queue, QueueRateLimit
from .registry import DBOSConfiguredInstance
from .schedules import ClientScheduleInput, ScheduleInput, WorkflowSchedule
from .serializers import DBOSPortableJSONSerializer, PortableWorkflowError, Serializer, WorkflowSerializationFormat
from .status import StepInfo, WorkflowStatus, WorkflowStatusString
from .validation import make_pydantic_args_validator, pydantic_args_validator

if TYPE_CHECKING:
    from .datasource import SQLAlchemyDatasource
    from .datasource_async import AsyncSQLAlchemyDatasource

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
    "SetWorkflowAttributes",
    "SetEnqueueOptions",
    "DuplicationPolicy",
    "VersionInfo",
    "Queue",
    "QueueRateLimit",
    "WorkflowHandle",
    "WorkflowHandleAsync",
    "WorkflowStatus",
    "WorkflowStatusString",
    "StepInfo",
    "StepOptions",
    "SendMessage",
    "SQLAlchemyDatasource",
    "AsyncSQLAlchemyDatasource",
    "Serializer",
    "DBOSPortableJSONSerializer",
    "WorkflowSerializationFormat",
    "PortableWorkflowError",
    "pydantic_args_validator",
    "make_pydantic_args_validator",
    "ScheduleInput",
    "ClientScheduleInput",
    "WorkflowSchedule",
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


def __getattr__(name: str) -> Any:
    # SQLAlchemy (for the application database only) is imported when a program first asks
    # for a datasource, not by every process that imports runtime.
    if name == "SQLAlchemyDatasource":
        from .datasource import SQLAlchemyDatasource

        return SQLAlchemyDatasource
    if name == "AsyncSQLAlchemyDatasource":
        from .datasource_async import AsyncSQLAlchemyDatasource

        return AsyncSQLAlchemyDatasource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
