"""``workflows.py --threads``: pgfleet's own statements alone, sent by bare psycopg (issue #14).

Between the raw bound (single-row INSERTs into a two-index scratch table) and the engine sits a
third figure that splits the gap in two: N threads, each with its own connection configured as
pgfleet configures its pooled ones (autocommit, dict rows, prepared after 5 uses), sending
exactly the statements one k-step workflow sends -- ``insert_workflow``, k times
``record_step_output`` and ``finish_workflow``, read from ``sysdb/sql`` with the parameters
pgfleet passes -- into a system database migrated by pgfleet (DBOS's layout, its indexes and
the step rows' foreign key), with no Python of pgfleet's around them.

* raw bound - SQL alone = what DBOS's schema costs the server per statement (the status row's
  dozen indexes, the fenced step insert's row lock and foreign-key check, the non-HOT finish);
  no client change can win that back;
* SQL alone - engine = pgfleet's own client work (runtime, sysdb, the pool, psycopg's per
  statement set-up beyond a bare ``execute``): what the hot-path cuts can win back.

Reported in durable writes/s counted as the bound's table counts them (k + 2 per workflow).
``through_libpq=True`` sends the same statements as pgfleet's connections send them
(``DictConnection.run_named``: ``sysdb/direct.py``) instead of on the cursor; ``ceiling.py`` sets
the two side by side.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

if __package__:
    from . import common
else:  # loaded by path by workflows.py, which has loaded common.py the same way first
    common = sys.modules["pgfleet_bench_common"]

STEP_OUTPUT = "gASVBQAAAAAAAABLAS4="  # a pickled small int, base64, as a step's output is stored
WORKFLOW_INPUTS = "gASVFAAAAAAAAAB9lCiMBGFyZ3OUKYwGa3dhcmdzlH2UdS4="


def scratch_system_database(server_url: str, dbname: str) -> str:
    """A fresh database ``dbname`` migrated by pgfleet (the system database's layout); its URL."""
    if str(common.REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(common.REPO_ROOT))
    from sysdb import SystemDatabase

    url = common.with_database(server_url, dbname)
    common.admin(server_url, f'DROP DATABASE IF EXISTS "{dbname}"')
    common.admin(server_url, f'CREATE DATABASE "{dbname}"')
    db = SystemDatabase(url, pool_size=1)
    db.open()  # migrates
    db.close()
    return url


Run = Callable[[str, dict[str, Any]], int]  # (statement name, parameters) -> rows written or returned


def _one_workflow(run: Run, steps: int, executor_id: str, epoch: int) -> None:
    """One k-step workflow's statements, in order, with pgfleet's parameters."""
    workflow_id = str(uuid.uuid4())
    now = int(time.time() * 1000)
    run("insert_workflow", {
        "workflow_id": workflow_id, "name": "bench_workflow", "class_name": None, "config_name": None,
        "authenticated_user": None, "assumed_role": None, "authenticated_roles": None, "executor_id": executor_id,
        "owner_epoch": epoch, "application_version": "bench", "application_id": None, "application_name": None,
        "now_ms": now, "timeout_ms": None, "deadline_ms": None, "inputs": WORKFLOW_INPUTS, "parent_workflow_id": None,
        "serialization": "py_pickle", "attributes": None,
    })
    for function_id in range(1, steps + 1):
        if run("record_step_output", {
            "workflow_id": workflow_id, "executor_id": executor_id, "owner_epoch": epoch, "function_id": function_id,
            "function_name": "bench_step", "started_at_ms": now, "completed_at_ms": int(time.time() * 1000),
            "output": STEP_OUTPUT, "error": None, "serialization": "py_pickle", "child_workflow_id": None,
        }) != 1:
            raise AssertionError("a fenced step insert matched no row")
    if run("finish_workflow", {
        "workflow_id": workflow_id, "executor_id": executor_id, "owner_epoch": epoch, "status": "SUCCESS",
        "output": STEP_OUTPUT, "error": None, "now_ms": int(time.time() * 1000),
    }) != 1:
        raise AssertionError("a fenced finish matched no row")


HOT_STATEMENTS = ("insert_workflow", "record_step_output", "finish_workflow")


def hot_statements() -> dict[str, str]:
    """The text of the statements one k-step workflow sends, from ``sysdb/sql``, by name."""
    from sysdb.statements import statement

    return {name: statement(name) for name in HOT_STATEMENTS}


def _on_cursor(conn: Any, sql: dict[str, str]) -> Run:
    """Statements on one kept cursor, rows fetched (as pgfleet's pooled connections ran them
    before ``sysdb/direct.py``; psycopg's cheapest public path)."""
    cur = conn.cursor()

    def run(name: str, params: dict[str, Any]) -> int:
        cur.execute(sql[name], params)
        if cur.description is not None:
            cur.fetchall()
        return int(cur.rowcount)

    return run


def _as_pgfleet_sends(conn: Any) -> Run:
    """Statements as pgfleet sends them: ``DictConnection.run_named`` (``sysdb/direct.py``)."""
    return lambda name, params: conn.run_named(name, params).rowcount


def sql_alone(url: str, threads: int, steps: int, seconds: float, *,
              statements: dict[str, str] | None = None, through_libpq: bool = False) -> dict[str, Any]:
    """Durable writes/s of ``threads`` connections sending pgfleet's k-step statements on a
    kept cursor (or ``statements``, the same names with other text: ``ceiling.py``'s variants),
    or ``through_libpq`` as pgfleet's own connections send them."""
    from psycopg.rows import dict_row

    if through_libpq and statements is not None:
        raise ValueError("through_libpq sends sysdb's own statements: it takes no other text")
    sql = statements if statements is not None else hot_statements()

    def run_workflows(conn: Any, slot: int, stopped: Callable[[], bool]) -> int:
        n, run = 0, (_as_pgfleet_sends(conn) if through_libpq else _on_cursor(conn, sql))
        while not stopped():
            _one_workflow(run, steps, f"bench-{slot}", slot * 10_000_000 + n)
            n += 1
        return n

    # as pgfleet configures its pooled connections
    settings = {"autocommit": True, "row_factory": dict_row, "prepare_threshold": 5}
    connection_class = None
    if through_libpq:
        from sysdb.connection import DictConnection as connection_class
    workflows, elapsed = common.timed_connections(url, threads, seconds, settings, run_workflows,
                                                  connection_class=connection_class)
    return {"threads": threads, "steps": steps, "workflows": workflows, "elapsed_s": elapsed,
            "wf_per_s": workflows / elapsed, "writes_per_s": workflows * (steps + 2) / elapsed}


def measure(url: str, thread_counts: list[int], step_counts: list[int], seconds: float, when: str) -> dict[str, Any]:
    """SQL alone for every (threads, steps) row, keyed as the engine rows are (``"N:k"``)."""
    out = {}
    for n in thread_counts:
        for k in step_counts:
            print(f"[bench] pgfleet's SQL alone ({when}): {n} connection(s), {k} steps, {seconds:g} s ...", file=sys.stderr, flush=True)
            out[f"{n}:{k}"] = sql_alone(url, n, k, seconds)
    return out


def merge(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Both measurements per row; the higher is kept, as for the raw bound."""
    return {key: {"before": before[key]["writes_per_s"], "after": after[key]["writes_per_s"],
                  "writes_per_s": max(before[key]["writes_per_s"], after[key]["writes_per_s"])} for key in before}
