"""Serialization formats, a configured serializer, and DBOS's ``validate_args`` (#10 item 5)."""

from __future__ import annotations

import datetime
import decimal
import inspect
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from runtime import (
    DBOS,
    DBOSClient,
    DBOSConfigError,
    DBOSPortableJSONSerializer,
    DBOSSerializationError,
    EnqueueOptions,
    PortableWorkflowError,
    Queue,
    Serializer,
    SetWorkflowID,
    WorkflowSerializationFormat,
    make_pydantic_args_validator,
    pydantic_args_validator,
)
from runtime.serialization import (
    PORTABLE_JSON,
    deserialize,
    deserialize_args,
    deserialize_exception,
    serialize,
    serialize_args,
    serialize_exception,
)

PORTABLE = WorkflowSerializationFormat.PORTABLE


def _row(db: psycopg.Connection, query: str, *params: Any) -> Any:
    return db.execute(query, params).fetchone()


# -- the formats, without a database ------------------------------------------------------------


def test_portable_json_is_dbos_text_and_reads_back_as_json():
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    text = serialize({"at": when, "n": decimal.Decimal("1.50"), "t": (1, "é"), "d": datetime.date(2024, 1, 2)}, fmt=PORTABLE_JSON)
    assert text == '{"at":"2024-01-02T01:04:05.678Z","n":"1.50","t":[1,"é"],"d":"2024-01-02"}'
    assert deserialize(text, PORTABLE_JSON) == {"at": "2024-01-02T01:04:05.678Z", "n": "1.50", "t": [1, "é"], "d": "2024-01-02"}
    args_text = serialize_args((1,), {"k": "v"}, workflow_name="w", fmt=PORTABLE_JSON)
    assert args_text == '{"namedArgs":{"k":"v"},"positionalArgs":[1]}'
    assert deserialize_args(args_text, PORTABLE_JSON) == ((1,), {"k": "v"})
    assert deserialize_args('{"positionalArgs":null}', PORTABLE_JSON) == ((), {})  # as other languages may write it


def test_values_that_are_not_portable_name_the_problem():
    with pytest.raises(TypeError, match="Object of type object is not portable JSON serializable"):
        DBOSPortableJSONSerializer().serialize(object())
    with pytest.raises(TypeError, match="map with non-string keys"):
        DBOSPortableJSONSerializer().serialize({1: "a"})
    with pytest.raises(DBOSSerializationError, match="argument 1 of workflow 'w'.*portable"):
        serialize_args((1, object()), {}, workflow_name="w", fmt=PORTABLE_JSON)


def test_portable_errors_carry_name_message_code_and_data():
    class Refused(Exception):
        status_code = 503
        details = {"retry_at": datetime.date(2024, 1, 2), "why": object()}

    text = serialize_exception(Refused("busy"), PORTABLE_JSON)
    assert json.loads(text) == {"name": "Refused", "message": "busy", "code": 503, "data": str(Refused.details)}
    error = deserialize_exception(text, PORTABLE_JSON)
    assert isinstance(error, PortableWorkflowError)
    assert [error.name, error.message, error.code, str(error)] == ["Refused", "busy", 503, "busy"]
    assert PortableWorkflowError("m", "N", None, [1]).to_error_data() == {"name": "N", "message": "m", "data": [1]}
    plain = json.loads(serialize_exception(ValueError("bad"), PORTABLE_JSON))
    assert plain == {"name": "ValueError", "message": "bad", "code": None}


def test_a_row_in_an_unknown_format_says_which_serializer_it_needs():
    with pytest.raises(DBOSSerializationError, match="Serialization my_format is not available"):
        deserialize('"x"', "my_format")


def test_bad_serialization_type_is_refused_at_decoration(dbos):
    with pytest.raises(DBOSSerializationError, match="serialization_type must be a WorkflowSerializationFormat"):
        DBOS.workflow(serialization_type="json")


