"""The async route decision: worker threads + the sync pool, or psycopg's AsyncConnectionPool.

Run it from anywhere with the project's virtual environment::

    .venv/bin/python ops/bench/async_route.py                         # embedded server, durability on
    .venv/bin/python ops/bench/async_route.py --database-url postgresql://u:p@host:5432/postgres --json

pgfleet's async paths (``runtime/aio.py``) run the blocking system-database statements in a
bounded pool of worker threads over psycopg's sync ``ConnectionPool``. The alternative is
psycopg's ``AsyncConnectionPool`` awaited on the loop. This measures both routes on pgfleet's
hot statements, without the rest of pgfleet, so that only the route differs:

* one simulated workflow = pgfleet's start insert (``sysdb/sql/insert_workflow.sql``), three
  fenced step checkpoints (``record_step_output.sql``), the fenced finish
  (``finish_workflow.sql``): 5 autocommit round trips, each checked for its one row;
* N asyncio tasks on one loop each run workflows one after the other until ``--count`` are
  done, for N in ``--tasks`` (default 1, 8, 100);
* ``threads``: each statement is ``loop.run_in_executor(ThreadPoolExecutor(pool size),
  context.run, ...)`` over a sync ``ConnectionPool`` (what ``runtime/aio.py`` ``in_thread``
  does: the caller's context variables go along);
* ``async``: each statement is ``async with AsyncConnectionPool.connection()`` + ``await
  conn.execute`` on the loop;
* both pools hold ``--pool-size`` connections (20: pgfleet's default), opened before timing,
  with pgfleet's connection settings (autocommit, dict rows, prepared after 5 uses);
* ``--rounds`` rounds, each running every (N, route) once, the route order alternating from
  round to round so both see the same load on a shared machine.

At N = 1 a third row, ``blocking``, is the reference: the sync pool called on the loop's own
thread (no hop; what pgfleet's sync API costs in the caller's thread, but it blocks the loop).
Reported per N and route: workflows/s of each round and their median, the median (over
rounds) of each round's median workflow latency, and the client process's CPU time per
workflow (``time.process_time``): the latter two are steadier than wall time on a loaded
machine. ``vs threads`` compares median workflows/s. The statements are read from ``sysdb/sql`` (the real ones); the routes and the
loop around them are a measurement prototype in this file, not pgfleet code.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # ops/bench/queue.py would shadow the standard library's ``queue``: see workflows.py.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import concurrent.futures
import contextvars
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from ops.bench import common  # noqa: E402  (after the sys.path fix above)

STEPS = 3
STATEMENTS_PER_WORKFLOW = STEPS + 2
EXECUTOR_ID = "bench-route"
ROUTES = ("threads", "async")
# The reference at one task: the sync pool called on the loop's own thread (what pgfleet's sync
# API does in the caller's thread; it would block the loop, so it is only a baseline).
BASELINE = "blocking"


def _statements() -> dict[str, str]:
    from sysdb.statements import statement

    return {name: statement(name) for name in ("insert_workflow", "record_step_output", "finish_workflow")}


def _connect_kwargs() -> dict[str, Any]:
    from psycopg.rows import dict_row

    # As sysdb/database.py opens its pool (the session timeouts aside: not on the hot path).
    return {"autocommit": True, "row_factory": dict_row, "prepare_threshold": 5, "application_name": "pgfleet-bench-route"}


class Workload:
    """The statements of one simulated workflow, and their parameters."""

    def __init__(self) -> None:
        self.sql = _statements()
        self._ids = itertools.count()
        self._stamp = f"{os.getpid()}-{int(time.time())}"

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """(statement, params) of the next workflow, in order."""
        workflow_id = f"route-{self._stamp}-{next(self._ids)}"
        now = int(time.time() * 1000)
        owner = {"workflow_id": workflow_id, "executor_id": EXECUTOR_ID, "owner_epoch": 1}
        start = {**owner, "name": "bench_route_workflow", "class_name": None, "config_name": None,
                 "authenticated_user": None, "assumed_role": None, "authenticated_roles": None,
                 "application_version": "bench", "application_id": None, "application_name": "bench",
                 "now_ms": now, "timeout_ms": None, "deadline_ms": None, "inputs": '{"args": [], "kwargs": {}}',
                 "parent_workflow_id": None, "serialization": "py_pickle", "attributes": None}
        calls = [(self.sql["insert_workflow"], start)]
        for i in range(STEPS):
            calls.append((self.sql["record_step_output"], {
                **owner, "function_id": i, "function_name": "bench_step", "output": json.dumps(i + 1), "error": None,
                "child_workflow_id": None, "started_at_ms": now, "completed_at_ms": now, "serialization": "py_pickle"}))
        calls.append((self.sql["finish_workflow"], {**owner, "status": "SUCCESS", "output": "6", "error": None, "now_ms": now}))
        return calls


def _check(rows: int, sql: str) -> None:
    if rows != 1:  # every statement of the workflow writes exactly one row while it is owned
        raise AssertionError(f"a statement changed {rows} rows, not 1: {sql.splitlines()[0]}")


class ThreadRoute:
    """Statements in worker threads over the sync pool (pgfleet's route)."""

    def __init__(self, url: str, size: int) -> None:
        from psycopg_pool import ConnectionPool

        self.pool: Any = ConnectionPool(url, min_size=size, max_size=size, kwargs=_connect_kwargs(), open=False)
        self.pool.open(wait=True)
        self.threads = concurrent.futures.ThreadPoolExecutor(max_workers=size, thread_name_prefix="bench-route")

    def _run(self, sql: str, params: dict[str, Any]) -> int:
        with self.pool.connection() as conn:
            return int(conn.execute(sql, params).rowcount)

    async def execute_blocking(self, sql: str, params: dict[str, Any]) -> None:
        _check(self._run(sql, params), sql)

    async def execute(self, sql: str, params: dict[str, Any]) -> None:
        context = contextvars.copy_context()
        rows = await asyncio.get_running_loop().run_in_executor(self.threads, context.run, self._run, sql, params)
        _check(rows, sql)

    def close(self) -> None:
        self.threads.shutdown()
        self.pool.close()


class AsyncRoute:
    """Statements awaited on the loop through psycopg's async pool (the alternative)."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size = url, size
        self.pool: Any = None

    async def open(self) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.pool = AsyncConnectionPool(self.url, min_size=self.size, max_size=self.size, kwargs=_connect_kwargs(), open=False)
        await self.pool.open(wait=True)

    async def execute(self, sql: str, params: dict[str, Any]) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            _check(cur.rowcount, sql)

    async def close(self) -> None:
        await self.pool.close()


async def _one_run(execute: Any, workload: Workload, tasks: int, count: int) -> dict[str, float]:
    remaining = count

    latencies: list[float] = []
    perf = time.perf_counter

    async def task() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t = perf()
            for sql, params in workload.calls():
                await execute(sql, params)
            latencies.append(perf() - t)

    cpu, wall = time.process_time(), perf()
    await asyncio.gather(*(task() for _ in range(tasks)))
    wall, cpu = perf() - wall, time.process_time() - cpu
    return {"wf_per_s": count / wall, "cpu_ms_per_wf": 1000.0 * cpu / count,
            "ms_median": 1000.0 * statistics.median(latencies)}


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    workload = Workload()
    threads = ThreadRoute(url, args.pool_size)
    aroute = AsyncRoute(url, args.pool_size)
    await aroute.open()
    routes = {"threads": threads.execute, "async": aroute.execute, BASELINE: threads.execute_blocking}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {str(n): {r: [] for r in ROUTES} for n in args.tasks}
    if 1 in args.tasks:
        runs["1"][BASELINE] = []
    try:
        for name in ROUTES:  # warm both pools' connections (prepared statements) and threads
            await _one_run(routes[name], workload, args.pool_size, args.warmup)
        for rnd in range(args.rounds):
            order = ROUTES if rnd % 2 == 0 else tuple(reversed(ROUTES))
            for n in args.tasks:
                for name in (*order, BASELINE) if n == 1 else order:
                    runs[str(n)][name].append(await _one_run(routes[name], workload, n, args.count))
            print(f"[bench] round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        threads.close()
        await aroute.close()
    return runs


def _summary(runs: dict[str, Any]) -> str:
    rows = [["tasks", "route", "wf/s per round", "median wf/s", "median stmt/s", "wf p50 ms", "CPU ms/wf", "vs threads"]]
    for n, by_route in runs.items():
        medians = {r: statistics.median(x["wf_per_s"] for x in by_route[r]) for r in by_route}
        for r in by_route:
            cpu = statistics.median(x["cpu_ms_per_wf"] for x in by_route[r])
            p50 = statistics.median(x["ms_median"] for x in by_route[r])
            versus = f"{100.0 * (medians[r] / medians['threads'] - 1):+.0f} %" if r != "threads" else ""
            rows.append([n, r, ", ".join(f"{x['wf_per_s']:.0f}" for x in by_route[r]), f"{medians[r]:.0f}",
                         f"{medians[r] * STATEMENTS_PER_WORKFLOW:.0f}", f"{p50:.2f}", f"{cpu:.2f}", versus])
    return common.render_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", help="Postgres server URL (default: the embedded server)")
    parser.add_argument("--tasks", default="1,8,100", help="comma-separated concurrent tasks (default 1,8,100)")
    parser.add_argument("--count", type=int, default=300, help="simulated workflows per run (default 300)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed workflows per route first (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--pool-size", type=int, default=20, help="connections of each pool, threads of the thread route (default 20)")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    parser.add_argument("--embedded-dir", default=".pgfleet", help="embedded server base dir (default ./.pgfleet)")
    parser.add_argument("--keep-server", action="store_true", help="do not stop an embedded server this run started")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the benchmark database")
    args = parser.parse_args(argv)
    try:
        args.tasks = [int(t) for t in args.tasks.split(",") if t.strip()]
    except ValueError:
        parser.error(f"--tasks must be comma-separated integers, got {args.tasks!r}")
    if not args.tasks or min(args.tasks) < 1 or args.count < 1 or args.warmup < 0 or args.rounds < 1 or args.pool_size < 1:
        parser.error("--tasks, --count, --rounds and --pool-size must be >= 1, --warmup >= 0")

    from sysdb.database import SystemDatabase

    server = common.BenchServer(args.database_url, args.embedded_dir)
    dbname = f"bench_route_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}"
    url = common.with_database(server.url, dbname)
    try:
        common.admin(server.url, f'CREATE DATABASE "{dbname}"')
        db = SystemDatabase(url, pool_size=1)
        db.open()  # pgfleet's schema, as its executors migrate it
        db.close()
        runs = asyncio.run(measure(url, args))
    finally:
        if not args.keep_database:
            common.admin(server.url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        server.close(args.keep_server)
    if args.json:
        print(json.dumps({"server": server.where(), "embedded": server.embedded, "count": args.count,
                          "pool_size": args.pool_size, "runs": runs}, indent=2))
        return 0
    print(f"server {server.where()} ({'embedded, durability on' if server.embedded else 'external server'})  "
          f"{args.count} workflows of {STATEMENTS_PER_WORKFLOW} statements per run, {args.rounds} interleaved rounds, "
          f"pool size {args.pool_size}")
    print(_summary(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
