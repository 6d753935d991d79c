"""``workflows.py --threads N[,N...]``: workflows from N threads against Postgres's own bound (issue #14).

What is measured
----------------
For each thread count N (``--threads 1,8,32``) and each step count k (``--steps``), in one run
and on one server:

* **the raw bound** -- N threads, each with its own psycopg connection in autocommit mode,
  committing single-row INSERTs into a scratch table for ``--bound-seconds`` seconds. The row is
  the size and shape of a step checkpoint (``dbos.operation_outputs``: a 36-character workflow
  id, a function id, the step's name, a small JSON output, two epoch-ms timestamps and the
  serialization name; primary key on (id, function id) and the same secondary index; no foreign
  key), each connection running them on one kept cursor (psycopg's cheapest path). Reported as
  durable commits/s: what the server takes from N connections, nothing else.
* **the engine** -- one worker process per engine with a pool of N + 4 connections
  (``sys_db_pool_size``), N threads each calling the k-step workflow directly ``--count`` times
  one after the other (so N x count workflows per row), all released together by a barrier and
  timed until the last one finishes. ``--warmup`` calls first, from one thread, not timed.

**Durable writes per workflow** are counted as the issue counts them: 1 (start) + k (one
checkpoint per step) + 1 (finish), so 2, 5 and 12 for 0, 3 and 10 steps. The same nominal count
is used for DBOS (whatever it really writes), so both engines are set against the same bound with
the same yardstick. ``share`` = engine durable writes/s / raw commits/s with N connections.

The raw bound for each N is measured before and again after the engines run (on a shared
machine the server's rate moves with other load; the higher of the two is the bound, so a share
is never flattered by a bound measured during a busy moment), in the parent process, in its own
scratch database ``bench_raw_<stamp>`` (dropped after unless ``--keep-databases``). ``--profile``
is not supported with ``--threads`` (cProfile sees one thread only): profile the sequential run.

With ``--rounds R`` (default 5) each engine's worker also measures every row as R rounds of
bound, SQL alone and engine slice, one after the other in its own process (``paired.py``): the
median of the rounds' shares is the figure a shared machine's slow minutes move least.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

if __package__:
    from . import common, sql_alone
    from . import paired as pairing
else:  # loaded by path by workflows.py, which has loaded common.py, sql_alone.py and paired.py the same way first
    common = sys.modules["pgfleet_bench_common"]
    sql_alone = sys.modules["pgfleet_bench_sql_alone"]
    pairing = sys.modules["pgfleet_bench_paired"]

RAW_TABLE_DDL = """
CREATE TABLE bench_raw_outputs (
    workflow_uuid TEXT NOT NULL,
    function_id INTEGER NOT NULL,
    function_name TEXT NOT NULL DEFAULT '',
    output TEXT,
    error TEXT,
    started_at_epoch_ms BIGINT,
    completed_at_epoch_ms BIGINT,
    serialization TEXT,
    PRIMARY KEY (workflow_uuid, function_id)
);
CREATE INDEX ON bench_raw_outputs (completed_at_epoch_ms, function_name);
"""
RAW_INSERT = (
    "INSERT INTO bench_raw_outputs (workflow_uuid, function_id, function_name, output, error,"
    " started_at_epoch_ms, completed_at_epoch_ms, serialization) VALUES (%s, %s, %s, %s, NULL, %s, %s, %s)"
)
POOL_HEADROOM = 4  # the engine's own connections (heartbeat, listener ...) beside one per thread


def writes_per_workflow(steps: int) -> int:
    """Durable writes of one k-step workflow, counted as issue #14 does: start + k + finish."""
    return steps + 2


def parse_threads(parser: Any, threads: str | None, profile: str | None) -> list[int]:
    """``--threads`` as a list of thread counts (empty without it); a parser error if malformed."""
    try:
        counts = [int(s) for s in threads.split(",") if s.strip()] if threads else []
    except ValueError:
        parser.error(f"--threads must be comma-separated integers, got {threads!r}")
    if any(n < 1 for n in counts) or (threads and (not counts or profile)):
        parser.error("--threads must be positive integers, and cannot be combined with --profile")
    return counts


# ---------------------------------------------------------------------------------- raw bound