def test_workflow_decorator_has_dbos_parameters():
    params = inspect.signature(DBOS.workflow).parameters
    assert list(params)[:4] == ["name", "max_recovery_attempts", "serialization_type", "validate_args"]
    assert params["max_recovery_attempts"].default == 100
    assert WorkflowSerializationFormat.DEFAULT.value == "None"


# -- portable workflows on a database -----------------------------------------------------------


def test_called_portable_workflow_writes_every_value_in_its_format(dbos, db):
    """Called directly (not started), its events and stream values default to the workflow's
    format too (DBOS pickles them in that case: see the README)."""

    @DBOS.workflow(serialization_type=PORTABLE)
    def called(x):
        DBOS.set_event("e", {"x": x})
        DBOS.set_event("pickled", {1}, serialization_type=WorkflowSerializationFormat.NATIVE)
        DBOS.write_stream("s", [x])
        return x

    with SetWorkflowID("called-1"):
        assert called(3) == 3
    assert _row(db, "SELECT serialization, inputs, output FROM dbos.workflow_status WHERE workflow_uuid = 'called-1'") == (
        "portable_json", '{"namedArgs":{},"positionalArgs":[3]}', "3"
    )
    events = db.execute("SELECT key, serialization, value FROM dbos.workflow_events WHERE workflow_uuid = 'called-1' ORDER BY key")
    rows = events.fetchall()
    assert rows[0] == ("e", "portable_json", '{"x":3}') and rows[1][:2] == ("pickled", "py_pickle")
    assert _row(db, "SELECT serialization, value FROM dbos.streams WHERE workflow_uuid = 'called-1'") == ("portable_json", "[3]")
    assert DBOS.get_event("called-1", "pickled") == {1}


def test_queued_portable_workflow_gets_datetimes_back_from_its_hints(dbos):
    queue = Queue("portable-hints")

    @DBOS.workflow(serialization_type=PORTABLE)
    def hinted(when: datetime.datetime, day: datetime.date, raw):
        return [type(when).__name__, when.isoformat(), type(day).__name__, raw]

    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    handle = queue.enqueue(hinted, when, day=datetime.date(2024, 5, 6), raw=when)
    assert handle.get_result() == ["datetime", "2024-01-02T03:04:05+00:00", "date", "2024-01-02T03:04:05.000Z"]


def test_client_enqueues_in_the_format_it_is_asked_for(dbos, db, sys_url):
    Queue("client-portable")

    @DBOS.workflow(name="client_portable")
    def client_portable(when: datetime.datetime):
        return when.year

    client = DBOSClient(system_database_url=sys_url)
    try:
        options: EnqueueOptions = {"workflow_name": "client_portable", "queue_name": "client-portable", "serialization_type": PORTABLE}
        handle = client.enqueue(options, datetime.datetime(2031, 1, 1))
        assert handle.get_result(timeout_seconds=30) == 2031
    finally:
        client.destroy()
    assert _row(db, "SELECT serialization, inputs, output FROM dbos.workflow_status WHERE workflow_uuid = %s", handle.workflow_id) == (
        "portable_json", '{"namedArgs":{},"positionalArgs":["2031-01-01T00:00:00.000Z"]}', "2031"
    )


# -- validate_args --------------------------------------------------------------------------------


def test_validate_args_shapes_the_arguments_read_back_from_the_row(dbos, db):
    queue = Queue("validated")

    def upper(args, kwargs):
        if args and args[0] == "reject":
            raise ValueError("rejected by the validator")
        return tuple(a.upper() for a in args), kwargs

    @DBOS.workflow(validate_args=upper)
    def shout(word):
        return word

    assert shout("direct") == "direct"  # as in DBOS: only a run from the row validates
    assert queue.enqueue(shout, "queued").get_result() == "QUEUED"
    handle = queue.enqueue(shout, "reject")
    with pytest.raises(ValueError, match="rejected by the validator"):
        handle.get_result()
    assert handle.get_status().status == "ERROR"


