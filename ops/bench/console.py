"""Console benchmark (issue #13): the web console's pages on a system database holding a
million finished workflows.

    .venv/bin/python ops/bench/console.py --database-url postgresql://postgres@127.0.0.1:36991/postgres
    .venv/bin/python ops/bench/console.py --database-url URL --rows 200000 --repeats 20 --keep

What is measured
----------------
A scratch database (``pgfleet_console_bench``, dropped at the end unless ``--keep``) is
migrated and filled straight with ``generate_series`` into ``dbos.workflow_status``: ``--rows``
(default 1,000,000) finished workflows, one a millisecond, 2 % ERROR and the rest SUCCESS, over
40 names, 7 queues and 5 executors, plus one row in a thousand of a rare name, queue and executor
(so a filter can match few rows of a big history), each with a small pickled input and output;
one workflow gets 20 recorded steps. Then ``ANALYZE``.

Each page is fetched ``--repeats`` times (default 30) through the real app (Starlette's
TestClient: routing, the door's query, decoding, Jinja2 rendering) after 3 untimed fetches;
the median and p95 in ms are printed, with the index the list's query uses (EXPLAIN):

* list: ``/workflows`` (the newest 50);
* filtered: ``status=ERROR``; ``name=<rare>``; ``queue=<rare>&status=SUCCESS``;
* filtered: ``executor=<rare>`` too, and a name no row has (a typo: the whole history is
  looked through unless an index says at once that nothing matches); ``--with-console-indexes``
  builds migration 0009's indexes again first (migration 0011 dropped them), for the figures with them;
* page N: the 50 rows after a cursor 90 % of the way into the history (the cost of page
  18,000 of 50; an OFFSET would read 900,000 rows first);
* a workflow page: the one with 20 steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# Run as a file, this directory is sys.path[0] and its queue.py would shadow the standard
# library's queue (which psycopg imports): take the directory off, as workflows.py does.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

DATABASE = "pgfleet_console_bench"
BASE_MS = 1_700_000_000_000
# Migration 0009's (sysdb/migrations/0009_console_indexes.sql).
CONSOLE_INDEXES_MIGRATION = Path(__file__).resolve().parents[2] / "sysdb" / "migrations" / "0009_console_indexes.sql"

FILL = """
INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, executor_id, owner_epoch, created_at, updated_at,
                                  completed_at, started_at_epoch_ms, inputs, output, serialization, recovery_attempts)
SELECT 'wf-' || lpad(i::text, 8, '0'),
       CASE WHEN i %% 50 = 0 THEN 'ERROR' ELSE 'SUCCESS' END,
       CASE WHEN i %% 1000 = 7 THEN 'rare_name' ELSE 'name_' || (i %% 40) END,
       CASE WHEN i %% 1000 = 7 THEN 'rare_queue' ELSE 'queue_' || (i %% 7) END,
       CASE WHEN i %% 1000 = 7 THEN 'rare-node-0' ELSE 'node-' || (i %% 5) END,
       i, %(base)s + i, %(base)s + i + 5, %(base)s + i + 5, %(base)s + i + 1,
       %(inputs)s, %(output)s, 'py_pickle', 0
FROM generate_series(1, %(rows)s) AS i
"""

STEPS = """
INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, function_name, output, started_at_epoch_ms,
                                    completed_at_epoch_ms, serialization)
SELECT %(workflow)s, s, 'step_' || s, %(output)s, %(base)s + s * 10, %(base)s + s * 10 + 7, 'py_pickle'
FROM generate_series(1, 20) AS s
"""


def _scratch(server_url: str, *, drop_only: bool = False) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return make_conninfo(server_url, dbname=DATABASE)


def _fill(url: str, rows: int) -> tuple[str, float]:
    from runtime.serialization import serialize, serialize_args

    inputs = serialize_args((42, "order-42"), {"express": True}, workflow_name="bench", fmt="py_pickle")
    output = serialize({"ok": True, "total": 99.5}, fmt="py_pickle")
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FILL, {"base": BASE_MS, "inputs": inputs, "output": output, "rows": rows})
        target = f"wf-{rows // 2:08d}"
        conn.execute(STEPS, {"workflow": target, "output": output, "base": BASE_MS})
        conn.execute("ANALYZE dbos.workflow_status")
        conn.execute("ANALYZE dbos.operation_outputs")
    return target, time.perf_counter() - started


def _plan_index(url: str, path: str) -> str:
    """The index the list query of ``path`` reads (from EXPLAIN), or what it scans instead."""
    from starlette.requests import Request

    from cluster.process.console.workflow_views import parse_list_request
    from sysdb.workflow_pages import workflow_page_query

    path_part, _, query = path.partition("?")
    request = Request({"type": "http", "method": "GET", "path": path_part, "query_string": query.encode(), "headers": []})
    where, after, limit = parse_list_request(request)
    statement, params = workflow_page_query(where, after, limit)
    with psycopg.connect(url) as conn:
        plan = [r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + statement, params).fetchall()]
    for line in plan:
        for kind in ("Index Only Scan", "Index Scan", "Bitmap Index Scan", "Seq Scan"):
            if kind in line:
                return line.strip().split(" on ")[0].replace("Backward using ", "backward ").replace("using ", "") + (
                    " on " + line.split(" on ")[1].split()[0] if " on " in line else "")
    return "?"


def _time(client: object, path: str, repeats: int) -> tuple[float, float]:
    get = client.get  # type: ignore[attr-defined]
    for _ in range(3):
        assert get(path).status_code == 200, path
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a database on the server to use (the scratch one is made beside it)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--with-console-indexes", action="store_true",
                        help="build migration 0009's indexes again first (0011 dropped them): the figures with them")
    args = parser.parse_args(argv)

    from starlette.testclient import TestClient

    from cluster.process.console import create_app
    from sysdb import SystemDatabase
    from sysdb.workflow_pages import PageCursor

    url = _scratch(args.database_url)
    db = SystemDatabase(url, pool_size=2, application_name="console-bench")
    db.open()  # migrates
    try:
        if args.with_console_indexes:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(CONSOLE_INDEXES_MIGRATION.read_text("utf-8"))
        target, fill_sec = _fill(url, args.rows)
        print(f"filled {args.rows:,} finished workflows in {fill_sec:.1f}s")
        deep = PageCursor(BASE_MS + args.rows // 10, f"wf-{args.rows // 10:08d}").encode()
        pages = [
            ("list, newest 50", "/workflows"),
            ("filtered: status=ERROR", "/workflows?status=ERROR"),
            ("filtered: rare name", "/workflows?name=rare_name"),
            ("filtered: rare queue + SUCCESS", "/workflows?queue=rare_queue&status=SUCCESS"),
            ("page N: cursor 90% deep", f"/workflows?after={deep}"),
            ("page N: rare name, cursor 90% deep", f"/workflows?name=rare_name&after={deep}"),
            ("filtered: rare executor", "/workflows?executor=rare-node-0"),
            ("filtered: a name no row has", "/workflows?name=no_such_name"),
            ("workflow page (20 steps)", f"/workflows/{target}"),
        ]
        client = TestClient(create_app(db))
        print(f"{'page':38} {'median ms':>10} {'p95 ms':>8}  plan")
        for label, path in pages:
            median, p95 = _time(client, path, args.repeats)
            plan = _plan_index(url, path) if path.startswith("/workflows?") or path == "/workflows" else "-"
            print(f"{label:38} {median:10.1f} {p95:8.1f}  {plan}")
    finally:
        db.close()
        if not args.keep:
            _scratch(args.database_url, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
