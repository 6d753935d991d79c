"""EXPLAIN (ANALYZE, BUFFERS) of the claim and of each statement a queued workflow runs, with and
without history, at a given backlog (issue #14: does the drain slow down as history grows?).

    .venv/bin/python ops/bench/queue_explain.py --embedded-dir /tmp/bench-drain \\
        --history 0,1000000 --history-queue other,same --queued 2000,20000

For each history size H and each place of the history (``other``: finished workflows of another
queue, as ``queue.py --history`` adds them; ``same``: of the benchmark's own queue, as a
production queue's history is), one fresh migrated system database gets H finished workflows
(one ``INSERT ... SELECT generate_series``, ``VACUUM ANALYZE``, ``CHECKPOINT``). Then for each
backlog Q, Q workflows are enqueued (committed, ``ANALYZE``d, like the drain's rows when its
history is added) and, in one transaction rolled back after each statement, the statements of
``sysdb/sql`` run under ``EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)`` ``--reps`` times each (the
median execution time is printed, with the shared buffers of the last run): the claim of 32 rows
(as a custom plan, and as the generic plan a prepared statement can switch to), then for one
claimed row its step checkpoint and its finish, and one more enqueue. The statements are read
from this checkout's ``sysdb/sql``, so the same command in an older checkout measures its SQL.
Every database's ``dbos`` relations over 1 MB are listed with their sizes (what grows).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # queue.py lives in this directory: never let it shadow the standard library's ``queue``.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import re
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

if __package__:
    from . import common
else:
    import importlib.util

    _spec = importlib.util.spec_from_file_location("pgfleet_bench_common", Path(__file__).resolve().parent / "common.py")
    assert _spec is not None and _spec.loader is not None
    common = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = common
    _spec.loader.exec_module(common)

SQL_DIR = common.REPO_ROOT / "sysdb" / "sql"
QUEUE, MEMBER, NAME, VERSION = "qbench", "qbench-explain", "qbench_one_step", "qbench-1"


def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def _database(server_url: str, dbname: str, history: int, history_queue: str) -> str:
    """A fresh migrated system database with ``history`` finished workflows of ``history_queue``."""
    import psycopg

    if str(common.REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(common.REPO_ROOT))
    from sysdb import SystemDatabase  # type: ignore[import-not-found]

    common.admin(server_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    common.admin(server_url, f'CREATE DATABASE "{dbname}"')
    url = common.with_database(server_url, dbname)
    db = SystemDatabase(url, pool_size=1)
    db.open(wait_for_server=False)
    db.close()
    print(f"[bench] {dbname}: {history} finished workflows of {history_queue!r} ...", file=sys.stderr, flush=True)
    common.fill_history(url, history, name=NAME, queue=history_queue, version=VERSION)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO dbos.pgfleet_executors (executor_id, epoch, host, pid) VALUES (%s, 7, 'h', 1)", (MEMBER,))
    return url


def _explain(conn: Any, sql: str, params: Any, reps: int) -> dict[str, Any]:
    """Median execution ms of ``reps`` EXPLAIN ANALYZE runs, each rolled back; the last one's buffers."""
    times, buffers = [], ""
    for _ in range(reps):
        conn.execute("SAVEPOINT explain")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + sql, params).fetchall())
        conn.execute("ROLLBACK TO SAVEPOINT explain")
        times.append(float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1)))  # type: ignore[union-attr]
        top = re.search(r"Buffers: shared ([^\n]*)", plan)
        hit = re.search(r"hit=(\d+)", top.group(1)) if top else None
        buffers = hit.group(1) if hit else "0"
    return {"ms": statistics.median(times), "buffers": int(buffers)}


def _generic(conn: Any, sql: str, params: dict[str, Any], reps: int) -> dict[str, Any]:
    """The same statement as a prepared statement forced to its generic plan."""
    from psycopg import sql as psql
    from psycopg._queries import PostgresQuery
    from psycopg.adapt import Transformer

    query = PostgresQuery(Transformer(conn))
    query.convert(sql, params)
    conn.execute(b"PREPARE bench_claim AS " + query.query)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    values = ", ".join(psql.Literal(params[k]).as_string(conn) for k in query._order or [])
    try:
        return _explain(conn, f"EXECUTE bench_claim({values})", None, reps)
    finally:
        conn.execute("RESET plan_cache_mode")
        conn.execute("DEALLOCATE bench_claim")


def _claim_params() -> dict[str, Any]:
    return {"queue_name": QUEUE, "partition_key": None, "executor_id": MEMBER, "member_epoch": 7,
            "application_version": VERSION, "workflow_names": [NAME], "instance_classes": [], "instance_configs": [],
            "instance_methods": [], "class_methods": [], "classes": [],
            "max_claim": 32, "concurrency": None, "worker_concurrency": 32, "limiter_limit": None,
            "limiter_period_ms": 0, "database_backed": False}