def _insert_on_cursor(conn: Any, slot: int, stopped: Callable[[], bool]) -> int:
    wf, n, cur = str(uuid.uuid4()), 0, conn.cursor()  # one cursor kept, psycopg's cheapest public path
    while not stopped():
        now = int(time.time() * 1000)
        cur.execute(RAW_INSERT, (wf, n, "bench_step", '{"value": 4}', now, now, "json"))
        n += 1
    return n


def _insert_through_libpq(conn: Any, slot: int, stopped: Callable[[], bool]) -> int:
    # The INSERT prepared once and sent as pgfleet sends its hot statements (sysdb/direct.py).
    from psycopg import generators, pq

    pgconn, wf, n = conn.pgconn, str(uuid.uuid4()).encode(), 0
    if pgconn.prepare(b"bench_raw_insert", _numbered(RAW_INSERT).encode()).status != pq.ExecStatus.COMMAND_OK:
        raise RuntimeError(f"preparing the raw INSERT failed: {pgconn.get_error_message()}")
    while not stopped():
        now = str(int(time.time() * 1000)).encode()
        pgconn.send_query_prepared(b"bench_raw_insert", [wf, str(n).encode(), b"bench_step", b'{"value": 4}', now, now, b"json"])
        result = conn.wait(generators.execute(pgconn))[-1]
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise RuntimeError(f"the raw INSERT failed: {(result.error_message or b'').decode()}")
        n += 1
    return n


def _numbered(query: str) -> str:
    """``%s`` placeholders as ``$1 .. $n``."""
    parts = query.split("%s")
    return "".join(part + (f"${i + 1}" if i < len(parts) - 1 else "") for i, part in enumerate(parts))


def raw_bound(url: str, threads: int, seconds: float, *, through_libpq: bool = False) -> dict[str, Any]:
    """Durable single-row autocommit INSERTs/s that ``threads`` connections get from the server:
    on psycopg's kept cursor (issue #14's bound), or ``through_libpq`` as pgfleet's own hot
    statements are sent (prepared once, no cursor)."""
    insert_rows = _insert_through_libpq if through_libpq else _insert_on_cursor
    commits, elapsed = common.timed_connections(url, threads, seconds, {"autocommit": True}, insert_rows)
    return {"threads": threads, "commits": commits, "elapsed_s": elapsed, "commits_per_s": commits / elapsed}


def scratch_database(server_url: str, dbname: str) -> str:
    """A fresh database ``dbname`` holding the raw bound's table; its URL."""
    import psycopg

    url = common.with_database(server_url, dbname)
    common.admin(server_url, f'DROP DATABASE IF EXISTS "{dbname}"')
    common.admin(server_url, f'CREATE DATABASE "{dbname}"')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(RAW_TABLE_DDL)
    return url


def measure_bounds(url: str, thread_counts: list[int], seconds: float, when: str) -> dict[str, Any]:
    """The raw bound for every thread count, in the scratch database at ``url``."""
    bounds = {}
    for n in thread_counts:
        print(f"[bench] raw bound ({when}): {n} connection(s), {seconds:g} s ...", file=sys.stderr, flush=True)
        bounds[str(n)] = raw_bound(url, n, seconds)
    return bounds


