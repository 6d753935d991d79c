"""Retention benchmark (issue #13): claim cost and prune-batch cost on a system database holding
``--rows`` finished workflows (1 M by default), before and after pruning them.

    python ops/bench/retention.py --database-url postgresql://postgres@127.0.0.1:36991/postgres

It creates a scratch database on that server (dropped at the end unless ``--keep``), fills
``dbos.workflow_status`` and ``dbos.operation_outputs`` with ``generate_series`` (``--old-share``
of the workflows older than the 30-day cutoff, the rest younger, one step each), then measures:

- the claim cost: ``--claims`` claims of ``--max-claim`` workflows each, through the claim door
  (``db.claims.claim``: queue lock + ``claim_queued_workflows``) for a registered member, from a
  queue of ENQUEUED workflows added for the purpose (removed afterwards);
- a prune batch's cost: ``--batches`` batches of ``--batch`` through ``db.retention.prune_batch``
  (the CLI's statement), plus the plan of one batch (EXPLAIN ANALYZE in a rolled-back
  transaction) to show it reads an index range, not the table;

then prunes every old workflow (timed, batch by batch), VACUUM ANALYZEs and measures again.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # ops/bench/queue.py would shadow the standard library's ``queue`` for a script run from
    # this directory: take the directory off sys.path, and put the repository on it.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from sysdb import SystemDatabase  # noqa: E402
from sysdb.claims import ClaimRequest  # noqa: E402
from sysdb.members import Registration  # noqa: E402
from sysdb.retention import PRUNABLE_STATUSES  # noqa: E402
from sysdb.statements import statement  # noqa: E402

DAY_MS = 86_400_000
CUTOFF_DAYS = 30
QUEUE = "rbench"
EXECUTOR = "rbench-claimer"


def _fill(url: str, rows: int, old_share: float) -> float:
    """``rows`` finished workflows with one step each; returns the seconds it took."""
    started = time.perf_counter()
    old = int(rows * old_share)
    with psycopg.connect(url, autocommit=True) as conn:
        now_ms = int(conn.execute("SELECT (extract(epoch FROM now()) * 1000)::bigint").fetchone()[0])  # type: ignore[index]
        # Old rows spread over days 31..91 ago, young ones over the last 29 days; statuses mixed.
        conn.execute(
            "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, executor_id, application_version, "
            "created_at, updated_at, started_at_epoch_ms, completed_at, recovery_attempts, output) "
            "SELECT 'hist-' || g, (ARRAY['SUCCESS','SUCCESS','SUCCESS','ERROR','CANCELLED'])[1 + g %% 5], 'rbench_wf', 'history', "
            "'rbench-history', 'v1', t, t + 5, t, t + 5, 1, 'gAAAAA==' "
            "FROM generate_series(1, %(rows)s) AS g, "
            "LATERAL (SELECT CASE WHEN g <= %(old)s THEN %(now)s - (31 * %(day)s::bigint) - (g::bigint * 60 * %(day)s::bigint / %(rows)s) "
            "ELSE %(now)s - (g::bigint * 29 * %(day)s::bigint / %(rows)s) END AS t) AS ts",
            {"rows": rows, "old": old, "now": now_ms, "day": DAY_MS},
        )
        conn.execute(
            "INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, function_name, output, started_at_epoch_ms, completed_at_epoch_ms) "
            "SELECT workflow_uuid, 0, 'rbench_step', 'gAAAAA==', created_at, created_at + 1 FROM dbos.workflow_status"
        )
        conn.execute("VACUUM ANALYZE dbos.workflow_status")
        conn.execute("VACUUM ANALYZE dbos.operation_outputs")
    return time.perf_counter() - started


def _register(db: SystemDatabase) -> int:
    epoch = db.members.draw_epoch()
    db.members.register(Registration(
        executor_id=EXECUTOR, epoch=epoch, host="bench", pid=os.getpid(), supervisor_id=None, application_name="rbench",
        application_version="v1", queues=[QUEUE], queue_limits=None, workflow_names=["rbench_wf"], member_timeout_sec=3600.0,
        replace_epoch=None,
    ))
    return epoch


def _claim_cost(db: SystemDatabase, url: str, epoch: int, claims: int, max_claim: int) -> dict[str, Any]:
    """ms per claim of ``max_claim`` workflows from a queue of ``claims * max_claim``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, application_version, created_at, updated_at) "
            "SELECT 'rq-' || g, 'ENQUEUED', 'rbench_wf', %s, 'v1', (extract(epoch FROM now()) * 1000)::bigint + g, "
            "(extract(epoch FROM now()) * 1000)::bigint FROM generate_series(1, %s) AS g",
            (QUEUE, claims * max_claim),
        )
    request = ClaimRequest(
        queue_name=QUEUE, partition_key=None, executor_id=EXECUTOR, member_epoch=epoch, application_version="v1",
        workflow_names=["rbench_wf"], max_claim=max_claim, concurrency=None, worker_concurrency=None,
        rate_limit=None,
    )
    times, claimed = [], 0
    for _ in range(claims):
        started = time.perf_counter()
        claimed += len(db.claims.claim(request))
        times.append((time.perf_counter() - started) * 1000)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM dbos.workflow_status WHERE queue_name = %s", (QUEUE,))
    return {"claims": claims, "claimed": claimed, "p50_ms": statistics.median(times), "mean_ms": statistics.fmean(times),
            "p95_ms": sorted(times)[int(0.95 * (len(times) - 1))]}


