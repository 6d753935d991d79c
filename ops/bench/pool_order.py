"""The pool's order: most recently returned connection first, or first in first out (issue #14).

    .venv/bin/python ops/bench/pool_order.py --embedded-dir /tmp/bench-pg --threads 1,8 --pairs 8

pgfleet is launched in this process with a pool of ``--pool-size`` connections, and a burst of
as many threads grows the pool to all of them (what a busy minute leaves behind). Then, for each
thread count, ``--pairs`` pairs of rounds of 3-step workflows called directly, one round with
``sysdb.recent_first_pool.RecentFirstPool``'s order (the shipped one) and one with
psycopg_pool's own (first in, first out: its ``_get_ready_connection`` put back on the class),
the order inside each pair alternating. Both orders run in one process, minutes apart at most,
so a slow moment of the machine hits both alike; each pair gives a ratio and the median ratio
is printed with how many pairs the shipped order won.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Run as a file, this directory is sys.path[0] and its queue.py would shadow the standard library's.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != str(_HERE)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="Postgres server URL (default: the embedded server)")
    parser.add_argument("--embedded-dir", default=".pgfleet", help="embedded server base dir (default ./.pgfleet)")
    parser.add_argument("--threads", default="1,8", help="comma-separated thread counts (default 1,8)")
    parser.add_argument("--pool-size", type=int, default=16, help="sys_db_pool_size, all grown first (default 16)")
    parser.add_argument("--pairs", type=int, default=8, help="pairs of rounds per thread count (default 8)")
    parser.add_argument("--count", type=int, default=800, help="workflows per round (default 800)")
    args = parser.parse_args(argv)
    thread_counts = [int(n) for n in args.threads.split(",") if n.strip()]

    sys.path.append(str(_HERE))  # last: its queue.py must not shadow the standard library's
    import client_cpu

    with client_cpu.launched(args.database_url, args.embedded_dir, _HERE.parent.parent, "pool_order",
                             pool_size=args.pool_size) as (_url, workflow):
        from psycopg_pool import ConnectionPool

        from sysdb.recent_first_pool import RecentFirstPool

        orders = {"recent first": RecentFirstPool._get_ready_connection, "FIFO": ConnectionPool._get_ready_connection}
        client_cpu._round(workflow, args.pool_size, 50 * args.pool_size)  # the burst: every connection opened
        for threads in thread_counts:
            walls: dict[str, list[float]] = {name: [] for name in orders}
            for pair in range(args.pairs):
                for name in (list(orders) if pair % 2 == 0 else list(reversed(orders))):
                    RecentFirstPool._get_ready_connection = orders[name]  # type: ignore[method-assign]
                    walls[name].append(client_cpu._round(workflow, threads, args.count)[0])
            RecentFirstPool._get_ready_connection = orders["recent first"]  # type: ignore[method-assign]
            ratios = [new / old for new, old in zip(walls["recent first"], walls["FIFO"])]
            print(f"threads {threads}, pool {args.pool_size}: recent first {statistics.median(walls['recent first']):,.0f} us/wf, "
                  f"FIFO {statistics.median(walls['FIFO']):,.0f} (medians); recent first / FIFO per pair: median "
                  f"{statistics.median(ratios):.2f}, faster in {sum(r < 1 for r in ratios)} of {len(ratios)} pairs", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
