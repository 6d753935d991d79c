"""The timeline of the HTML report, as one inline SVG: a lane per executor process (grouped by
node), the faults as marks at their times (spans when they lasted), the takeovers as arrows from
the old owner's lane to the new one's, and the throughput on the same time axis below.

Every text and attribute value goes through ``html.escape``: workflow ids, executor ids and
fault details are the app's or the run's own strings and may hold markup.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from dataclasses import dataclass

from cluster.process.chaos.model import FAULT_KINDS, ChaosResult, FaultRecord, Lane
from cluster.process.chaos.render import clock, takeover_parts

__all__ = ["Timeline", "render_timeline", "MAX_ARROWS"]

# Past this many arrows the drawing is a smear: draw this many, spread evenly over the run.
MAX_ARROWS = 400

_WIDTH = 1200
_X0 = 250  # the plot starts right of the lane labels
_X1 = 1185
_AXIS_H = 34  # the time ticks and the fault strip above the lanes
_NODE_H = 16
_DB_H = 16  # the database's own row, where faults that hit no one process (restart-db) are drawn
_CHART_H = 110
_NICE_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def kind_class(kind: str) -> str:
    """The CSS class of a fault kind (its colour); a kind outside FAULT_KINDS gets ``k-other``."""
    return "k-" + kind if kind in FAULT_KINDS else "k-other"


@dataclass
class Timeline:
    """The timeline's SVG and what it could not draw (said under it)."""

    svg: str
    arrows_drawn: int
    arrows_omitted: int  # over MAX_ARROWS
    arrows_unplaced: int  # no lane for the old or the new owner (e.g. requeued to the queue)


@dataclass
class _Row:
    lane: Lane
    y: float  # the top of the lane's row


