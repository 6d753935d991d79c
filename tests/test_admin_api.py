"""The shapes of the workflow management API (#10 item 5) that the differential program does not
reach: id-only handles (DBOS's ``WorkflowHandle(workflow_id)``) find the process or client
they read through, a lazy client connects at first use, ``WorkflowStatus()`` builds as DBOS's."""

from __future__ import annotations

import asyncio
import socket

import pytest

from runtime import (
    DBOS,
    DBOSClient,
    DBOSDatabaseUnavailableError,
    DBOSException,
    DBOSPortableJSONSerializer,
    SetWorkflowID,
    WorkflowHandle,
    WorkflowHandleAsync,
    WorkflowStatus,
)


def _doubled(dbos) -> None:
    @dbos.workflow()
    def doubled(x):
        return x * 2

    with SetWorkflowID("handle-target"):
        assert doubled(21) == 42


def test_an_id_only_handle_reads_through_the_current_process(dbos) -> None:
    _doubled(dbos)
    handle: WorkflowHandle[int] = WorkflowHandle("handle-target")
    assert handle.get_result(polling_interval_sec=0.1) == 42
    assert handle.get_status().status == "SUCCESS"
    assert asyncio.run(WorkflowHandleAsync("handle-target").get_result()) == 42


def test_an_id_only_handle_reads_through_the_last_client_when_no_process_is_current(dbos, sys_url) -> None:
    _doubled(dbos)
    DBOS.destroy(destroy_registry=True)
    with pytest.raises(DBOSException, match="System database accessed before DBOS was launched"):
        WorkflowHandle("handle-target").get_status()
    client = DBOSClient(system_database_url=sys_url)
    try:
        assert WorkflowHandle("handle-target").get_result() == 42
    finally:
        client.destroy()
    with pytest.raises(DBOSException, match="System database accessed before DBOS was launched"):
        WorkflowHandle("handle-target").get_status()  # a destroyed client is not used


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_lazy_client_connects_at_first_use_and_check_connection_says_why_not() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/nowhere?sslmode=disable"
    with pytest.raises(DBOSDatabaseUnavailableError):
        DBOSClient(system_database_url=url)
    lazy = DBOSClient(system_database_url=url, lazy=True)  # nothing is contacted yet
    with pytest.raises(DBOSDatabaseUnavailableError):
        lazy.check_connection()
    lazy.destroy()


def test_a_lazy_client_works_once_used(dbos, sys_url) -> None:
    _doubled(dbos)
    client = DBOSClient(system_database_url=sys_url, lazy=True, retry_connection_errors=False)
    try:
        client.check_connection()
        assert client.retrieve_workflow("handle-target").get_result() == 42
        assert [s.workflow_id for s in client.list_workflows(workflow_id_prefix="handle-", load_input=False)] == ["handle-target"]
    finally:
        client.destroy()


def test_client_refuses_what_it_cannot_honour(dbos) -> None:
    with pytest.raises(DBOSException, match="both lazy and use_listen_notify"):
        DBOSClient(lazy=True, use_listen_notify=True)
    with pytest.raises(DBOSException, match="one serializer per process"):
        DBOSClient(serializer=DBOSPortableJSONSerializer(), lazy=True)  # this process's DBOS pickles


def test_a_client_serializer_is_the_process_one_when_no_dbos_runs_here() -> None:
    from runtime.serialization import default_format, use_serializer

    DBOS.destroy(destroy_registry=True)
    portable = DBOSPortableJSONSerializer()
    try:
        DBOSClient(serializer=portable, lazy=True).destroy()
        assert default_format() == portable.name()
    finally:
        use_serializer(None)


def test_workflow_status_builds_with_no_arguments_as_dbos_does() -> None:
    blank = WorkflowStatus()
    assert (blank.workflow_id, blank.output, blank.error, blank.attributes) == ("", None, None, None)
    blank.status = "SUCCESS"  # DBOS code fills one in field by field
    assert WorkflowStatus.of(workflow_id="w", status="SUCCESS").status == "SUCCESS"
    with pytest.raises(TypeError, match="no field 'nope'"):
        WorkflowStatus.of(nope=1)


def test_listing_keywords_are_explicit(dbos) -> None:
    with pytest.raises(TypeError):
        DBOS.list_workflows(not_a_filter=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        DBOS.list_queued_workflows(queues_only=True)  # type: ignore[call-arg]  # DBOS's has no such keyword
    assert DBOS.list_workflow_steps("no-such-workflow", load_output=False, limit=5, offset=1) == []


def test_deleting_a_workflow_forgets_its_transaction_outputs_so_its_id_runs_afresh(sys_url, empty_db_url) -> None:
    import psycopg

    runs: list[int] = []
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "t", "system_database_url": sys_url, "application_database_url": empty_db_url, "executor_id": "tx-del"})
    DBOS.launch()
    try:

        @DBOS.transaction()
        def counted(x):
            runs.append(x)
            return x + len(runs)

        @DBOS.workflow()
        def once(x):
            return counted(x)

        with SetWorkflowID("tx-del-1"):
            assert once(10) == 11
        DBOS.delete_workflow("tx-del-1")
        with psycopg.connect(empty_db_url, autocommit=True) as app:
            left = app.execute("SELECT count(*) FROM dbos.transaction_outputs WHERE workflow_uuid = 'tx-del-1'").fetchone()[0]
        assert left == 0
        with SetWorkflowID("tx-del-1"):
            assert once(10) == 12, "the transaction ran again instead of replaying the deleted run's output"
        assert runs == [10, 10]
    finally:
        DBOS.destroy(destroy_registry=True)