def _prune_cost(db: SystemDatabase, batches: int, batch: int) -> dict[str, Any]:
    times, deleted = [], 0
    after = 0
    for _ in range(batches):
        started = time.perf_counter()
        result = db.retention.prune_batch(CUTOFF_DAYS * DAY_MS, PRUNABLE_STATUSES, batch, after)
        times.append((time.perf_counter() - started) * 1000)
        deleted += result.workflows
        after = result.last_created_at or 0
    return {"batches": batches, "deleted": deleted, "p50_ms": statistics.median(times), "mean_ms": statistics.fmean(times),
            "p95_ms": sorted(times)[int(0.95 * (len(times) - 1))]}


def _plan(url: str, batch: int) -> str:
    """The plan of one prune batch, executed and rolled back."""
    params = {"older_than_ms": CUTOFF_DAYS * DAY_MS, "statuses": list(PRUNABLE_STATUSES), "batch_size": batch, "after_ms": 0}
    with psycopg.connect(url) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement("prune_workflows"), params).fetchall()
        conn.rollback()
    # The lines that say how each table is read (the CTE scans and aggregates are in memory).
    keep = ("Scan on", "Scan using", "Index Cond", "Execution Time", "Planning Time")
    return "\n".join(r[0] for r in rows if any(k in r[0] for k in keep) and "CTE Scan" not in r[0])


def _prune_all(db: SystemDatabase, batch: int) -> tuple[int, float, int]:
    started, total, count, after = time.perf_counter(), 0, 0, 0
    while True:
        result = db.retention.prune_batch(CUTOFF_DAYS * DAY_MS, PRUNABLE_STATUSES, batch, after)
        total += result.workflows
        count += 1
        if result.workflows < batch or result.last_created_at is None:
            return total, time.perf_counter() - started, count
        after = result.last_created_at


def _measure(label: str, db: SystemDatabase, url: str, epoch: int, args: argparse.Namespace) -> dict[str, Any]:
    # Two claim runs each time: the first after a fill or a prune meets a colder cache (and on
    # a shared machine, whatever else runs); both are reported.
    claims = [_claim_cost(db, url, epoch, args.claims, args.max_claim) for _ in range(2)]
    prune = _prune_cost(db, args.batches, args.batch) if label == "before" else _prune_cost(db, 5, args.batch)
    print(f"[bench] {label}: claims {claims}; prune {prune}", file=sys.stderr, flush=True)
    return {"claims": claims, "prune": prune}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a server to create the scratch database on")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--old-share", type=float, default=0.9, help="share of the rows older than the 30-day cutoff")
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--max-claim", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batches", type=int, default=20, help="timed prune batches before the full prune")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    name = f"pgfleet_bench_retention_{os.getpid()}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(args.database_url, dbname=name)
    db = SystemDatabase(url, pool_size=2)
    try:
        db.open()
        epoch = _register(db)
        print(f"[bench] filled {args.rows} workflows in {_fill(url, args.rows, args.old_share):.1f}s", file=sys.stderr, flush=True)
        before = _measure("before", db, url, epoch, args)
        plan = _plan(url, args.batch)
        pruned, seconds, batches = _prune_all(db, args.batch)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE dbos.workflow_status")
            conn.execute("VACUUM ANALYZE dbos.operation_outputs")
        after = _measure("after", db, url, epoch, args)
        _report(args, before, after, plan, pruned + before["prune"]["deleted"], seconds, batches)
    finally:
        db.close()
        if not args.keep:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _report(args: argparse.Namespace, before: dict[str, Any], after: dict[str, Any], plan: str, pruned: int, seconds: float,
            batches: int) -> None:
    print(f"rows {args.rows}, old share {args.old_share}, batch {args.batch}, claims of {args.max_claim}")
    print("| phase | claim p50 ms (run 1 / 2) | claim p95 ms (run 1 / 2) | prune batch p50 ms | prune batch p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for label, m in ((f"before ({args.rows} rows)", before), ("after pruning", after)):
        c1, c2 = m["claims"]
        print(f"| {label} | {c1['p50_ms']:.2f} / {c2['p50_ms']:.2f} | {c1['p95_ms']:.2f} / {c2['p95_ms']:.2f} | "
              f"{m['prune']['p50_ms']:.2f} | {m['prune']['p95_ms']:.2f} |")
    print(f"full prune: {pruned} workflows in {batches} batches, {seconds:.1f}s "
          f"({pruned / seconds if seconds else 0:.0f} workflows/s)")
    print("plan of one batch:")
    print(plan)


if __name__ == "__main__":
    main()
