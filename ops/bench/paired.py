"""``workflows.py --threads --rounds R``: the engine and its bounds in alternating slices (issue #14).

On a shared machine the server's commit rate moves by tens of percent from one minute to the
next, so a bound measured a minute before (or after) the engine can flatter it or sink it. Here
each engine's worker measures, for every (threads, steps) row, ``R`` rounds of, in order:

1. the raw bound for ``--bound-seconds / R`` seconds (``bound.raw_bound``, its scratch table),
   then the same INSERTs sent through libpq as pgfleet sends its hot statements (prepared, no
   cursor: ``sysdb/direct.py``), for as long: the bound pgfleet's own client path could reach,
2. pgfleet's SQL alone for as long (``sql_alone.sql_alone``; pgfleet's worker only, as the
   statements are read from this checkout's ``sysdb/sql``),
3. the engine: ``count / R`` workflows per thread, released together and timed to the last.

Each round gives its own share (the engine's durable writes/s over the raw bound measured
seconds before it); the row reports the median of the rounds' shares and their range, next to
the shares against the before/after bounds. A slow minute now lowers the bound and the engine
of the same round alike instead of deciding the share.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from typing import Any

if __package__:
    from . import sql_alone
else:  # a script's sibling, loaded by path (common.load_sibling) after sql_alone.py
    sql_alone = sys.modules["pgfleet_bench_sql_alone"]

__all__ = ["paired_rounds", "summary"]


def paired_rounds(
    engine_slice: Callable[[], dict[str, Any]], raw_bound: Callable[..., dict[str, Any]],
    raw_url: str, sql_url: str | None, threads: int, steps: int, rounds: int, slice_seconds: float, writes: int,
) -> list[dict[str, Any]]:
    """``rounds`` x (raw bound on psycopg's cursor and through libpq, SQL alone if ``sql_url``,
    then ``engine_slice()``, the engine's ``threads`` threads); each round's rates."""
    out = []
    for _ in range(rounds):
        raw = raw_bound(raw_url, threads, slice_seconds)["commits_per_s"]
        raw_libpq = raw_bound(raw_url, threads, slice_seconds, through_libpq=True)["commits_per_s"]
        alone = sql_alone.sql_alone(sql_url, threads, steps, slice_seconds)["writes_per_s"] if sql_url else None
        row = engine_slice()
        out.append({"raw": raw, "raw_libpq": raw_libpq, "sql": alone, "engine": row["wf_per_s"] * writes, "row": row})
    return out


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds' shares: engine/raw, engine/raw through libpq, SQL alone/raw and engine/SQL
    alone, each median, min, max."""
    shares = {"engine_share": _spread([r["engine"] / r["raw"] for r in rounds]),
              "libpq_share": _spread([r["engine"] / r["raw_libpq"] for r in rounds])}
    if all(r["sql"] for r in rounds):
        shares["sql_share"] = _spread([r["sql"] / r["raw"] for r in rounds])
        shares["of_sql_alone"] = _spread([r["engine"] / r["sql"] for r in rounds])
    shares["rounds"] = [{k: r[k] for k in ("raw", "raw_libpq", "sql", "engine")} for r in rounds]
    return shares
