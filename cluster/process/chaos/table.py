"""The text a chaos run ends with: what ran, the invariant table, takeover latencies, the evidence
of every failed invariant, and the command that reproduces the run. Plain text within 120
columns, so it reads the same in a terminal and in a CI log.
"""

from __future__ import annotations

import shlex
import textwrap

from cluster.process.chaos.model import ChaosResult, InvariantResult, LatencyStats
from cluster.process.chaos.render import as_row, clock, faults_by_kind, plural, printable, show_value, status_of, verdict

__all__ = ["format_summary", "WIDTH"]

WIDTH = 120
# How much evidence the text shows; the JSON and the HTML report carry the rest.
VIOLATIONS_SHOWN = 5
EVIDENCE_ROWS_SHOWN = 8

_STATUS_W = 16
_CHECKED_W = 9
_TITLE_W = 48


def format_summary(result: ChaosResult) -> str:
    """The whole end-of-run text of ``result``."""
    parts = [
        "\n".join(_header(result)),
        "\n".join(_invariant_table(result.invariants)),
        "\n".join(_latency_table(result.latencies)),
    ]
    failed = [i for i in result.invariants if not i.ok]
    if failed:
        parts.append("\n".join(line for inv in failed for line in _violations(inv)))
    if result.notes:
        parts.append("\n".join(["notes:"] + [w for n in result.notes for w in _wrap(n, "  - ", "    ")]))
    parts.append("\n".join(["reproduce with:"] + _command_lines(result.command)))
    return "\n\n".join(parts) + "\n"


def _header(result: ChaosResult) -> list[str]:
    ran = result.ended_at - result.started_at
    lines = [f"pgfleet chaos: {verdict(result)}"]
    lines += _wrap(f"seed {result.seed}, app {result.app}, workload {result.workload}", "", "  ")
    lines.append(
        f"{result.nodes} nodes x {result.workers} workers, {result.seconds:g} s asked, {ran:.1f} s ran "
        f"({clock(result.started_at)} to {clock(result.ended_at)} UTC, database clock)"
    )
    kinds = faults_by_kind(result.faults)
    fault_text = ", ".join(f"{k} {n}" for k, n in kinds.items()) or "none"
    lines += _wrap(f"faults ({len(result.faults)}): {fault_text}", "", "  ")
    statuses = sorted(result.workflows_by_status.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(result.workflows_by_status.values())
    status_text = ", ".join(f"{s} {n}" for s, n in statuses) or "none"
    lines += _wrap(f"workflows ({total}): {status_text}", "", "  ")
    lines.append(f"takeovers: {len(result.takeovers)}")
    return lines


def _invariant_table(invariants: list[InvariantResult]) -> list[str]:
    note_w = WIDTH - _STATUS_W - _CHECKED_W - _TITLE_W - 3
    lines = [f"{'RESULT':<{_STATUS_W}}{'CHECKED':>{_CHECKED_W}}  {'INVARIANT':<{_TITLE_W}} NOTE"]
    if not invariants:
        return lines + ["(no invariants were checked)"]
    for inv in invariants:
        status = status_of(inv.checked, inv.ok)
        if not inv.ok:
            status += f" ({len(inv.violations)})"
        titles = textwrap.wrap(inv.title or inv.name, _TITLE_W) or [""]
        notes = textwrap.wrap(inv.note, note_w) if inv.note else []
        for n in range(max(len(titles), len(notes))):
            first = n == 0
            lines.append(
                f"{status if first else '':<{_STATUS_W}}{f'{inv.checked:,}' if first else '':>{_CHECKED_W}}  "
                f"{titles[n] if n < len(titles) else '':<{_TITLE_W}} {notes[n] if n < len(notes) else ''}".rstrip()
            )
    return lines


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _latency_table(latencies: list[LatencyStats]) -> list[str]:
    lines = [f"{'TAKEOVER LATENCY (fault to first step on the new owner)':<60}{'COUNT':>7}{'P50':>10}{'P99':>10}{'MAX':>10}"]
    if not latencies:
        return lines + ["(no takeovers measured)"]
    for s in latencies:
        lines.append(f"{s.kind:<60}{s.count:>7}{_seconds(s.p50):>10}{_seconds(s.p99):>10}{_seconds(s.max):>10}")
    return lines


def _violations(inv: InvariantResult) -> list[str]:
    lines = _wrap(f"FAILED {inv.name}: {inv.title} ({plural(len(inv.violations), 'violation')})", "", "  ")
    for number, violation in enumerate(inv.violations[:VIOLATIONS_SHOWN], 1):
        lines += _wrap(printable(violation.message), f"  {number}. ", "     ")
        for row in violation.evidence[:EVIDENCE_ROWS_SHOWN]:
            lines += _evidence_lines(row)
        hidden_rows = len(violation.evidence) - EVIDENCE_ROWS_SHOWN
        if hidden_rows > 0:
            lines.append(f"       ... and {hidden_rows} more evidence rows (see --json)")
    hidden = len(inv.violations) - VIOLATIONS_SHOWN
    if hidden > 0:
        lines.append(f"  ... and {hidden} more violations of {inv.name} (see --json or --report)")
    return lines


def _wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False) or [first.rstrip()]


def _evidence_lines(row: object) -> list[str]:
    """One evidence row, ``key=value`` by ``key=value``; a row too wide for one line goes on
    indented continuation lines (cut at a field, never inside one) rather than losing fields."""
    fields = [f"{k}={show_value(k, v)}" for k, v in as_row(row).items()]
    lines = ["       - "]
    for text in fields:
        if lines[-1].strip() not in ("", "-") and len(lines[-1]) + len(text) + 2 > WIDTH:
            lines[-1] += ","
            lines.append("         ")
        elif lines[-1].strip() not in ("", "-"):
            lines[-1] += ", "
        lines[-1] += text
    return lines


def _command_lines(command: str) -> list[str]:
    """The repro command, wrapped at word boundaries with shell line continuations so it still
    pastes as one command (left whole when it cannot be split as shell words)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return ["  " + command]
    if len(command) + 2 <= WIDTH or not words:
        return ["  " + command]
    lines: list[str] = []
    current = "  "
    for word in (shlex.quote(w) for w in words):
        if current.strip() and len(current) + 1 + len(word) + 2 > WIDTH:
            lines.append(current + " \\")
            current = "      "
        current += ("" if not current.strip() else " ") + word
    return lines + [current]