def merge_bounds(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Both measurements per N; the bound is the higher (the server could do that much, with this load)."""
    return {n: {"before": before[n]["commits_per_s"], "after": after[n]["commits_per_s"],
                "commits_per_s": max(before[n]["commits_per_s"], after[n]["commits_per_s"])} for n in before}


# ---------------------------------------------------------------------------------- worker


def _threaded_row(wf: Any, expected: int, threads: int, count: int) -> dict[str, Any]:
    """N threads each calling ``wf`` ``count`` times, released together; timed to the last one."""
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        perf, mine = time.perf_counter, latencies[slot]
        try:
            barrier.wait()
            for _ in range(count):
                t = perf()
                if wf() != expected:
                    raise AssertionError("a workflow returned a wrong result")
                mine.append(perf() - t)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    merged = sorted(x for lat in latencies for x in lat)
    total = threads * count
    return {"threads": threads, "count": total, "elapsed_s": elapsed, "wf_per_s": total / elapsed,
            "ms_per_wf_median": 1000.0 * statistics.median(merged), "ms_per_wf_p99": 1000.0 * merged[int(0.99 * (len(merged) - 1))]}


def _merged(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds' engine slices as one row (their median latencies' median, their worst p99)."""
    count, elapsed = sum(r["count"] for r in rows), sum(r["elapsed_s"] for r in rows)
    return {"threads": rows[0]["threads"], "count": count, "elapsed_s": elapsed, "wf_per_s": count / elapsed,
            "ms_per_wf_median": statistics.median(r["ms_per_wf_median"] for r in rows),
            "ms_per_wf_p99": max(r["ms_per_wf_p99"] for r in rows)}


def run_threads_worker(setup_engine: Callable[..., Any], emit: Callable[[dict[str, Any]], None], engine: str, url: str,
                       count: int, warmup: int, step_counts: list[int], thread_counts: list[int],
                       paired: dict[str, Any] | None = None) -> None:
    """The worker side of ``--threads``: every (N, k) row with one engine, one result line.
    With ``paired`` (``rounds``, ``seconds``, ``raw_url``, ``sql_url``), each row is that many
    rounds of bound, SQL alone and engine slice (``paired.py``)."""
    DBOS, workflows, info = setup_engine(engine, url, step_counts, False, max(thread_counts) + POOL_HEADROOM)
    results: dict[str, Any] = {}
    try:
        for n in thread_counts:
            for k in step_counts:
                expected = sum(i + 1 for i in range(k))
                for _ in range(warmup):
                    workflows[k]()
                if paired is None:
                    row = _threaded_row(workflows[k], expected, n, count)
                else:
                    rounds = paired["rounds"]
                    per_round = max(1, count // rounds)
                    slices = pairing.paired_rounds(
                        lambda wf=workflows[k], want=expected, threads=n, each=per_round: _threaded_row(wf, want, threads, each),
                        raw_bound, paired["raw_url"], paired["sql_url"], n, k, rounds, paired["seconds"] / rounds,
                        writes_per_workflow(k))
                    row = _merged([s["row"] for s in slices])
                    row["paired"] = pairing.summary(slices)
                row["steps"] = k
                row["writes_per_s"] = row["wf_per_s"] * writes_per_workflow(k)
                results[f"{n}:{k}"] = row
    finally:
        DBOS.destroy()
    emit({**info, "threads": thread_counts, "pool_size": max(thread_counts) + POOL_HEADROOM, "results": results})


# ---------------------------------------------------------------------------------- table


def _pct(spread: dict[str, float] | None) -> str:
    """A paired share as ``median (min-max) %``; ``-`` without one."""
    if spread is None:
        return "-"
    return f"{100 * spread['median']:.0f} ({100 * spread['min']:.0f}-{100 * spread['max']:.0f}) %"


def table(bounds: dict[str, Any], sql: dict[str, Any], runs: dict[str, Any], step_counts: list[int], thread_counts: list[int]) -> str:
    """One row per (threads, steps): raw commits/s, pgfleet's SQL alone (``sql_alone.py``), then
    each engine's wf/s, writes/s and share (pgfleet's also as a share of its SQL alone); with
    paired rounds, each engine's median share of the rounds (``paired.py``) too."""
    paired = any("paired" in r for run in runs.values() for r in run["results"].values())
    header = ["threads", "steps", "writes/wf", "raw before/after", "raw commits/s", "SQL alone writes/s", "SQL alone share"]
    for engine in runs:
        header += [f"{engine} wf/s", f"{engine} writes/s", f"{engine} share"] + (["of SQL alone"] if engine == "pgfleet" else [])
    if paired:
        header += (["paired: SQL alone share"] + [f"paired: {engine} share" for engine in runs]
                   + ["paired: pgfleet of SQL alone", "paired: pgfleet share of libpq bound"])
    rows = [header]
    for n in thread_counts:
        raw = bounds[str(n)]["commits_per_s"]
        for k in step_counts:
            b, alone = bounds[str(n)], sql[f"{n}:{k}"]["writes_per_s"]
            row = [str(n), str(k), str(writes_per_workflow(k)), f"{b['before']:,.0f}/{b['after']:,.0f}", f"{raw:,.0f}",
                   f"{alone:,.0f}", common.fmt(100.0 * alone / raw, ".0f") + " %"]
            for engine, run in runs.items():
                r = run["results"].get(f"{n}:{k}")
                row += ["-", "-", "-"] if r is None else [
                    f"{r['wf_per_s']:,.1f}", f"{r['writes_per_s']:,.0f}", common.fmt(100.0 * r["writes_per_s"] / raw, ".0f") + " %"]
                if engine == "pgfleet":
                    row.append("-" if r is None else common.fmt(100.0 * r["writes_per_s"] / alone, ".0f") + " %")
            if paired:
                rounds = {engine: run["results"].get(f"{n}:{k}", {}).get("paired") or {} for engine, run in runs.items()}
                row.append(_pct(rounds.get("pgfleet", {}).get("sql_share")))
                row += [_pct(rounds[engine].get("engine_share")) for engine in runs]
                row.append(_pct(rounds.get("pgfleet", {}).get("of_sql_alone")))
                row.append(_pct(rounds.get("pgfleet", {}).get("libpq_share")))
            rows.append(row)
    return common.render_table(rows)


# ---------------------------------------------------------------------------------- parent


def _measure(args: Any, server_url: str, stamp: str, step_counts: list[int], thread_counts: list[int],
             run_engine: Callable[..., dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The raw bounds and pgfleet's SQL alone before the engines, the engines, then both again."""
    raw_db, sql_db = f"bench_raw_{stamp}", f"bench_sql_{stamp}"
    runs: dict[str, Any] = {}
    try:
        raw_url = scratch_database(server_url, raw_db)
        sql_url = sql_alone.scratch_system_database(server_url, sql_db)
        args.raw_url, args.sql_url = raw_url, sql_url  # for the engines' paired rounds (--rounds)
        before = measure_bounds(raw_url, thread_counts, args.bound_seconds, "before the engines")
        sql_before = sql_alone.measure(sql_url, thread_counts, step_counts, args.bound_seconds, "before the engines")
        runs["pgfleet"] = run_engine("pgfleet", sys.executable, server_url, f"bench_pgfleet_{stamp}", args, step_counts)
        if args.dbos_python:
            runs["dbos"] = run_engine("dbos", args.dbos_python, server_url, f"bench_dbos_{stamp}", args, step_counts)
        bounds = merge_bounds(before, measure_bounds(raw_url, thread_counts, args.bound_seconds, "after the engines"))
        sql = sql_alone.merge(sql_before, sql_alone.measure(sql_url, thread_counts, step_counts, args.bound_seconds, "after the engines"))
    finally:
        if not args.keep_databases:
            for db in (raw_db, sql_db):
                common.admin(server_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return bounds, sql, runs


def run_parent(args: Any, step_counts: list[int], thread_counts: list[int], run_engine: Callable[..., dict[str, Any]]) -> int:
    """The parent side of ``--threads``: the raw bounds and SQL alone, each engine's worker, the table."""
    import json
    import os

    bench_server = common.BenchServer(args.database_url, args.embedded_dir)
    server_url = str(bench_server.url)  # set: BenchServer falls back to the embedded server
    stamp = time.strftime("%Y%m%d_%H%M%S") + f"_{os.getpid()}"
    try:
        bounds, sql, runs = _measure(args, server_url, stamp, step_counts, thread_counts, run_engine)
    finally:
        bench_server.close(args.keep_server)
    if args.json:
        print(json.dumps({"server": bench_server.where(), "embedded": bench_server.embedded, "bounds": bounds,
                          "sql_alone": sql, "runs": runs}, indent=2))
        return 0
    print(f"server {bench_server.where()}  threads {thread_counts}  count {args.count} per thread  warmup {args.warmup}  "
          f"raw bound {args.bound_seconds:g} s per N  ({'embedded, durability on' if bench_server.embedded else 'external server'})")
    for engine, run in runs.items():
        print(f"{engine}: {run['version']} on python {run['python']}, pool {run['pool_size']}, launch {run['launch_s']:.2f} s")
    print("writes/wf = 1 start + 1 per step + 1 finish (issue #14's count, used for both engines); "
          "share = writes/s / raw commits/s with as many connections as threads "
          "(the higher of the bound measured before and after the engines); SQL alone = pgfleet's own "
          "statements for the workflow sent by bare psycopg, no pgfleet code (sql_alone.py; higher of before/after)")
    if args.rounds:
        print(f"paired: the median (and range) of {args.rounds} rounds' shares, each round a {args.bound_seconds / args.rounds:g} s "
              f"bound, as long a bound through libpq (the INSERTs sent as pgfleet sends its hot statements), a "
              f"{args.bound_seconds / args.rounds:g} s SQL alone and {max(1, args.count // args.rounds)} workflows per thread, "
              "in that order, in the engine's process (paired.py)")
    print()
    print(table(bounds, sql, runs, step_counts, thread_counts))
    return 0
