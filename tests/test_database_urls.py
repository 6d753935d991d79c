"""System database URLs in every form a DBOS program may give (issue #10 item 1)."""

from __future__ import annotations

import pytest
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