class _Axis:
    """The run's time span mapped onto the plot's width."""

    def __init__(self, result: ChaosResult) -> None:
        starts = [result.started_at] + [lane.start for lane in result.lanes] + [f.at for f in result.faults]
        ends = [result.ended_at] + [lane.end for lane in result.lanes if lane.end is not None]
        ends += [f.ended_at if f.ended_at is not None else f.at for f in result.faults]
        ends += [p.at + p.seconds for p in result.throughput]
        self.origin = result.started_at
        self.t0 = min(starts)
        self.t1 = max(max(ends), self.t0 + 1.0)

    def x(self, t: float) -> float:
        return round(_X0 + (t - self.t0) / (self.t1 - self.t0) * (_X1 - _X0), 1)

    def ticks(self) -> list[float]:
        span = self.t1 - self.t0
        step = next((s for s in _NICE_STEPS if span / s <= 12), _NICE_STEPS[-1])
        first = self.origin + step * -int((self.origin - self.t0) // step)
        return [first + n * step for n in range(int((self.t1 - first) // step) + 1)]


def _lane_height(count: int) -> int:
    return 14 if count <= 60 else 10 if count <= 200 else 6


def _natural(text: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _layout(lanes: list[Lane], lane_h: int) -> tuple[list[_Row], list[tuple[str, float]], float]:
    """Rows grouped by node (nodes in natural order, n2 before n10), the node headers, the bottom."""
    by_node: dict[str, list[Lane]] = defaultdict(list)
    for lane in lanes:
        by_node[lane.node].append(lane)
    rows: list[_Row] = []
    headers: list[tuple[str, float]] = []
    y = float(_AXIS_H + _DB_H)
    for node in sorted(by_node, key=_natural):
        headers.append((node, y))
        y += _NODE_H
        for lane in sorted(by_node[node], key=lambda la: (la.start, la.executor_id)):
            rows.append(_Row(lane, y))
            y += lane_h
    return rows, headers, y


def _lane_at(rows: list[_Row], executor: str | None, t: float | None) -> _Row | None:
    """The row of ``executor``'s process alive at ``t`` (else its last one started before)."""
    mine = [r for r in rows if r.lane.executor_id == executor]
    if not mine or t is None:
        return mine[-1] if mine else None
    alive = [r for r in mine if r.lane.start <= t and (r.lane.end is None or t <= r.lane.end)]
    before = [r for r in mine if r.lane.start <= t]
    return (alive or before or mine)[-1]


def _fault_rows(fault: FaultRecord, rows: list[_Row]) -> list[_Row] | None:
    """The rows a fault hit: its executors, else its node's processes alive then; None: all."""
    if fault.executors:
        hit = [r for r in rows if r.lane.executor_id in fault.executors]
        return hit or None
    node = fault.node or fault.target
    mine = [r for r in rows if r.lane.node == node]
    if not mine:
        return None
    alive = [r for r in mine if r.lane.start <= fault.at and (r.lane.end is None or fault.at <= r.lane.end)]
    return alive or mine


def _runs(rows: list[_Row], lane_h: int) -> list[tuple[float, float]]:
    """Contiguous vertical spans covering ``rows``."""
    spans: list[tuple[float, float]] = []
    for r in sorted(rows, key=lambda r: r.y):
        if spans and abs(spans[-1][1] - r.y) < 0.5:
            spans[-1] = (spans[-1][0], r.y + lane_h)
        else:
            spans.append((r.y, r.y + lane_h))
    return spans


def _fault_title(f: FaultRecord, axis: _Axis) -> str:
    text = f"{f.kind} at {clock(f.at)} UTC (+{f.at - axis.origin:.1f}s)"
    if f.ended_at is not None:
        text += f", until {clock(f.ended_at)} ({f.ended_at - f.at:.1f}s)"
    if f.node or f.target:
        text += f", node {f.node or '-'} target {f.target or '-'}"
    if f.pids:
        text += ", pids " + " ".join(str(p) for p in f.pids)
    return text


def _fault_mark(f: FaultRecord, rows: list[_Row], lane_h: int, bottom: float, axis: _Axis) -> str:
    """A fault's mark: on the lanes it hit, or (a fault of the database, or of a node with no
    lane) on the database row with a faint line through the lanes, so hundreds stay legible."""
    hit = _fault_rows(f, rows)
    spans = _runs(hit, lane_h) if hit else [(float(_AXIS_H + 2), float(_AXIS_H + _DB_H - 2))]
    x = axis.x(f.at)
    parts = [f'<g class="fault {kind_class(f.kind)}" data-kind="{_e(f.kind)}"><title>{_e(_fault_title(f, axis))}</title>']
    parts.append(f'<path class="tick" d="M{x - 4},{_AXIS_H - 10}h8l-4,7z"/>')  # the strip above the lanes
    if not hit:
        parts.append(f'<line class="guide" x1="{x}" y1="{_AXIS_H + _DB_H}" x2="{x}" y2="{bottom}"/>')
    for y0, y1 in spans:
        if f.ended_at is not None and f.ended_at > f.at:
            width = max(axis.x(f.ended_at) - x, 1.5)
            parts.append(f'<rect class="span" x="{x}" y="{y0}" width="{width:.1f}" height="{y1 - y0}"/>')
        else:
            parts.append(f'<line class="mark" x1="{x}" y1="{y0}" x2="{x}" y2="{y1}"/>')
    return "".join(parts) + "</g>"


def _pick_arrows(takeovers: list[object]) -> tuple[list[object], int]:
    if len(takeovers) <= MAX_ARROWS:
        return takeovers, 0
    ordered = sorted(takeovers, key=lambda t: takeover_parts(t)[3] or 0.0)
    step = len(ordered) / MAX_ARROWS
    return [ordered[int(n * step)] for n in range(MAX_ARROWS)], len(takeovers) - MAX_ARROWS


def _arrows(result: ChaosResult, rows: list[_Row], lane_h: int, axis: _Axis) -> tuple[list[str], int, int]:
    picked, omitted = _pick_arrows(list(result.takeovers))
    drawn: list[str] = []
    unplaced = 0
    for takeover in picked:
        workflow, source, target, at = takeover_parts(takeover)
        old, new = _lane_at(rows, source, at), _lane_at(rows, target, at)
        if at is None or old is None or new is None or old is new:
            unplaced += 1
            continue
        x = axis.x(at)
        y0, y1 = old.y + lane_h / 2, new.y + lane_h / 2
        title = f"takeover of {workflow} at {clock(at)} UTC: {source} -> {target}"
        drawn.append(
            f'<g class="takeover"><title>{_e(title)}</title>'
            f'<path d="M{x},{y0} C{x + 14},{y0} {x + 14},{y1} {x + 2},{y1}" marker-end="url(#arrowhead)"/></g>'
        )
    return drawn, omitted, unplaced


def _axis_svg(axis: _Axis, bottom: float) -> list[str]:
    parts = []
    for t in axis.ticks():
        x = axis.x(t)
        rel = t - axis.origin
        label = f"{rel:+.0f}s" if abs(rel - round(rel)) < 1e-6 else f"{rel:+.1f}s"
        parts.append(f'<line class="grid" x1="{x}" y1="{_AXIS_H - 12}" x2="{x}" y2="{bottom}"/>')
        parts.append(f'<text class="tick-label" x="{x}" y="10" text-anchor="middle"><title>{clock(t)} UTC</title>{_e(label)}</text>')
        parts.append(f'<text class="tick-label" x="{x}" y="{bottom + 12}" text-anchor="middle">{clock(t)[:8]}</text>')
    for t in (axis.origin,):
        parts.append(f'<line class="run-start" x1="{axis.x(t)}" y1="{_AXIS_H - 12}" x2="{axis.x(t)}" y2="{bottom}"/>')
    return parts


def _lanes_svg(rows: list[_Row], headers: list[tuple[str, float]], lane_h: int, axis: _Axis, end: float) -> list[str]:
    parts = [f'<text class="node-label" x="4" y="{_AXIS_H + _DB_H - 4}">database</text>',
             f'<line class="grid" x1="{_X0}" y1="{_AXIS_H + _DB_H / 2}" x2="{_X1}" y2="{_AXIS_H + _DB_H / 2}"/>']
    parts += [f'<text class="node-label" x="4" y="{y + _NODE_H - 4}">node {_e(node)}</text>' for node, y in headers]
    for r in rows:
        lane = r.lane
        x0, x1 = axis.x(lane.start), axis.x(lane.end if lane.end is not None else end)
        title = f"{lane.executor_id} pid {lane.pid} on {lane.node}: {clock(lane.start)} to " + (
            f"{clock(lane.end)} UTC" if lane.end is not None else "the end"
        )
        label = lane.executor_id if len(lane.executor_id) <= 26 else lane.executor_id[:25] + "…"
        text = f'<text class="lane-label" x="14" y="{r.y + lane_h - 3}">{_e(label)} {lane.pid}</text>' if lane_h >= 10 else ""
        ended = f'<line class="lane-end" x1="{x1}" y1="{r.y}" x2="{x1}" y2="{r.y + lane_h - 1}"/>' if lane.end is not None else ""
        parts.append(
            f'<g class="lane" data-executor="{_e(lane.executor_id)}"><title>{_e(title)}</title>{text}'
            f'<rect x="{x0}" y="{r.y + 1}" width="{max(x1 - x0, 1.0):.1f}" height="{lane_h - 2}"/>{ended}</g>'
        )
    return parts


def _throughput_svg(result: ChaosResult, axis: _Axis, top: float) -> list[str]:
    points = result.throughput
    peak = max((p.finished for p in points), default=0)
    seconds = points[0].seconds if points else 0
    parts = [
        f'<text class="chart-label" x="4" y="{top + 12}">workflows finished</text>',
        f'<text class="chart-label" x="4" y="{top + 26}">per {seconds:g}s bucket</text>',
        f'<text class="tick-label" x="{_X0 - 6}" y="{top + 8}" text-anchor="end">{peak}</text>',
        f'<text class="tick-label" x="{_X0 - 6}" y="{top + _CHART_H}" text-anchor="end">0</text>',
        f'<line class="grid" x1="{_X0}" y1="{top + _CHART_H}" x2="{_X1}" y2="{top + _CHART_H}"/>',
    ]
    for f in result.faults:
        parts.append(f'<line class="fault-guide {kind_class(f.kind)}" x1="{axis.x(f.at)}" y1="{top}" x2="{axis.x(f.at)}" y2="{top + _CHART_H}"/>')
    for p in points:
        height = round(p.finished / peak * _CHART_H, 1) if peak else 0.0
        x0, x1 = axis.x(p.at), axis.x(p.at + p.seconds)
        parts.append(
            f'<rect class="bar" x="{x0}" y="{top + _CHART_H - height}" width="{max(x1 - x0 - 0.5, 0.5):.1f}" height="{height}">'
            f"<title>{p.finished} finished, {clock(p.at)} to {clock(p.at + p.seconds)} UTC</title></rect>"
        )
    return parts


def render_timeline(result: ChaosResult) -> Timeline:
    """The timeline of ``result`` as an inline ``<svg>`` element."""
    axis = _Axis(result)
    lane_h = _lane_height(len(result.lanes))
    rows, headers, lanes_bottom = _layout(result.lanes, lane_h)
    chart_top = lanes_bottom + 22
    bottom = chart_top + _CHART_H
    arrows, omitted, unplaced = _arrows(result, rows, lane_h, axis)
    body = _axis_svg(axis, bottom) + _lanes_svg(rows, headers, lane_h, axis, axis.t1)
    body += [_fault_mark(f, rows, lane_h, lanes_bottom, axis) for f in sorted(result.faults, key=lambda f: f.at)]
    body += arrows + _throughput_svg(result, axis, chart_top)
    height = bottom + 18
    svg = (
        f'<svg class="timeline" viewBox="0 0 {_WIDTH} {height}" '
        f'width="{_WIDTH}" height="{height}" role="img" aria-label="timeline of the run">'
        '<defs><marker id="arrowhead" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="6" markerHeight="6" orient="auto">'
        '<path d="M0,0L8,4L0,8z"/></marker></defs>' + "".join(body) + "</svg>"
    )
    return Timeline(svg, len(arrows), omitted, unplaced)