def test_pydantic_args_validator_coerces_and_rejects(dbos):
    pytest.importorskip("pydantic")
    queue = Queue("pydantic-validated")

    @DBOS.workflow(serialization_type=PORTABLE, validate_args=pydantic_args_validator)
    def typed(count: int, when: datetime.datetime, label: str = "x"):
        return [count + 1, when.year, label]

    assert queue.enqueue(typed, "41", "2024-01-02T03:04:05Z").get_result() == [42, 2024, "x"]
    handle = queue.enqueue(typed, "many", "2024-01-02T03:04:05Z")
    with pytest.raises(PortableWorkflowError, match="Argument validation failed for workflow") as raised:
        handle.get_result()
    assert raised.value.name == "ValueError" and "Argument 'count' (position 0)" in raised.value.message
    with pytest.raises(NotImplementedError, match="should not be called directly"):
        pydantic_args_validator((), {})
    validate = make_pydantic_args_validator(typed.__wrapped__)
    with pytest.raises(ValueError, match="Missing required argument: 'when'"):
        validate((1,), {})


# -- a configured serializer ----------------------------------------------------------------------


class Tagged(Serializer):
    """JSON behind a prefix: a format no other serializer reads."""

    def serialize(self, data: Any) -> str:
        return "tagged:" + json.dumps(data)

    def deserialize(self, serialized_data: str) -> Any:
        assert serialized_data.startswith("tagged:")
        return json.loads(serialized_data[len("tagged:"):])

    def name(self) -> str:
        return "tagged_json"


@pytest.fixture
def tagged_dbos(sys_url: str) -> Iterator[type]:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor", "serializer": Tagged()})
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


def test_configured_serializer_writes_and_reads_every_value(tagged_dbos, db):
    @DBOS.step()
    def step(x):
        return [x, x]

    @DBOS.workflow()
    def uses_all(x):
        DBOS.set_event("e", {"x": x})
        DBOS.write_stream("s", x)
        DBOS.close_stream("s")
        DBOS.send("tagged-1", "to myself", "t")
        return {"steps": step(x), "got": DBOS.recv("t", timeout_seconds=10)}

    with SetWorkflowID("tagged-1"):
        assert uses_all(2) == {"steps": [2, 2], "got": "to myself"}
    assert _row(db, "SELECT serialization, inputs, output FROM dbos.workflow_status WHERE workflow_uuid = 'tagged-1'") == (
        "tagged_json", 'tagged:{"args": [2], "kwargs": {}}', 'tagged:{"steps": [2, 2], "got": "to myself"}'
    )
    formats = {tuple(r) for r in db.execute("SELECT function_name, serialization FROM dbos.operation_outputs WHERE output IS NOT NULL")}
    # recv's timeout is a durable sleep, whose wake-up time DBOS always records as portable JSON
    assert formats == {("test_configured_serializer_writes_and_reads_every_value.<locals>.step", "tagged_json"),
                       ("DBOS.recv", "tagged_json"), ("DBOS.sleep", "portable_json")}
    assert _row(db, "SELECT serialization FROM dbos.workflow_events WHERE workflow_uuid = 'tagged-1'") == ("tagged_json",)
    assert DBOS.get_event("tagged-1", "e") == {"x": 2}
    assert list(DBOS.read_stream("tagged-1", "s")) == [2]
    assert DBOS.get_workflow_status("tagged-1").input == {"args": (2,), "kwargs": {}}


def test_rows_of_a_serializer_this_process_lacks_are_refused_clearly(tagged_dbos, sys_url):
    @DBOS.workflow()
    def plain():
        return "v"

    with SetWorkflowID("tagged-2"):
        plain()
    DBOS.destroy()
    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor"})
    DBOS.launch()
    with pytest.raises(DBOSSerializationError, match="Serialization tagged_json is not available"):
        DBOS.retrieve_workflow("tagged-2").get_result()


def test_a_serializer_without_its_methods_is_a_config_error(sys_url):
    DBOS.destroy(destroy_registry=True)
    with pytest.raises(DBOSConfigError, match="config key 'serializer'.*has no serialize\\(\\) method"):
        DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "serializer": object()})
    DBOS.destroy(destroy_registry=True)
