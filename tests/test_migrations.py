"""Schema migrations: created on launch, applied once under a lock, newer schemas refused."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from conftest import REPO_ROOT
from runtime import DBOS, DBOSDatabaseUnavailableError
from sysdb import LATEST_VERSION

LAUNCH = """
import sys
from runtime import DBOS
DBOS(config={"name": "m", "system_database_url": sys.argv[1], "executor_id": sys.argv[2]})
DBOS.launch()
DBOS.destroy()
print("launched")
"""


def test_concurrent_launches_create_and_migrate_once(empty_db_url):
    procs = [
        subprocess.Popen([sys.executable, "-c", LAUNCH, empty_db_url, f"e{i}"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "launched" in out
    with psycopg.connect(empty_db_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM dbos.pgfleet_migrations ORDER BY version")]
        assert versions == list(range(1, LATEST_VERSION + 1))
        # DBOS's own record says the layout is DBOS 2.30's, so DBOS runs no migrations here.
        assert conn.execute("SELECT version FROM dbos.dbos_migrations").fetchall() == [(107,)]


def test_newer_schema_is_refused_with_a_clear_error(sys_url, db):
    db.execute("INSERT INTO dbos.pgfleet_migrations (version, name) VALUES (999, 'from_the_future')")
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "t", "system_database_url": sys_url})
    with pytest.raises(DBOSDatabaseUnavailableError, match="version 999.*upgrade pgfleet"):
        DBOS.launch()
    DBOS.destroy()
