"""System database URLs in every form a DBOS program may give (issue #10 item 1)."""

from __future__ import annotations

import socket
import threading

import pytest
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict

from runtime import DBOS
from sysdb import InvalidDatabaseUrlError, describe_url, validate_url


@pytest.mark.parametrize(
    "given",
    [
        "postgresql+psycopg://app:secret@db.example:6543/orders?sslmode=require",
        "postgresql+psycopg2://app:secret@db.example:6543/orders?sslmode=require",
        "postgres+asyncpg://app:secret@db.example:6543/orders?sslmode=require",
        "  postgresql://app:secret@db.example:6543/orders?sslmode=require  ",
    ],
)
def test_sqlalchemy_and_libpq_forms_name_the_same_database(given: str) -> None:
    params = conninfo_to_dict(validate_url(given))
    assert params == {
        "user": "app",
        "password": "secret",
        "host": "db.example",
        "port": "6543",
        "dbname": "orders",
        "sslmode": "require",
    }
    assert describe_url(given) == "postgresql://app@db.example:6543/orders"


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("mysql+pymysql://app@db/orders", "not a PostgreSQL URL"),
        ("postgresql+psycopg://app@db.example:6543", "names no database"),
        ("", "is empty"),
    ],
)
def test_other_urls_are_refused_naming_the_problem(given: str, problem: str) -> None:
    with pytest.raises(InvalidDatabaseUrlError, match=problem):
        validate_url(given)


def test_a_program_launches_on_a_postgresql_psycopg_url(sys_url: str) -> None:
    params = conninfo_to_dict(sys_url)
    url = f"postgresql+psycopg://{params.get('user', 'postgres')}@{params['host']}:{params['port']}/{params['dbname']}"
    DBOS.destroy(destroy_registry=True)

    @DBOS.workflow()
    def hello(name: str) -> str:
        return f"hello {name}"

    DBOS(config={"name": "url-forms", "system_database_url": url, "executor_id": "url-forms"})
    try:
        DBOS.launch()
        assert hello("psycopg") == "hello psycopg"
        assert [w.name for w in DBOS.list_workflows()] == [hello.__qualname__]
    finally:
        DBOS.destroy(destroy_registry=True)


def test_a_client_makes_one_attempt_on_a_server_that_does_not_answer() -> None:
    # DBOS's client raises at once; pgfleet's retried for its whole retry timeout (60 s), so a
    # script pointed at the wrong port hung for a minute before saying so. A listener that
    # accepts and hangs up at once counts the attempts: a retrying client makes many.
    from runtime import DBOSClient
    from runtime.errors import DBOSDatabaseUnavailableError

    attempts = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def hang_up() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return  # the listener was closed: the test is over
                attempts.append(1)
                conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        with pytest.raises(DBOSDatabaseUnavailableError, match="cannot reach the system database"):
            DBOSClient(system_database_url=f"postgresql://postgres@127.0.0.1:{port}/nowhere?sslmode=disable")
    assert len(attempts) == 1


def test_an_application_database_url_in_the_sqlalchemy_form_is_used(sys_url: str, empty_db_url: str) -> None:
    app = conninfo_to_dict(empty_db_url)
    app_url = f"postgresql+psycopg://{app.get('user', 'postgres')}@{app['host']}:{app['port']}/{app['dbname']}"
    DBOS.destroy(destroy_registry=True)

    @DBOS.transaction()
    def count_tables() -> int:
        return DBOS.sql_session.execute(sa.text("SELECT count(*) FROM dbos.transaction_outputs")).scalar_one()

    DBOS(config={"name": "url-forms", "system_database_url": sys_url, "application_database_url": app_url, "executor_id": "url-app"})
    try:
        DBOS.launch()
        assert count_tables() == 0  # the application database got its own outputs table
    finally:
        DBOS.destroy(destroy_registry=True)
