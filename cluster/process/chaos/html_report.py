"""``pgfleet chaos --report FILE.html``: one self-contained page (inline CSS and SVG, no script,
no external file) with the verdict and the repro command, the timeline, the invariant and
latency tables, the violations with their evidence, and the fault log.

Every value is escaped (``html.escape``): workflow ids, evidence and fault details come from the
app and the database, and a workflow id holding ``<script>`` must read as text. Large runs stay
readable: the timeline caps its arrows (html_timeline.MAX_ARROWS) and the page caps the
violations and evidence rows shown, each time saying how many it left out (the JSON has all).
"""

from __future__ import annotations

import datetime
import html
import os
from typing import Any

from cluster.process.chaos.html_timeline import kind_class, render_timeline
from cluster.process.chaos.model import FAULT_KINDS, ChaosResult, FaultRecord, InvariantResult, Violation
from cluster.process.chaos.render import as_row, clock, describe_row, faults_by_kind, show_value, status_of, verdict

__all__ = ["render_html", "write_html", "VIOLATIONS_SHOWN", "EVIDENCE_ROWS_SHOWN"]

VIOLATIONS_SHOWN = 50
EVIDENCE_ROWS_SHOWN = 40

_COLOURS = {
    "kill-node": "#d62728", "kill-worker": "#ff7f0e", "pause-node": "#9467bd", "pause-worker": "#c5b0d5",
    "partition": "#8c564b", "restart-db": "#1f77b4", "terminate-backends": "#17becf", "other": "#7f7f7f",
}

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 6px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.verdict { padding: 2px 10px; border-radius: 4px; color: #fff; } .passed { background: #2a7d2e; } .failed { background: #b3261e; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 10px 0; } dt { color: #666; }
pre.command { background: #f4f4f4; padding: 8px 10px; white-space: pre-wrap; word-break: break-all; border-radius: 4px; }
table { border-collapse: collapse; margin: 6px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.key, td.status { white-space: nowrap; }
td.mono, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
tr.FAIL td.status { color: #b3261e; font-weight: bold; } tr.PASS td.status { color: #2a7d2e; }
tr.not-checked td.status { color: #8a6d00; }
.violation { margin: 8px 0 14px; } table.evidence { margin: 2px 0; } .violation p { margin: 2px 0 4px; }
.omitted, .caption { color: #666; font-style: italic; }
.scroll { overflow-x: auto; border: 1px solid #eee; }
.legend span { display: inline-block; margin-right: 14px; } .legend i { display: inline-block; width: 12px; height: 12px;
  margin-right: 4px; vertical-align: -1px; border-radius: 2px; }
svg.timeline { font: 10px ui-monospace, Menlo, Consolas, monospace; background: #fff; }
svg .lane rect { fill: #cfe3cf; stroke: #8fb58f; stroke-width: 0.5; } svg .lane-end { stroke: #222; stroke-width: 1.5; }
svg .node-label { font-weight: bold; font-size: 11px; fill: #333; } svg .lane-label, svg .tick-label, svg .chart-label { fill: #555; }
svg .grid { stroke: #eee; stroke-width: 1; } svg .run-start { stroke: #999; stroke-dasharray: 3 3; }
svg .fault .mark { stroke-width: 2; } svg .fault .guide { stroke-width: 1; stroke-opacity: 0.3; } svg .fault .span { fill-opacity: 0.25; stroke-width: 1; }
svg .fault-guide { stroke-width: 1; stroke-opacity: 0.35; } svg .bar { fill: #4c78a8; }
svg .takeover path { fill: none; stroke: #333; stroke-width: 1; stroke-opacity: 0.7; } svg marker path { fill: #333; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _kind_css() -> str:
    rules = []
    for kind, colour in _COLOURS.items():
        rules.append(f"svg .k-{kind} .mark, svg .k-{kind} .guide, svg .k-{kind}.fault-guide {{ stroke: {colour}; }}")
        rules.append(f"svg .k-{kind} .span, svg .k-{kind} .tick {{ fill: {colour}; stroke: {colour}; }}")
    return "\n".join(rules)


def _day_time(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc).strftime("%Y-%m-%d ") + clock(t) + " UTC"


def _header(result: ChaosResult) -> str:
    state = "passed" if result.passed else "failed"
    kinds = ", ".join(f"{k} {n}" for k, n in faults_by_kind(result.faults).items()) or "none"
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(result.workflows_by_status.items(), key=lambda kv: (-kv[1], kv[0])))
    meta = [
        ("seed", result.seed), ("app", result.app), ("workload", result.workload),
        ("fleet", f"{result.nodes} nodes x {result.workers} workers"),
        ("time", f"{_day_time(result.started_at)} to {clock(result.ended_at)} UTC "
                 f"({result.ended_at - result.started_at:.1f} s ran, {result.seconds:g} s asked; database clock)"),
        ("faults", f"{len(result.faults)}: {kinds}"),
        ("workflows", f"{sum(result.workflows_by_status.values())}: {statuses or 'none'}"),
        ("takeovers", len(result.takeovers)),
    ]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    notes = "".join(f"<li>{_e(n)}</li>" for n in result.notes)
    return (
        f'<h1>pgfleet chaos <span class="verdict {state}">{_e(verdict(result))}</span></h1>'
        f'<dl class="meta">{rows}</dl><h3>Reproduce</h3><pre class="command">{_e(result.command)}</pre>'
        + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "")
    )


def _timeline(result: ChaosResult) -> str:
    timeline = render_timeline(result)
    present = {f.kind for f in result.faults}
    kinds = [k for k in FAULT_KINDS if k in present] + sorted(present - set(FAULT_KINDS))
    legend = "".join(
        f'<span><i style="background:{_COLOURS.get(kind_class(k)[2:], _COLOURS["other"])}"></i>{_e(k)}</span>' for k in kinds
    )
    caption = [
        "One lane per executor process, grouped by node; faults are marks on the processes they hit (spans while a pause, "
        "partition or restart lasted), faults of the database itself on its own row; arrows run from a workflow's old "
        "owner to its new one at the takeover. Hover for details."
    ]
    if timeline.arrows_omitted:
        caption.append(
            f"Drew {timeline.arrows_drawn} of {len(result.takeovers)} takeover arrows, spread evenly over the run; "
            f"{timeline.arrows_omitted} omitted (all are in the JSON)."
        )
    if timeline.arrows_unplaced:
        caption.append(
            f"{timeline.arrows_unplaced} takeovers have no arrow: the old or the new owner has no lane (e.g. requeued), "
            "or both are the same process."
        )
    return (
        f'<h2>Timeline</h2><div class="legend">{legend}</div><div class="scroll">{timeline.svg}</div>'
        + "".join(f'<p class="caption">{_e(c)}</p>' for c in caption)
    )


def _invariants(invariants: list[InvariantResult]) -> str:
    rows = []
    for inv in invariants:
        status = status_of(inv.checked, inv.ok)
        shown = status + (f" ({len(inv.violations)})" if not inv.ok else "")
        rows.append(
            f'<tr class="{status.replace(" ", "-")}"><td class="status">{_e(shown)}</td><td class="num">{inv.checked:,}</td>'
            f'<td>{_e(inv.title)}</td><td class="mono key">{_e(inv.name)}</td><td>{_e(inv.note)}</td></tr>'
        )
    if not rows:
        rows.append('<tr><td colspan="5" class="omitted">no invariants were checked</td></tr>')
    head = "<tr><th>result</th><th>checked</th><th>invariant</th><th>key</th><th>note</th></tr>"
    return f'<h2>Invariants</h2><table class="invariants">{head}{"".join(rows)}</table>'


def _latencies(result: ChaosResult) -> str:
    def sec(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f} s"

    rows = "".join(
        f'<tr><td>{_e(s.kind)}</td><td class="num">{s.count}</td><td class="num">{sec(s.p50)}</td>'
        f'<td class="num">{sec(s.p99)}</td><td class="num">{sec(s.max)}</td></tr>'
        for s in result.latencies
    ) or '<tr><td colspan="5" class="omitted">no takeovers measured</td></tr>'
    head = "<tr><th>fault kind</th><th>count</th><th>p50</th><th>p99</th><th>max</th></tr>"
    return (
        "<h2>Takeover latency</h2><p>From the fault to the first step body of each workflow it hit, on its new owner.</p>"
        f'<table class="latency">{head}{rows}</table>'
    )


def _evidence_table(evidence: list[Any]) -> str:
    """The evidence rows as tables: consecutive rows with the same fields share one (a ledger
    row and the output row it contradicts each keep their own columns)."""
    rows = [as_row(r) for r in evidence[:EVIDENCE_ROWS_SHOWN]]
    groups: list[list[dict[str, Any]]] = []
    for row in rows:
        if groups and list(groups[-1][0]) == list(row):
            groups[-1].append(row)
        else:
            groups.append([row])
    tables = []
    for group in groups:
        head = "".join(f"<th>{_e(c)}</th>" for c in group[0])
        body = "".join("<tr>" + "".join(f'<td class="mono">{_e(show_value(k, v, 500))}</td>' for k, v in row.items()) + "</tr>"
                       for row in group)
        tables.append(f'<table class="evidence"><tr>{head}</tr>{body}</table>')
    more = len(evidence) - EVIDENCE_ROWS_SHOWN
    tail = f'<p class="omitted">... and {more} more evidence rows (see the JSON)</p>' if more > 0 else ""
    return "".join(tables) + tail


def _violation(violation: Violation) -> str:
    return f'<div class="violation"><p>{_e(violation.message)}</p>{_evidence_table(violation.evidence)}</div>'


def _violations(invariants: list[InvariantResult]) -> str:
    failed = [i for i in invariants if not i.ok]
    if not failed:
        return "<h2>Violations</h2><p>None: every invariant held.</p>"
    parts = ["<h2>Violations</h2>"]
    for inv in failed:
        parts.append(f'<h3 id="v-{_e(inv.name)}">{_e(inv.title)} <span class="mono">({_e(inv.name)})</span>: '
                     f"{len(inv.violations)} violations</h3>")
        parts += [_violation(v) for v in inv.violations[:VIOLATIONS_SHOWN]]
        if len(inv.violations) > VIOLATIONS_SHOWN:
            parts.append(f'<p class="omitted">... and {len(inv.violations) - VIOLATIONS_SHOWN} more (see the JSON)</p>')
    return "".join(parts)


def _fault_row(number: int, f: FaultRecord, origin: float) -> str:
    lasted = "" if f.ended_at is None else f"{clock(f.ended_at)} ({f.ended_at - f.at:.1f} s)"
    cells = [
        (str(number), "num"), (clock(f.at), "mono"), (f"{f.at - origin:+.1f}", "num"), (f.kind, ""), (f.node or "-", ""),
        (f.target or "-", "mono"), (" ".join(str(p) for p in f.pids), "mono"), (" ".join(f.executors), "mono"),
        (lasted, "mono"), (describe_row(f.detail, 200) if f.detail else "", "mono"),
    ]
    return "<tr>" + "".join(f'<td class="{cls}">{_e(text)}</td>' for text, cls in cells) + "</tr>"


def _fault_log(result: ChaosResult) -> str:
    faults = sorted(result.faults, key=lambda f: f.at)
    head = "".join(f"<th>{h}</th>" for h in ("#", "at (UTC)", "+s", "kind", "node", "target", "pids", "executors", "ended", "detail"))
    rows = "".join(_fault_row(n, f, result.started_at) for n, f in enumerate(faults, 1))
    if not rows:
        rows = '<tr><td colspan="10" class="omitted">no faults were injected</td></tr>'
    return f'<h2>Fault log</h2><table class="faults"><tr>{head}</tr>{rows}</table>'


def render_html(result: ChaosResult) -> str:
    """The report page of ``result`` as a string."""
    title = f"pgfleet chaos seed {result.seed}: {'PASSED' if result.passed else 'FAILED'}"
    body = _header(result) + _timeline(result) + _invariants(result.invariants) + _latencies(result)
    body += _violations(result.invariants) + _fault_log(result)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}{_kind_css()}</style></head>\n<body>{body}</body></html>\n"
    )


def write_html(result: ChaosResult, path: str | os.PathLike[str]) -> None:
    """Write the report page of ``result`` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as out:
        out.write(render_html(result))
