"""The views of a chaos run (``pgfleet chaos``): the progress line, the end-of-run table, ``--json``
and the HTML report, each made from a synthetic ChaosResult (a passing and a failing run), so
what a person or a machine reads is checked without running a fleet."""

from __future__ import annotations

import datetime
import io
import json
import random
import shlex
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cluster.process.chaos.html_report import render_html, write_html
from cluster.process.chaos.html_timeline import MAX_ARROWS
from cluster.process.chaos.json_report import to_json, write_json
from cluster.process.chaos.model import (
    ChaosResult,
    FaultRecord,
    InvariantResult,
    Lane,
    LatencyStats,
    ThroughputPoint,
    Violation,
)
from cluster.process.chaos.progress import Progress
from cluster.process.chaos.table import WIDTH, format_summary
from sysdb.chaos_history import StepStart

T0 = 1_796_083_200.0  # 2026-12-01 00:00:00 UTC
PLANTED = "<script>alert('pwned')</script>"


def _clock(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def _lanes() -> list[Lane]:
    lanes = []
    for n in (1, 2, 3):
        for w in (0, 1):
            end = T0 + 20.0 if n == 2 else None  # node n2 is killed at +20 s
            lanes.append(Lane(f"n{n}", f"n{n}-w{w}-0001", 1000 + 10 * n + w, T0, end))
    lanes += [Lane("n2", f"n2-w{w}-0002", 2000 + w, T0 + 21.5, None) for w in (0, 1)]  # its supervisor restarted
    return lanes


def _faults() -> list[FaultRecord]:
    return [
        FaultRecord("kill-node", T0 + 20.0, node="n2", target="n2", pids=[1020, 1021], executors=["n2-w0-0001", "n2-w1-0001"]),
        FaultRecord("pause-worker", T0 + 31.0, node="n1", target="n1-w1-0001", pids=[1011], executors=["n1-w1-0001"],
                    ended_at=T0 + 38.0),
        FaultRecord("restart-db", T0 + 45.0, ended_at=T0 + 47.5, detail={"mode": "fast"}),
        FaultRecord("partition", T0 + 52.0, node="n3", target="n3", pids=[1030, 1031], ended_at=T0 + 58.0),
    ]


def _takeovers(count: int = 4) -> list[dict[str, object]]:
    sources, targets = ["n2-w0-0001", "n2-w1-0001"], ["n1-w0-0001", "n3-w0-0001", "n3-w1-0001"]
    return [
        {"workflow_uuid": f"wf-{n}", "from_executor_id": sources[n % 2], "to_executor_id": targets[n % 3], "at": T0 + 26.0 + n * 0.01}
        for n in range(count)
    ]


def _passing_invariants() -> list[InvariantResult]:
    return [
        InvariantResult("outcomes", "every workflow reached its expected outcome", 240),
        InvariantResult("no-rerun-after-record", "no completed step ran again", 1820),
        InvariantResult("no-start-after-takeover", "no step body started after its workflow was taken over", 1820),
        InvariantResult("queue-limits", "queue concurrency, worker concurrency and rate limits never exceeded", 96),
        InvariantResult("one-leader", "one acting leader per moment, terms strictly increasing", 0,
                        note="no leader changed hands in this run, so there was nothing to compare"),
    ]


def _result(invariants: list[InvariantResult], takeovers: list[dict[str, object]] | None = None, **changes: object) -> ChaosResult:
    values: dict[str, object] = dict(
        command="pgfleet chaos examples/orders.py --nodes 3 --workers 2 --seconds 60 --seed 7 "
                "--faults kill-node,pause-worker,partition,restart-db --netns --report /tmp/chaos-seed-7-report.html --json",
        seed=7, app="examples/orders.py", workload="builtin", nodes=3, workers=2, seconds=60.0,
        started_at=T0, ended_at=T0 + 64.2, faults=_faults(), invariants=invariants,
        latencies=[LatencyStats("kill-node", 2, 6.1, 6.8, 6.8), LatencyStats("pause-worker", 0, None, None, None)],
        throughput=[ThroughputPoint(T0 + s, 5.0, 20 - abs(25 - s) // 3) for s in range(0, 65, 5)],
        lanes=_lanes(), takeovers=_takeovers() if takeovers is None else takeovers,
        workflows_by_status={"SUCCESS": 238, "ERROR": 2}, notes=["partition ran inside network namespaces"],
    )
    values.update(changes)
    return ChaosResult(**values)  # type: ignore[arg-type]


def passing_result() -> ChaosResult:
    return _result(_passing_invariants())


def failing_result() -> ChaosResult:
    """Two violated invariants; one holds a planted ``<script>`` in a workflow id and in evidence,
    a datetime, bytes and a ledger row (a dataclass) among its evidence."""
    stale = StepStart(7, f"wf-{PLANTED}", 2, "charge", "n2-w0-0001", 3, 1020, 1, T0 + 27.25)
    rerun = [
        Violation(f"wf-{n} step 2 (charge) started again at {_clock(T0 + 27.0)}, 1.200s after its output was recorded",
                  [{"workflow_uuid": f"wf-{n}", "function_id": 2, "executor_id": "n3-w0-0001", "started_at": T0 + 27.0},
                   {"recorded_at": T0 + 25.8}])
        for n in range(12)
    ]
    invariants = _passing_invariants()
    invariants[1] = InvariantResult("no-rerun-after-record", "no completed step ran again", 1820, rerun)
    invariants[2] = InvariantResult("no-start-after-takeover", "no step body started after its workflow was taken over", 1820, [
        Violation(f"wf-{PLANTED} step 2 started by n2-w0-0001@3 after its ownership ended",
                  [stale, {"ended_by": PLANTED, "when": datetime.datetime(2026, 12, 1, 0, 0, 26, tzinfo=datetime.timezone.utc),
                           "raw": b"\x00\xffbytes", "nan": float("nan")}]),
    ])
    takeovers = _takeovers() + [{"workflow_uuid": f"wf-{PLANTED}", "from_executor_id": "n2-w0-0001",
                                 "to_executor_id": "n3-w0-0001", "at": T0 + 26.5}]
    faults = _faults()
    faults[2].detail["server_log"] = PLANTED
    lanes = _lanes() + [Lane("n3", f"n3-{PLANTED}", 3333, T0 + 30.0, None)]
    return _result(invariants, takeovers=takeovers, faults=faults, lanes=lanes,
                   workflows_by_status={"SUCCESS": 226, "ERROR": 2, "PENDING": 12})


def busy_result(nodes: int, workers: int, faults: int, takeovers: int, seed: int = 1, seconds: float = 600.0) -> ChaosResult:
    """A long run with many processes, faults and takeovers (deterministic for ``seed``): each
    kill or pause of a worker ends its lane and starts a replacement, as a supervisor would."""
    rng = random.Random(seed)
    kinds = ["kill-node", "kill-worker", "pause-node", "pause-worker", "partition", "restart-db", "terminate-backends"]
    lanes = [Lane(f"n{n}", f"n{n}-w{w}-0", 10_000 + n * 100 + w, T0, None) for n in range(1, nodes + 1) for w in range(workers)]
    fault_list = []
    for k in range(faults):
        at = T0 + 5 + (seconds - 20) * (k + rng.random()) / faults
        kind = kinds[k % len(kinds)]
        victim = rng.choice([lane for lane in lanes if lane.end is None])
        lasts = kind in ("pause-node", "pause-worker", "partition", "restart-db")
        node = None if kind in ("restart-db", "terminate-backends") else victim.node
        if kind in ("kill-worker", "pause-worker"):
            victim.end = at
            lanes.append(Lane(victim.node, f"{victim.node}-w{k}-{k}", 20_000 + k, at + 0.8, None))
        fault_list.append(FaultRecord(kind, at, node=node, target=node, pids=[victim.pid],
                                      executors=[victim.executor_id] if "worker" in kind else [],
                                      ended_at=at + rng.uniform(2, 8) if lasts else None))
    alive = [lane.executor_id for lane in lanes]
    moved = [{"workflow_uuid": f"wf-{n:05d}", "from_executor_id": rng.choice(alive), "to_executor_id": rng.choice(alive),
              "at": T0 + rng.uniform(5, seconds - 5)} for n in range(takeovers)]
    result = failing_result()
    points = [ThroughputPoint(T0 + s, 5.0, 30 + rng.randint(-12, 6)) for s in range(0, int(seconds), 5)]
    return _result(result.invariants, takeovers=moved, faults=fault_list, lanes=lanes, throughput=points, nodes=nodes, workers=workers,
                   seconds=seconds, ended_at=T0 + seconds + 4.0)


# -- the end-of-run table ---------------------------------------------------------------------


def test_summary_of_a_passing_run_has_each_invariant_row_and_the_repro_command() -> None:
    result = passing_result()
    text = format_summary(result)
    assert text.startswith("pgfleet chaos: PASSED (4 invariants held, 1 not checked)")
    lines = text.splitlines()
    for inv in result.invariants:
        row = next(line for line in lines if inv.title[:40] in line)
        assert row.startswith("not checked" if inv.checked == 0 else "PASS"), row
        assert f"{inv.checked:,}" in row
    assert "no leader changed hands" in text
    assert "faults (4): kill-node 1, pause-worker 1, restart-db 1, partition 1" in text
    assert "workflows (240): SUCCESS 238, ERROR 2" in text
    assert "kill-node" in next(line for line in lines if "6.10s" in line and "6.80s" in line)
    assert "FAILED" not in text
    assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
    # The command is wrapped with shell continuations, and still reads as the same words.
    repro = text.split("reproduce with:\n", 1)[1]
    assert shlex.split(repro.replace("\\\n", " ")) == shlex.split(result.command)


def test_summary_of_a_failing_run_shows_the_evidence_of_each_failure() -> None:
    result = failing_result()
    text = format_summary(result)
    lines = text.splitlines()
    assert text.startswith("pgfleet chaos: FAILED (2 of 5 invariants violated)")
    assert next(line for line in lines if "no completed step ran again" in line).startswith("FAIL (12)")
    assert "FAILED no-rerun-after-record: no completed step ran again (12 violations)" in text
    assert "  1. wf-0 step 2 (charge) started again at 00:00:27.000" in text
    # Evidence rows: one compact line each, database times as UTC clock times.
    assert "workflow_uuid=wf-0, function_id=2, executor_id=n3-w0-0001, started_at=00:00:27.000" in text
    assert "recorded_at=00:00:25.800" in text
    assert "... and 7 more violations of no-rerun-after-record" in text
    # A ledger row (a dataclass) reads as its fields, a wide one on continuation lines; a datetime
    # as a clock time; bytes and control characters escaped.
    ledger_row = text.split("after its ownership ended\n", 1)[1].split("\n       - ", 1)[0]
    for part in ("id=7", "function_name=charge", "owner_epoch=3", "pid=1020", "attempt=1", "at=00:00:27.250"):
        assert part in ledger_row, part
    assert "when=00:00:26.000, raw=\\x00\\xffbytes, nan=nan" in text
    assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
    assert "--seed 7" in text.split("reproduce with:")[1]


def test_summary_keeps_long_names_notes_and_messages_within_the_width() -> None:
    long = "x" * 150
    invariant = InvariantResult("long", "a title " * 12, 3, [Violation("a message " * 30, [{"value": long, "at": T0}])], note="a note " * 40)
    text = format_summary(_result([invariant], app=f"/srv/{long}/app.py", command=f"pgfleet chaos /srv/{long}/app.py --seed 7"))
    body, repro = text.split("reproduce with:\n")
    assert all(len(line) <= WIDTH for line in body.splitlines()), max(body.splitlines(), key=len)
    assert "at=00:00:00.000" in text
    # The command is cut only between shell words: one word wider than the page stays whole.
    assert shlex.split(repro.replace("\\\n", " ")) == ["pgfleet", "chaos", f"/srv/{long}/app.py", "--seed", "7"]
    assert all(len(line) <= WIDTH or len(shlex.split(line.rstrip(" \\"))) == 1 for line in repro.splitlines())


def test_summary_of_a_run_with_no_invariants_says_so() -> None:
    text = format_summary(_result([], takeovers=[], latencies=[], faults=[]))
    assert "(no invariants were checked)" in text
    assert "(no takeovers measured)" in text
    assert "faults (0): none" in text


# -- --json ------------------------------------------------------------------------------------


def test_json_round_trips_with_every_field_and_invariant(tmp_path: Path) -> None:
    result = failing_result()
    document = json.loads(json.dumps(to_json(result), allow_nan=False))
    assert document["passed"] is False and document["format"] == "pgfleet-chaos/1"
    for field in result.__dataclass_fields__:
        assert field in document, field
    assert [i["name"] for i in document["invariants"]] == [i.name for i in result.invariants]
    assert [i["status"] for i in document["invariants"]] == ["PASS", "FAIL", "FAIL", "PASS", "not checked"]
    assert len(document["invariants"][1]["violations"]) == 12
    stale, extra = document["invariants"][2]["violations"][0]["evidence"]
    assert stale["workflow_uuid"] == f"wf-{PLANTED}" and stale["at"] == T0 + 27.25
    assert extra["when"] == "2026-12-01T00:00:26+00:00"
    assert extra["raw"] == "\\x00\\xffbytes" and extra["nan"] == "nan"
    assert document["faults"][1]["ended_at"] == T0 + 38.0 and document["lanes"][0]["pid"] == 1010
    # Written to a path and to a stream, the same document.
    write_json(result, tmp_path / "run.json")
    stream = io.StringIO()
    write_json(result, stream)
    assert json.loads((tmp_path / "run.json").read_text()) == json.loads(stream.getvalue()) == document
    assert json.loads(json.dumps(to_json(passing_result())))["passed"] is True


# -- the HTML report ---------------------------------------------------------------------------


class _Page(HTMLParser):
    """What a browser would build from the page: elements by class, script elements, links."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: dict[str, int] = {}
        self.scripts = 0
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        for name, value in attrs:
            if name == "class" and value:
                for cls in value.split():
                    self.classes[f"{tag}.{cls}"] = self.classes.get(f"{tag}.{cls}", 0) + 1
            if name in ("src", "href", "xlink:href", "action", "data") and value:
                self.links.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    return parsed


def test_html_report_has_a_lane_per_lane_a_mark_per_fault_and_an_arrow_per_takeover(tmp_path: Path) -> None:
    result = passing_result()
    write_html(result, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    parsed = _parse(page)
    assert parsed.classes["g.lane"] == len(result.lanes) == 8
    assert parsed.classes["g.fault"] == len(result.faults) == 4
    assert parsed.classes["rect.span"] == 3 and parsed.classes["line.mark"] >= 1  # three lasted, the kill did not
    assert parsed.classes["g.takeover"] == len(result.takeovers) == 4
    assert parsed.classes["rect.bar"] == len(result.throughput)
    for table in ("invariants", "latency", "faults"):
        assert parsed.classes[f"table.{table}"] == 1, table
    text = "".join(parsed.text)
    assert "PASSED (4 invariants held, 1 not checked)" in text and result.command in text
    assert all(inv.title in text for inv in result.invariants)
    assert "None: every invariant held." in text
    assert parsed.scripts == 0 and parsed.links == []
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched


def test_html_report_escapes_markup_in_workflow_ids_and_evidence() -> None:
    result = failing_result()
    page = render_html(result)
    parsed = _parse(page)
    assert parsed.scripts == 0, "a planted <script> became an element"
    assert "<script" not in page.lower()
    text = "".join(parsed.text)
    assert f"wf-{PLANTED} step 2 started by n2-w0-0001@3" in text  # the message, read as text
    assert f"takeover of wf-{PLANTED}" in text  # the arrow's tooltip
    assert PLANTED in text.split("ended_by", 1)[1]  # the evidence table
    assert PLANTED in text.split("server_log=", 1)[1]  # the fault log's detail
    assert parsed.classes["g.takeover"] == len(result.takeovers) == 5
    assert parsed.classes["g.lane"] == len(result.lanes) == 9
    assert parsed.classes["div.violation"] == 13
    assert "FAILED (2 of 5 invariants violated)" in text


def test_html_report_caps_the_arrows_and_says_how_many_it_left_out() -> None:
    many = [dict(t, workflow_uuid=f"wf-{n}", at=T0 + 21.0 + n * 0.03) for n, t in enumerate(_takeovers(MAX_ARROWS + 250))]
    many.append({"workflow_uuid": "requeued", "from_executor_id": "n2-w0-0001", "to_executor_id": None, "at": T0 + 22.0})
    parsed = _parse(render_html(_result(_passing_invariants(), takeovers=many)))
    assert parsed.classes["g.takeover"] <= MAX_ARROWS
    text = "".join(parsed.text)
    assert f"Drew {parsed.classes['g.takeover']} of {len(many)} takeover arrows" in text
    assert f"{len(many) - MAX_ARROWS} omitted" in text


def test_html_report_of_a_large_run_draws_every_lane_and_fault_and_caps_the_arrows() -> None:
    result = busy_result(nodes=40, workers=4, faults=300, takeovers=3 * MAX_ARROWS)
    page = render_html(result)
    parsed = _parse(page)
    assert len(result.lanes) > 200
    assert parsed.classes["g.lane"] == len(result.lanes)
    assert parsed.classes["g.fault"] == len(result.faults) == 300
    assert 0 < parsed.classes["g.takeover"] <= MAX_ARROWS
    assert f"Drew {parsed.classes['g.takeover']} of {3 * MAX_ARROWS} takeover arrows" in "".join(parsed.text)
    assert len(page) < 2_000_000  # the page stays a page, not a data dump (the JSON is that)


def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = next((b for b in ("chromium-headless-shell", "chromium", "chromium-browser") if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no chromium on PATH: the page is checked by html.parser alone")
    write_html(failing_result(), tmp_path / "report.html")
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}", "--window-size=1280,1600",
         (tmp_path / "report.html").as_uri()],
        check=True, capture_output=True, timeout=60,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the progress line -------------------------------------------------------------------------


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_writes_plain_lines_at_most_every_ten_seconds_off_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(60, out)
    for elapsed in (0, 3, 9.9, 10, 15, 21, 24):
        progress.update(elapsed, faults=1, done=int(elapsed), started=30, last_fault="kill-node n2")
    progress.message("00:00:20.000 kill-node n2 pids 1020 1021")
    progress.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    bars = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[1].split()[0] for line in bars] == ["0/60s", "10/60s", "21/60s", "24/60s"]  # 24: the last, at close
    assert "workflows 10/30 done" in bars[1] and "last: kill-node n2" in bars[1]
    assert "00:00:20.000 kill-node n2 pids 1020 1021" in lines


def test_progress_redraws_one_line_on_a_terminal() -> None:
    out = _FakeTTY()
    progress = Progress(120, out, columns=100)
    progress.update(30, faults=2, done=50, started=80, last_fault="pause-node n1")
    progress.update(60, faults=3, done=90, started=120, last_fault=None)
    progress.message("00:01:00.000 restart-db")
    progress.close()
    written = out.getvalue()
    assert written.count("\r") >= 3 and written.endswith("\n")
    first, second = written.split("\r")[1:3]
    assert first.startswith("[######") and "30/120s" in first and "last: pause-node n1" in first
    assert "\n" not in first + second, "a redraw must not start a new line"
    assert "60/120s" in second and len(second) >= len(first)  # padded over the longer drawing
    before, after = written.split("00:01:00.000 restart-db\n")
    assert before.endswith("\r") and after.startswith("\r[") and "60/120s" in after  # wiped, printed, redrawn
    assert all(len(d.rstrip("\n")) <= 99 for d in written.split("\r"))


def test_progress_refuses_a_run_without_length() -> None:
    with pytest.raises(ValueError, match="positive seconds"):
        Progress(0, io.StringIO())
