"""Where the server's bound stops pgfleet's statements: the schema, the fence, or the client (issue #14).

    .venv/bin/python ops/bench/ceiling.py --embedded-dir /tmp/bench-pg --threads 1,8 --rounds 6

What is measured
----------------
For each thread count N, ``--rounds`` rounds of six variants, each ``--seconds`` long, their
order rotated from round to round (a slow minute of a shared machine hits every variant alike).
N threads, each with its own connection, commit in autocommit mode:

* **bound, cursor** -- issue #14's raw bound (``bound.py``): single-row INSERTs on one kept
  psycopg cursor;
* **bound, libpq** -- the same INSERT prepared once and sent as pgfleet sends its hot statements
  (``sysdb/direct.py``);
* **SQL alone** -- pgfleet's statements for a 3-step workflow (``sql_alone.py``: start, three
  fenced step checkpoints, finish) into a system database pgfleet migrated;
* **SQL alone, through libpq** -- the same statements sent as pgfleet's connections send them
  (``DictConnection.run_named``, ``sysdb/direct.py``): what pgfleet would reach if the rest of
  its Python cost nothing;
* **no secondary indexes** -- the same, into a database whose non-unique secondary indexes on
  ``workflow_status`` and ``operation_outputs`` were dropped (DBOS's and pgfleet's): what the
  indexes cost;
* **no fence lock** -- the same, with the step checkpoint's ``FOR SHARE`` taken out: what the
  fence's row lock costs. (Never a way to run: the lock is what makes a takeover wait.)

Per variant: durable writes/s (the issue's count: 5 per 3-step workflow), its share of the
cursor bound in the same round, and the client's CPU per write -- this process's
``time.process_time`` over the writes; the threads are all this process runs. How to read it:
the indexes and the lock cost what their variants gain; the libpq variants show what the
client's CPU per statement costs; at about equal client CPU per write, the cursor bound and SQL
alone through libpq differ by the server's work on pgfleet's statements. The databases are dropped
after; an embedded server this started is left running (``pgfleet db stop`` stops it).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __name__ == "__main__":
    # Run as a file, this directory is sys.path[0] and its queue.py would shadow the standard library's.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

if __package__:
    from . import bound, common, sql_alone
else:  # a script: common by path, then its siblings through it, in dependency order (as workflows.py)
    _spec = importlib.util.spec_from_file_location("pgfleet_bench_common", Path(__file__).resolve().parent / "common.py")
    assert _spec is not None and _spec.loader is not None
    common = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = common
    _spec.loader.exec_module(common)
    sql_alone = common.load_sibling("sql_alone")
    common.load_sibling("paired")
    bound = common.load_sibling("bound")

STEPS = 3
FENCE_LOCK = "    FOR SHARE\n"
# The secondary indexes a direct 3-step workflow writes into: every non-unique one. The unique
# ones stay: the primary keys are what the statements look rows up by, and the other unique
# indexes are partial and match none of these rows.
SECONDARY_INDEXES = """
SELECT format('%I.%I', schemaname, indexname)
FROM pg_indexes
WHERE schemaname = 'dbos' AND tablename IN ('workflow_status', 'operation_outputs')
  AND indexdef NOT LIKE 'CREATE UNIQUE INDEX%'
"""


def _without_indexes(url: str) -> int:
    """Drop the secondary indexes of :data:`SECONDARY_INDEXES` in the database at ``url``; how many."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        names = [row[0] for row in conn.execute(SECONDARY_INDEXES).fetchall()]
        for name in names:
            conn.execute(f"DROP INDEX {name}")
    return len(names)


Variant = Callable[[int, float], tuple[int, float]]  # (threads, seconds) -> (writes, elapsed seconds)


