"""Errors as DBOS 2.30 raises them: its error module (``from runtime import error``), its texts
at the raise sites, and what it does not treat as an error (#10 items 5 and 6)."""

from __future__ import annotations

import logging
import pickle

import pytest

import runtime
from runtime import (
    DBOS,
    DBOSConfiguredInstance,
    DBOSConflictingWorkflowError,
    DBOSException,
    DBOSMaxStepRetriesExceeded,
    DBOSNonExistentWorkflowError,
    DBOSQueueDeduplicatedError,
    Queue,
    SetEnqueueOptions,
    SetWorkflowID,
    error,
)
from runtime.registry import registry
from runtime.serialization import deserialize_exception, serialize_exception

DBOS_ERROR_MODULE = [
    "DBOSAwaitedWorkflowCancelledError", "DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded", "DBOSBaseException",
    "DBOSConflictingRegistrationError", "DBOSConflictingWorkflowError", "DBOSErrorCode", "DBOSException",
    "DBOSInitializationError", "DBOSMaxStepRetriesExceeded", "DBOSNonExistentWorkflowError", "DBOSNotAuthorizedError",
    "DBOSPatchNondeterminismError", "DBOSQueueDeduplicatedError", "DBOSRecoveryError", "DBOSUnexpectedStepError",
    "DBOSWorkflowCancelledError", "DBOSWorkflowConflictIDError", "DBOSWorkflowFunctionNotFoundError",
    "MaxRecoveryAttemptsExceededError",
]


class InsufficientFunds(DBOSException):
    """A program's own error, with a constructor of its own (as DBOS programs write them)."""

    def __init__(self, account: str, missing: int) -> None:
        self.account = account
        self.missing = missing
        super().__init__(f"account {account} is short by {missing}")


def test_the_error_module_is_runtime_error_with_every_dbos_class():
    assert "error" in runtime.__all__ and runtime.error is error
    assert [name for name in DBOS_ERROR_MODULE if not hasattr(error, name)] == []
    assert error.DBOSException is DBOSException


@pytest.mark.parametrize(("made", "text", "code"), [
    (lambda: error.DBOSException("plain"), "DBOS Error: plain", None),
    (lambda: error.DBOSNonExistentWorkflowError("target", "w"), "DBOS Error 5: Non-existent target workflow ID: w", 5),
    (lambda: error.DBOSConflictingWorkflowError("w", "why"),
     "DBOS Error 9: Conflicting workflow invocation with the same ID (w): why", 9),
    (lambda: error.DBOSQueueDeduplicatedError("w", "q", "d"),
     "DBOS Error 12: Workflow w was deduplicated due to an existing workflow in queue q with deduplication ID d.", 12),
    (lambda: error.DBOSMaxStepRetriesExceeded("s", 2, []), "DBOS Error 7: Step s has exceeded its maximum of 2 retries", 7),
    (lambda: error.DBOSWorkflowCancelledError("stop"), "DBOS Error 10: stop", 10),
    (lambda: error.DBOSWorkflowConflictIDError("w"), "DBOS Error 1: Conflicting workflow ID w", 1),
    (lambda: error.DBOSInitializationError("bad"), "DBOS Error 3: Error initializing DBOS Transact: bad", 3),
    (lambda: error.DBOSNotAuthorizedError("no"), "DBOS Error 8: no", 8),
])
def test_each_error_has_dbos_text_and_code(made, text, code):
    instance = made()
    assert (str(instance), instance.dbos_error_code) == (text, code)
    assert str(pickle.loads(pickle.dumps(instance))) == text


def test_pgfleet_errors_sit_under_the_dbos_class_a_program_catches():
    assert issubclass(error.DBOSWorkflowCancelledError, error.DBOSBaseException)
    assert not issubclass(error.DBOSBaseException, Exception)
    assert issubclass(runtime.DBOSWorkflowFencedError, error.DBOSBaseException)
    assert issubclass(runtime.DBOSConfigError, error.DBOSInitializationError)
    assert runtime.DBOSMaxRecoveryAttemptsExceededError is error.MaxRecoveryAttemptsExceededError
    assert error.DBOSNotAuthorizedError("no").status_code == 403


def test_a_programs_own_subclass_pickles_exactly():
    original = InsufficientFunds("acct-1", 30)
    for again in (pickle.loads(pickle.dumps(original)), deserialize_exception(serialize_exception(original))):
        assert type(again) is InsufficientFunds and str(again) == "DBOS Error: account acct-1 is short by 30"
        assert (again.account, again.missing, again.args) == ("acct-1", 30, original.args)


class _RecordedByEarlierPgfleet:
    """Pickles as pgfleet 0.x recorded a DBOSNonExistentWorkflowError."""

    def __reduce__(self):
        state = {"message": "workflow 'w' does not exist", "_init_args": ("workflow 'w' does not exist", "w"), "workflow_id": "w"}
        return (DBOSNonExistentWorkflowError._from_args, (state["_init_args"],), state)


class KeywordOnly(Exception):
    """Pickles, but does not unpickle: pickle calls ``KeywordOnly(*args)`` again."""

    def __init__(self, *, reason: str) -> None:
        super().__init__(f"because {reason}")


