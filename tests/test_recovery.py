"""Crash recovery with real processes killed by SIGKILL, and one id run once across processes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from conftest import run_app, wait_until


def wait_for_line(path: Path, needle: str, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if any(line.startswith(needle) for line in lines):
                return lines
        time.sleep(0.02)
    raise AssertionError(f"{needle!r} never appeared in {path}: {path.read_text() if path.exists() else '(none)'}")


def kill(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_killed_workflow_resumes_from_first_unfinished_step(sys_url, db, tmp_path):
    ledger = tmp_path / "ledger"
    first = run_app("crashy.py", "start", sys_url, str(ledger))
    wait_for_line(ledger, "step_two")
    kill(first)

    status, attempts = db.execute(
        "SELECT status, recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid='crash-wf'"
    ).fetchone()
    assert (status, attempts) == ("PENDING", 1)

    second = run_app("crashy.py", "recover", sys_url, str(ledger), "crash-wf")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "crash-wf 6" in out

    runs = [line.split() for line in ledger.read_text().splitlines()]
    by_step = {}
    for step, pid in runs:
        by_step.setdefault(step, []).append(int(pid))
    # step_one completed before the crash: never again. step_two was running: at least once
    # more. step_three only in the recovering process.
    assert by_step["step_one"] == [first.pid]
    assert by_step["step_two"] == [first.pid, second.pid]
    assert by_step["step_three"] == [second.pid]
    status, attempts = db.execute(
        "SELECT status, recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid='crash-wf'"
    ).fetchone()
    assert (status, attempts) == ("SUCCESS", 2)
    # Each position was recorded exactly once.
    assert db.execute(
        "SELECT function_id, count(*) FROM dbos.operation_outputs WHERE workflow_uuid='crash-wf' GROUP BY 1 ORDER BY 1"
    ).fetchall() == [(1, 1), (2, 1), (3, 1)]


def test_recovered_sleep_only_sleeps_what_is_left(sys_url, db, tmp_path):
    """A recovered sleep wakes at the wake-up time its first execution recorded, not a full
    sleep after the recovery: the test moves the recorded time of a 600 s sleep to one second
    from now, so a recovery that slept again would outlast the 60 s the test waits."""
    ledger = tmp_path / "ledger"
    first = run_app("crashy.py", "sleep", sys_url, str(ledger))
    wait_for_line(ledger, "step_one")
    recorded = "SELECT output FROM dbos.operation_outputs WHERE workflow_uuid='sleep-wf' AND function_name='DBOS.sleep'"
    wait_until(lambda: db.execute(recorded).fetchone(), "the wake-up time to be recorded", 10)
    kill(first)
    wake_at = time.time() + 1.0
    db.execute(
        "UPDATE dbos.operation_outputs SET output = %s WHERE workflow_uuid='sleep-wf' AND function_name='DBOS.sleep'",
        (json.dumps(wake_at),),
    )

    second = run_app("crashy.py", "recover", sys_url, str(ledger), "sleep-wf")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "sleep-wf rested" in out
    # It slept until the recorded time (the clocks are this host's), not past it by a new sleep.
    (completed_ms,) = db.execute("SELECT updated_at FROM dbos.workflow_status WHERE workflow_uuid='sleep-wf'").fetchone()
    assert completed_ms >= int(wake_at * 1000)
    assert [line.split()[0] for line in ledger.read_text().splitlines()] == ["step_one", "woke"]


def test_recovery_attempts_are_bounded(sys_url, db, tmp_path):
    ledger = tmp_path / "ledger"
    first = run_app("crashy.py", "start", sys_url, str(ledger))
    wait_for_line(ledger, "step_two")
    kill(first)
    # Pretend it has crashed 100 times already: the next recovery dead-letters it.
    db.execute("UPDATE dbos.workflow_status SET recovery_attempts = 101 WHERE workflow_uuid='crash-wf'")
    second = run_app("crashy.py", "recover", sys_url, str(ledger))
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid='crash-wf'").fetchone()[0] == (
        "MAX_RECOVERY_ATTEMPTS_EXCEEDED"
    )
    assert [line.split()[0] for line in ledger.read_text().splitlines()] == ["step_one", "step_two"]


def test_same_workflow_id_in_two_processes_runs_once(sys_url, tmp_path):
    ledger = tmp_path / "ledger"
    procs = [run_app("same_id.py", sys_url, str(ledger), f"exec-{i}") for i in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "result ran once" in out
    assert len(ledger.read_text().splitlines()) == 1