def _variants(server_url: str, stamp: str) -> tuple[dict[str, Variant], list[str]]:
    """The variants by name, and the databases they made."""
    names = [f"ceiling_raw_{stamp}", f"ceiling_full_{stamp}", f"ceiling_bare_{stamp}"]
    raw_url = bound.scratch_database(server_url, names[0])
    full_url = sql_alone.scratch_system_database(server_url, names[1])
    bare_url = sql_alone.scratch_system_database(server_url, names[2])
    dropped = _without_indexes(bare_url)
    print(f"[bench] dropped {dropped} secondary indexes for 'no secondary indexes'", file=sys.stderr, flush=True)
    unlocked = sql_alone.hot_statements()
    if FENCE_LOCK not in unlocked["record_step_output"]:
        raise SystemExit("record_step_output.sql has no 'FOR SHARE' line any more: update ceiling.py")
    unlocked["record_step_output"] = unlocked["record_step_output"].replace(FENCE_LOCK, "")

    def workflows(url: str, statements: dict[str, str] | None = None, through_libpq: bool = False) -> Variant:
        def run(n: int, s: float) -> tuple[int, float]:
            row = sql_alone.sql_alone(url, n, STEPS, s, statements=statements, through_libpq=through_libpq)
            return int(row["workflows"]) * (STEPS + 2), float(row["elapsed_s"])
        return run

    def inserts(through_libpq: bool) -> Variant:
        def run(n: int, s: float) -> tuple[int, float]:
            row = bound.raw_bound(raw_url, n, s, through_libpq=through_libpq)
            return int(row["commits"]), float(row["elapsed_s"])
        return run

    variants = {
        "bound, cursor": inserts(False),
        "bound, libpq": inserts(True),
        "SQL alone": workflows(full_url),
        "SQL alone, through libpq": workflows(full_url, through_libpq=True),
        "no secondary indexes": workflows(bare_url),
        "no fence lock": workflows(full_url, unlocked),
    }
    return variants, names


def _measure(variants: dict[str, Variant], threads: int, seconds: float,
             rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Per variant, each round's (writes/s, client CPU us per write), the order rotated per round."""
    order = list(variants)
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in order}
    for r in range(rounds):
        for name in order[r % len(order):] + order[:r % len(order)]:
            print(f"[bench] round {r + 1}/{rounds}, {threads} connection(s): {name} ...", file=sys.stderr, flush=True)
            cpu = time.process_time()
            writes, elapsed = variants[name](threads, seconds)
            out[name].append((writes / elapsed, (time.process_time() - cpu) / max(writes, 1) * 1e6))
    return out


def _table(threads: int, results: dict[str, list[tuple[float, float]]]) -> str:
    bounds = [rate for rate, _ in results["bound, cursor"]]
    rows = [["variant", "writes/s: median (range)", "share of the cursor bound (median of rounds)", "client CPU us/write"]]
    for name, runs in results.items():
        rates = [rate for rate, _ in runs]
        shares = [rate / bound for rate, bound in zip(rates, bounds)]
        rows.append([name, f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})",
                     f"{statistics.median(shares) * 100:.0f} %", f"{statistics.median(c for _, c in runs):.0f}"])
    return f"{threads} connection(s):\n" + common.render_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="Postgres server URL (default: the embedded server)")
    parser.add_argument("--embedded-dir", default=".pgfleet", help="embedded server base dir (default ./.pgfleet)")
    parser.add_argument("--threads", default="1,8", help="comma-separated thread counts (default 1,8)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of every variant per thread count (default 6)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per variant per round (default 3)")
    args = parser.parse_args(argv)
    thread_counts = [int(n) for n in args.threads.split(",") if n.strip()]

    server = common.BenchServer(args.database_url, args.embedded_dir)
    variants, databases = _variants(str(server.url), str(os.getpid()))
    try:
        for threads in thread_counts:
            print(_table(threads, _measure(variants, threads, args.seconds, args.rounds)), flush=True)
    finally:
        for name in databases:
            common.admin(str(server.url), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.close(keep_server=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