def test_an_error_pickle_cannot_read_back_is_recorded_as_an_equivalent_one(dbos, db):
    """Its pickle was stored as it was: every later read (a replay, a handle, the step listing)
    then failed with a DBOSSerializationError that hid the workflow's own error (found by
    tests/differential/programs/raised_errors.py)."""

    @DBOS.step()
    def refuses() -> None:
        raise KeywordOnly(reason="no stock")

    @DBOS.workflow()
    def orders() -> None:
        refuses()

    with SetWorkflowID("keyword-error"), pytest.raises(KeywordOnly, match="because no stock"):
        orders()  # the first execution raises the error itself
    expected = r"^KeywordOnly: because no stock$"
    with SetWorkflowID("keyword-error"), pytest.raises(Exception, match=expected):
        orders()  # the replay: the recorded one
    with pytest.raises(Exception, match=expected):
        DBOS.retrieve_workflow("keyword-error").get_result()
    (step,) = DBOS.list_workflow_steps("keyword-error")
    assert type(step["error"]) is Exception and str(step["error"]) == "KeywordOnly: because no stock"
    assert str(deserialize_exception(serialize_exception(KeywordOnly(reason="x")))) == "KeywordOnly: because x"


def test_an_error_recorded_by_an_earlier_pgfleet_still_reads_back():
    again = pickle.loads(pickle.dumps(_RecordedByEarlierPgfleet()))
    assert type(again) is DBOSNonExistentWorkflowError
    assert str(again) == "DBOS Error: workflow 'w' does not exist" and again.workflow_id == "w"


# -- the raise sites ----------------------------------------------------------------------------


def test_raise_sites_use_dbos_texts(dbos, db):
    queue = Queue("errors-texts")

    @DBOS.workflow()
    def first(x):
        return x

    @DBOS.workflow()
    def second(x):
        return x

    @DBOS.step(retries_allowed=True, max_attempts=2, interval_seconds=0.01)
    def always_fails():
        raise RuntimeError("step failed")

    @DBOS.workflow()
    def runs_failing_step():
        always_fails()

    with pytest.raises(DBOSNonExistentWorkflowError, match="^DBOS Error 5: Non-existent target workflow ID: nope$"):
        DBOS.retrieve_workflow("nope")
    with SetWorkflowID("reused-id"):
        first(1)
    with SetWorkflowID("reused-id"), pytest.raises(DBOSConflictingWorkflowError) as conflict:
        second(1)
    assert str(conflict.value) == (
        "DBOS Error 9: Conflicting workflow invocation with the same ID (reused-id): Workflow already exists with a "
        "different function name: test_raise_sites_use_dbos_texts.<locals>.first, but the provided function name is: "
        "test_raise_sites_use_dbos_texts.<locals>.second"
    )
    with SetWorkflowID("holder"), SetEnqueueOptions(deduplication_id="dedup-1"):
        queue.enqueue(first, 2)
    with SetWorkflowID("deduplicated"), SetEnqueueOptions(deduplication_id="dedup-1"):
        with pytest.raises(DBOSQueueDeduplicatedError, match=(
            r"^DBOS Error 12: Workflow deduplicated was deduplicated due to an existing workflow in queue "
            r"errors-texts with deduplication ID dedup-1\.$"
        )):
            queue.enqueue(first, 3)
    with pytest.raises(DBOSMaxStepRetriesExceeded) as exhausted:
        runs_failing_step()
    assert str(exhausted.value) == (
        "DBOS Error 7: Step test_raise_sites_use_dbos_texts.<locals>.always_fails has exceeded its maximum of 2 retries"
    )
    assert [str(e) for e in exhausted.value.errors] == ["step failed", "step failed"]


def test_a_method_of_an_undecorated_class_raises_and_records_nothing(dbos, db):
    class Plain:
        @DBOS.workflow()
        def method(self):
            return 1

    before = db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()[0]
    with pytest.raises(Exception, match="^Function target appears to be a class instance, but is not properly registered$"):
        Plain().method()
    assert db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()[0] == before


def test_two_functions_under_one_name_warn_and_the_last_one_runs(dbos, caplog):
    @DBOS.workflow(name="shared-name")
    def one():
        return 1

    with caplog.at_level(logging.WARNING, logger="dbos"):
        @DBOS.workflow(name="shared-name")
        def two():
            return 2

    assert "Duplicate registration of function 'shared-name'" in caplog.text
    assert (one(), two()) == (1, 2)  # as in DBOS: each call runs its own function ...
    assert registry.workflow("shared-name").func.__name__ == "two"  # ... and recovery the last one registered


def test_a_configured_instance_without_a_name_runs_and_is_found_again(dbos, db):
    @DBOS.dbos_class()
    class Nameless(DBOSConfiguredInstance):
        def __init__(self) -> None:
            super().__init__(None)  # type: ignore[arg-type]  # DBOS accepts an instance without a name
            self.calls = 0

        @DBOS.workflow()
        def count(self) -> int:
            self.calls += 1
            return self.calls

    instance = Nameless()
    with SetWorkflowID("nameless"):
        assert instance.count() == 1
    assert db.execute("SELECT config_name FROM dbos.workflow_status WHERE workflow_uuid = 'nameless'").fetchone() == (None,)
    # A fork runs the method again on the instance found from the row: the same object.
    assert DBOS.fork_workflow("nameless", 1).get_result(timeout_seconds=30) == 2
