"""The report of ``queue.py``: the engines' table, the targets, the details, and the drain's
share of the raw bound (``queue_drain.py``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

if __package__:
    from . import common, queue_drain
else:  # loaded by path by queue.py, which has loaded these the same way first
    common = sys.modules["pgfleet_bench_common"]
    queue_drain = sys.modules["pgfleet_bench_queue_drain"]

TARGET_DRAIN_RATIO = 5.0
TARGET_LATENCY_P50_MS = 10.0
TARGET_IDLE_STATEMENTS_PER_S = 2.0


def _ratio(better: float | None, worse: float | None) -> str:
    if not better or not worse:
        return "-"
    return f"{better / worse:.2f}x"


def table(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    """The engines side by side, one row per metric; ratio = how many times better pgfleet is."""
    pg = runs["pgfleet"]
    db = runs.get("dbos")
    header = ["metric", "pgfleet"] + (["dbos", "ratio"] if db else [])
    rows = [header]

    def add(label: str, get: Any, spec: str, higher_is_better: bool) -> None:
        p = get(pg)
        row = [label, common.fmt(p, spec)]
        if db:
            d = get(db)
            row += [common.fmt(d, spec), _ratio(p, d) if higher_is_better else _ratio(d, p)]
        rows.append(row)

    def dig(*path: Any) -> Any:
        def get(run: dict[str, Any]) -> Any:
            value: Any = run
            for key in path:
                if not isinstance(value, dict) or key not in value:
                    return None
                value = value[key]
            return value
        return get

    add("enqueue/s (1 thread)", dig("enqueue_per_s"), ".0f", True)
    for k in args.processes:
        add(f"drain wf/s, {k} process{'es' if k > 1 else ''}", dig("drain", str(k), "drain_per_s"), ".0f", True)
    for k in args.processes:
        add(f"  worker CPU ms/wf, {k} proc", dig("drain", str(k), "worker_cpu_ms_per_wf"), ".2f", False)
    if args.latency_count > 0:
        for interval in args.latency_interval_ms:
            key = f"{interval:g}"
            add(f"enqueue->start p50 ms, every {key} ms", dig("latency", key, "ms_p50"), ".1f", False)
            add(f"enqueue->start p99 ms, every {key} ms", dig("latency", key, "ms_p99"), ".1f", False)
    for q in args.idle_queues:
        add(f"idle statements/s, {q} queue{'s' if q > 1 else ''}", dig("idle", str(q), "statements_per_s"), ".2f", False)
    if args.idle_with_peer and args.idle_queues:
        q = args.idle_queues[0]
        add(f"idle statements/s, {q} queue{'s' if q > 1 else ''}, 2nd executor",
            dig("idle", f"{q}+peer", "statements_per_s"), ".2f", False)
    return common.render_table(rows)


def targets(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """One verdict line per target of the issue (drain ratio, latency p50, idle statements/s)."""
    lines = []
    pg = runs["pgfleet"]
    if "dbos" in runs and "1" in pg["drain"] and "1" in runs["dbos"]["drain"]:
        ratio = pg["drain"]["1"]["drain_per_s"] / runs["dbos"]["drain"]["1"]["drain_per_s"]
        verdict = "ok" if ratio >= TARGET_DRAIN_RATIO else "MISSED"
        lines.append(f"target drain >= {TARGET_DRAIN_RATIO:g}x DBOS with 1 process: {ratio:.2f}x -> {verdict}")
    if pg.get("latency"):
        key = f"{args.latency_interval_ms[0]:g}"
        p50 = pg["latency"][key]["ms_p50"]
        verdict = "ok" if p50 <= TARGET_LATENCY_P50_MS else "MISSED"
        lines.append(f"target enqueue->start p50 <= {TARGET_LATENCY_P50_MS:g} ms (enqueues every {key} ms): "
                     f"{p50:.1f} ms -> {verdict}")
    for idle in pg["idle"].values():
        if "statements_per_s" in idle:
            rate = idle["statements_per_s"]
            verdict = "ok" if rate <= TARGET_IDLE_STATEMENTS_PER_S else "MISSED"
            where = f"{idle['queues']} queue(s)" + (", beside a peer" if idle.get("peer") else ", alone")
            lines.append(f"target idle <= {TARGET_IDLE_STATEMENTS_PER_S:g} statements/s ({where}): "
                         f"{rate:.2f}/s -> {verdict}")
    return lines


def details(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Per engine: each drain's timings and spread, each latency run's percentiles, each idle run."""
    lines = []
    for engine, run in runs.items():
        for k, d in run["drain"].items():
            spread = ", ".join(f"{n}" for n in d["per_executor"].values())
            lines.append(f"{engine} drain {k}p: {d['drain_s']:.2f} s first start -> last completion; "
                         f"release -> first start {d['release_to_first_start_ms']:.0f} ms; per executor [{spread}]; "
                         f"enqueue {d['enqueue']['enqueue_per_s']:.0f}/s (p50 {d['enqueue']['ms_p50']:.2f} ms, "
                         f"p99 {d['enqueue']['ms_p99']:.2f} ms)")
        for lat in run.get("latency", {}).values():
            lines.append(f"{engine} enqueue->start ms: min {lat['ms_min']:.1f} p50 {lat['ms_p50']:.1f} "
                         f"p90 {lat['ms_p90']:.1f} p99 {lat['ms_p99']:.1f} max {lat['ms_max']:.1f} "
                         f"({lat['count']} x every {lat['interval_ms']:g} ms)")
        for idle in run["idle"].values():
            where = f"{idle['queues']} queue(s)" + (", beside a peer" if idle.get("peer") else ", alone")
            if "skipped" in idle:
                lines.append(f"{engine} idle ({where}): not measured: {idle['skipped']}")
                continue
            server = idle.get("server_statements_per_s")
            lines.append(f"{engine} idle ({where}): {idle['statements_per_s']:.2f} statements/s over "
                         f"{idle['seconds']:.1f} s, {idle['connections_opened']} new connections"
                         + (f"; server-side (pg_stat_statements, whole database{', the peer included' if idle.get('peer') else ''}, "
                            f"empty queries not counted) {server:.2f}/s" if server is not None else ""))
            for text, rate in list(idle["by_text_per_s"].items())[:12]:
                lines.append(f"    {rate:6.2f}/s  {text}")
    return lines



def bound_table(bounds: dict[str, Any], runs: dict[str, dict[str, Any]], processes: list[int]) -> str:
    """One row per process count: raw commits/s with as many connections, each engine's share."""
    header = ["processes", "connections", "raw before/after", "raw commits/s"]
    for engine in runs:
        header += [f"{engine} wf/s", f"{engine} writes/s", f"{engine} share"]
    rows = [header]
    per_engine = {engine: queue_drain.shares(bounds, run) for engine, run in runs.items()}
    for k in processes:
        n = queue_drain.bound_connections(k)
        b = bounds.get(str(n))
        if b is None:
            continue
        row = [str(k), str(n), f"{b['before']:,.0f}/{b['after']:,.0f}", f"{b['commits_per_s']:,.0f}"]
        for engine, run in runs.items():
            s = per_engine[engine].get(str(k))
            row += ["-", "-", "-"] if s is None else [
                f"{run['drain'][str(k)]['drain_per_s']:,.0f}", f"{s['writes_per_s']:,.0f}", f"{100.0 * s['share']:.0f} %"]
        rows.append(row)
    return common.render_table(rows)
