"""The error module as DBOS programs reach it (``from dbos import error``): each class's bases,
constructor, message, error code, status code and text (#10 items 5 and 6)."""

import inspect

from dbos import error
from observe import attempt, report, see

CLASSES = [
    "DBOSException", "DBOSBaseException", "DBOSConflictingWorkflowError", "DBOSRecoveryError",
    "DBOSInitializationError", "DBOSWorkflowFunctionNotFoundError", "DBOSNonExistentWorkflowError",
    "MaxRecoveryAttemptsExceededError", "DBOSNotAuthorizedError", "DBOSMaxStepRetriesExceeded",
    "DBOSConflictingRegistrationError", "DBOSUnexpectedStepError", "DBOSPatchNondeterminismError",
    "DBOSQueueDeduplicatedError", "DBOSAwaitedWorkflowCancelledError",
    "DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded", "DBOSWorkflowCancelledError", "DBOSWorkflowConflictIDError",
]


def made_up_arguments(cls):
    """Arguments of the kinds the constructor takes, named after its parameters."""
    args = []
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.default is not parameter.empty:
            continue
        if parameter.name in ("step_id", "max_retries"):
            args.append(3)
        elif parameter.name == "errors":
            args.append([ValueError("inner")])
        else:
            args.append(f"<{parameter.name}>")
    return args


def described(cls):
    instance = cls(*made_up_arguments(cls))
    return {
        "bases": [base.__name__ for base in cls.__mro__[1:]],
        "str": str(instance),
        "message": instance.message,
        "code": instance.dbos_error_code,
        "status_code": instance.status_code,
        "args": list(instance.args),
    }


def parameters(cls):
    return [(p.name, p.kind.name, repr(p.default) if p.default is not p.empty else None)
            for p in list(inspect.signature(cls.__init__).parameters.values())[1:]]


see("error codes", {member.name: member.value for member in error.DBOSErrorCode})
for name in CLASSES:
    cls = getattr(error, name)
    see(f"{name} parameters", parameters(cls))
    attempt(name, lambda cls=cls: described(cls))
see("with a code", str(error.DBOSException("plain", 7)))
see("with a code, a BaseException", str(error.DBOSBaseException("plain", 7)))
see("MaxRecoveryAttemptsExceededError with its limit", str(error.MaxRecoveryAttemptsExceededError("w", 5)))
see("DBOSMaxStepRetriesExceeded's attributes", [
    (e.step_name, e.max_retries, [str(x) for x in e.errors])
    for e in [error.DBOSMaxStepRetriesExceeded("s", 2, [RuntimeError("a"), RuntimeError("b")])]
])
see("DBOSUnexpectedStepError's inputs", error.DBOSUnexpectedStepError("w", 2, "expected", "recorded").inputs)
see("DBOSNotAuthorizedError's msg", error.DBOSNotAuthorizedError("no").msg)
see("cancelled is not an Exception", isinstance(error.DBOSWorkflowCancelledError("m"), Exception))
report()
