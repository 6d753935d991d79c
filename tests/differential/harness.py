"""Run one DBOS program under the real ``dbos`` package and under pgfleet, and compare.

The pgfleet run is the same file with its import lines changed and nothing else
(``from dbos import`` → ``from runtime import``, ``from dbos.X import`` →
``from runtime.X import``): the promise of the README. Each run gets an empty database of its
own on the test server; afterwards the harness reads back what each recorded (workflows and
steps, with the columns both write, ids and timestamps left out) so that a difference in what
lands in the system database fails like a difference in what the program saw.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
# Extensions DBOS creates that a server may lack (see fresh_database).
STAND_INS = HERE / "pgshare"
REPO_ROOT = HERE.parent.parent
DBOS_PYTHON = os.environ.get("PGFLEET_DBOS_PYTHON")
SKIP_REASON = "set PGFLEET_DBOS_PYTHON to a Python with dbos==2.30.0 installed to run the differential tests"
_MARK = "DIFFERENTIAL-TRANSCRIPT "
_FROM_IMPORT = re.compile(r"^(\s*)from\s+dbos((?:\.\w+)*)\s+import", re.MULTILINE)
_PLAIN_IMPORT = re.compile(r"^(\s*)import\s+dbos\s*$", re.MULTILINE)
RUN_TIMEOUT_SEC = 120


@dataclass(frozen=True)
class Run:
    """One program's run: what it reported, what it recorded, and its output for diagnosis."""

    transcript: list[Any]
    records: dict[str, Any]
    output: str
    crashed: bool = False


def as_url(conninfo: str) -> str:
    """A postgresql:// URL (what DBOS accepts) for a libpq conninfo string."""
    params = conninfo_to_dict(conninfo)
    password = f":{params['password']}" if params.get("password") else ""
    host, port = params.get("host", "localhost"), params.get("port", 5432)
    return f"postgresql://{params.get('user', 'postgres')}{password}@{host}:{port}/{params['dbname']}"


def for_pgfleet(source: str) -> str:
    """The program with its dbos imports pointed at pgfleet's ``runtime``, and nothing else:
    ``from dbos[.x] import ...`` → ``from runtime[.x] import ...``, ``import dbos`` →
    ``import runtime as dbos`` (so ``dbos.X`` in the body still resolves)."""
    source = _FROM_IMPORT.sub(lambda m: f"{m.group(1)}from runtime{m.group(2) or ''} import", source)
    return _PLAIN_IMPORT.sub(lambda m: f"{m.group(1)}import runtime as dbos", source)


def fresh_database(server_url: str, name: str) -> str:
    """An empty database ``name`` on the server (dropped first if it exists); its conninfo.

    On a server without contrib's uuid-ossp (the embedded wheel's), the database's sessions
    find the stand-in in ``pgshare/`` (PostgreSQL 18's extension_control_path), because
    DBOS's first migration creates that extension."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'uuid-ossp'").fetchone():
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET extension_control_path = {}").format(
                    sql.Identifier(name), sql.Literal(f"{STAND_INS}:$system")
                )
            )
    return make_conninfo(server_url, dbname=name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def read_records(conninfo: str) -> dict[str, Any]:
    """What the run left in the system database, in an order and shape both packages share."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('dbos.workflow_status')").fetchone() == (None,):
            return {}  # the program never launched
        workflows = conn.execute(
            "SELECT name, status, queue_name, class_name, config_name, recovery_attempts > 0 AS recovered"
            " FROM dbos.workflow_status ORDER BY created_at, name"
        ).fetchall()
        steps = conn.execute(
            "SELECT w.name, o.function_id, o.function_name, o.output IS NOT NULL, o.error IS NOT NULL,"
            " o.child_workflow_id IS NOT NULL"
            " FROM dbos.operation_outputs o JOIN dbos.workflow_status w ON w.workflow_uuid = o.workflow_uuid"
            " ORDER BY w.created_at, w.name, o.function_id"
        ).fetchall()
    # Compared as multisets: rows created in one millisecond tie on created_at, and which of two
    # such rows a run wrote first is timing, not behaviour (the transcripts say what ran when).
    return {"workflows": _canonical(workflows), "steps": _canonical(steps)}


def _canonical(rows: list[Any]) -> list[list[Any]]:
    return sorted((list(r) for r in rows), key=lambda row: json.dumps(row, default=str))


def run_program(python: str, source: str, server_url: str, database: str, *, pgfleet: bool) -> Run:
    """Run ``source`` with ``python`` on a fresh database; its transcript and records."""
    conninfo = fresh_database(server_url, database)
    app_conninfo = fresh_database(server_url, f"{database}_app")
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"{database}.py"
    script.write_text(source)
    path = [str(HERE)] + ([str(REPO_ROOT)] if pgfleet else [])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path), "DIFFERENTIAL_DATABASE_URL": as_url(conninfo),
        "DIFFERENTIAL_APP_DATABASE_URL": as_url(app_conninfo),
    }
    try:
        done = subprocess.run([python, str(script)], capture_output=True, text=True, timeout=RUN_TIMEOUT_SEC, env=env)
        output = f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr[-6000:]}"
        lines = [line for line in done.stdout.splitlines() if line.startswith(_MARK)]
        if not lines:  # it crashed: the transcript says how, so that the comparison shows it
            last_line = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            return Run([["crashed", last_line]], read_records(conninfo), output, crashed=True)
        return Run(json.loads(lines[-1][len(_MARK):]), read_records(conninfo), output)
    finally:
        script.unlink(missing_ok=True)
        drop_database(server_url, database)
        drop_database(server_url, f"{database}_app")


def run_both(program: str, server_url: str) -> tuple[Run, Run]:
    """The program under dbos (``PGFLEET_DBOS_PYTHON``) and under pgfleet (this Python)."""
    assert DBOS_PYTHON, SKIP_REASON
    source = (PROGRAMS / program).read_text()
    stem = Path(program).stem
    reference = run_program(DBOS_PYTHON, source, server_url, f"diff_dbos_{stem}_{os.getpid()}", pgfleet=False)
    assert not reference.crashed, f"{program} crashed under dbos itself (the program is wrong):\n{reference.output}"
    ours = run_program(sys.executable, for_pgfleet(source), server_url, f"diff_pgfleet_{stem}_{os.getpid()}", pgfleet=True)
    return reference, ours