def _enqueue_params(now: int) -> dict[str, Any]:
    return {"workflow_id": str(uuid.uuid4()), "status": "ENQUEUED", "name": NAME, "class_name": None,
            "config_name": None, "authenticated_user": None, "assumed_role": None, "authenticated_roles": None,
            "application_version": VERSION, "application_id": None, "application_name": "qbench", "now_ms": now,
            "queue_name": QUEUE, "timeout_ms": None, "deadline_ms": None, "inputs": "x", "parent_workflow_id": None,
            "serialization": "pickle", "deduplication_id": None, "priority": 0, "queue_partition_key": None,
            "delay_until_ms": None, "is_debounced": False, "debounce_deadline_ms": None, "attributes": None}


def measure(url: str, queued: int, reps: int) -> dict[str, Any]:
    """Every statement's figures with ``queued`` workflows waiting (removed again afterwards)."""
    import psycopg

    with psycopg.connect(url) as conn:
        now = int(time.time() * 1000)
        conn.execute(
            "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, application_version, created_at, "
            "updated_at, recovery_attempts, inputs, serialization, enqueue_seq) "
            "SELECT gen_random_uuid()::text, 'ENQUEUED', %s, %s, %s, %s + g, %s + g, 0, 'x', 'pickle', "
            "nextval('dbos.pgfleet_enqueue_seq') FROM generate_series(1, %s) AS g", (NAME, QUEUE, VERSION, now, now, queued))
        conn.commit()
        conn.execute("ANALYZE dbos.workflow_status")
        conn.commit()
        claim = _claim_params()
        out = {"claim": _explain(conn, _sql("claim_queued_workflows"), claim, reps),
               "claim (generic plan)": _generic(conn, _sql("claim_queued_workflows"), claim, reps)}
        wf = conn.execute(_sql("claim_queued_workflows"), claim).fetchone()
        step = {"workflow_id": wf[0], "executor_id": MEMBER, "owner_epoch": wf[1], "function_id": 1,
                "function_name": "qbench_step", "output": "x", "error": None, "child_workflow_id": None,
                "started_at_ms": now, "completed_at_ms": now, "serialization": "pickle"}
        out["record_step_output"] = _explain(conn, _sql("record_step_output"), step, reps)
        conn.execute(_sql("record_step_output"), step)
        finish = {"status": "SUCCESS", "output": "y", "error": None, "now_ms": now, "workflow_id": wf[0],
                  "executor_id": MEMBER, "owner_epoch": wf[1]}
        out["finish_workflow"] = _explain(conn, _sql("finish_workflow"), finish, reps)
        out["enqueue_workflow"] = _explain(conn, _sql("enqueue_workflow"), _enqueue_params(now), reps)
        conn.rollback()
        conn.execute("DELETE FROM dbos.workflow_status WHERE queue_name = %s AND status = 'ENQUEUED'", (QUEUE,))
        conn.commit()
    return out


def sizes(url: str) -> list[tuple[str, int]]:
    """The dbos schema's tables and indexes over 1 MB, largest first (bytes)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relnamespace = 'dbos'::regnamespace "
            "AND relkind IN ('r', 'i') AND pg_relation_size(oid) > 1048576 ORDER BY 2 DESC").fetchall()


def main(argv: list[str] | None = None) -> int:
    """Measure every (history, place, backlog) combination and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", help="Postgres server URL (default: the embedded server)")
    parser.add_argument("--embedded-dir", default=".pgfleet", help="embedded server base dir (default ./.pgfleet)")
    parser.add_argument("--history", default="0,1000000", help="finished workflows per database (default 0,1000000)")
    parser.add_argument("--history-queue", default="other,same", help="other and/or same (default other,same)")
    parser.add_argument("--queued", default="2000,20000", help="backlogs to measure at (default 2000,20000)")
    parser.add_argument("--reps", type=int, default=5, help="EXPLAIN runs per statement, median shown (default 5)")
    parser.add_argument("--keep-databases", action="store_true", help="do not drop the databases")
    parser.add_argument("--keep-server", action="store_true", help="do not stop an embedded server this run started")
    args = parser.parse_args(argv)
    server = common.BenchServer(args.database_url, args.embedded_dir)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    rows = [["history", "place", "queued", "statement", "exec ms (median)", "shared buffers"]]
    try:
        for history in [int(h) for h in args.history.split(",")]:
            for place in args.history_queue.split(",") if history else ["-"]:
                dbname = f"bench_explain_{stamp}_{history}_{place.strip('-') or 'none'}"
                url = _database(str(server.url), dbname, history, f"{QUEUE}_history" if place == "other" else QUEUE)
                for queued in [int(q) for q in args.queued.split(",")]:
                    for statement, figures in measure(url, queued, args.reps).items():
                        rows.append([f"{history:,}", place, f"{queued:,}", statement, f"{figures['ms']:.3f}",
                                     str(figures["buffers"])])
                print(f"{dbname}: " + ", ".join(f"{n} {b / 2**20:.0f} MB" for n, b in sizes(url)))
                if not args.keep_databases:
                    common.admin(str(server.url), f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    finally:
        server.close(args.keep_server)
    print(common.render_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
