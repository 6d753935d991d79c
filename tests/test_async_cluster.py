"""What the cluster promises, for ``async def`` workflows: recovery after SIGKILL, takeover by a
peer, fencing (the lease check before each async step body), queue limits and admission.

Real processes (tests/apps/async_worker.py) and real signals; every step body writes a row to
the side-effect ledger (public.side_effects) as it starts, so the checks read what really ran.
"""

from __future__ import annotations

import base64
import os
import pickle
import queue
import signal
import threading
import time
from collections import Counter

import pytest

from conftest import run_app, wait_until

HEARTBEAT = 0.25
MEMBER_TIMEOUT = 1.5
STEPS = 4
HANG = 1  # the index of the step the victim is killed inside


class Worker:
    """One tests/apps/async_worker.py process; its stdout lines are read in the background."""

    def __init__(self, url: str, executor_id: str, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {"PGFLEET_HEARTBEAT": str(HEARTBEAT), "PGFLEET_MEMBER_TIMEOUT": str(MEMBER_TIMEOUT),
                    "PGFLEET_TEST_STEPS": str(STEPS), **(env or {})}
        self.executor_id = executor_id
        self.proc = run_app("async_worker.py", url, executor_id, *args, env=full_env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        line = self.next_line(60)
        assert line == "ready", line

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def next_line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""  # type: ignore[union-attr]
            raise AssertionError(f"{self.executor_id}: no output within {timeout}s {err}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@pytest.fixture
def workers():
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def mixed_ids(executor_id: str, n: int) -> list[str]:
    return [f"{executor_id}-{kind}-{i}" for kind in ("aw", "bg", "q") for i in range(n)]


def statuses(db, ids: list[str]) -> dict[str, str]:
    return dict(db.execute("SELECT workflow_uuid, status FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)", (ids,)).fetchall())


def hung_in_step(db, ids: list[str], function_id: int) -> bool:
    return db.execute(
        "SELECT count(DISTINCT workflow_id) FROM public.side_effects WHERE workflow_id = ANY(%s) AND function_id = %s",
        (ids, function_id),
    ).fetchone()[0] == len(ids)


def decode(value: str):
    return pickle.loads(base64.b64decode(value))


def assert_each_completed_step_ran_once(db, ids: list[str], killed_pid: int) -> dict[str, set[int]]:
    """Every workflow succeeded with all its steps; a step whose checkpoint the killed process
    wrote never ran again; only the step it was killed inside ran twice (a workflow a peer
    claimed from the queue ran each step once, there). Returns, per
    workflow, the pids that completed its steps."""
    completers: dict[str, set[int]] = {}
    for workflow_id in ids:
        status, output = db.execute(
            "SELECT status, output FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)
        ).fetchone()
        assert status == "SUCCESS", (workflow_id, status)
        result = decode(output)
        assert [r["step"] for r in result] == list(range(STEPS)), (workflow_id, result)
        recorded = db.execute(
            "SELECT function_id, output FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY 1", (workflow_id,)
        ).fetchall()
        assert [r[0] for r in recorded] == list(range(1, STEPS + 1)), (workflow_id, recorded)
        ran = Counter()
        pids: dict[int, list[int]] = {}
        for function_id, pid in db.execute(
            "SELECT function_id, pid FROM public.side_effects WHERE workflow_id = %s ORDER BY id", (workflow_id,)
        ):
            ran[function_id] += 1
            pids.setdefault(function_id, []).append(pid)
        for function_id, output in recorded:
            by = decode(output)["pid"]
            if by == killed_pid:  # completed before the kill: its body never ran again
                assert pids[function_id] == [killed_pid], (workflow_id, function_id, pids)
            elif function_id == HANG + 1 and killed_pid in pids[1]:  # killed inside it: once more, elsewhere
                assert pids[function_id] == [killed_pid, by], (workflow_id, function_id, pids)
            else:
                assert pids[function_id] == [by], (workflow_id, function_id, pids)
        completers[workflow_id] = {decode(o)["pid"] for _, o in recorded}
    return completers


# -- 1. recovery after SIGKILL ----------------------------------------------------------------


def test_sigkilled_async_workflows_of_every_kind_are_recovered_by_the_restarted_process(sys_url, ledger, workers):
    db = ledger
    ids = mixed_ids("solo", 2)
    victim = Worker(sys_url, "solo", "mixed", "2", env={"PGFLEET_TEST_HANG_STEP": str(HANG)})
    workers.append(victim)
    # Every one of them (awaited, started from sync code, claimed from the queue) is inside
    # its second step's body, its first step checkpointed.
    wait_until(lambda: hung_in_step(db, ids, HANG + 1), "every workflow inside its second step", 30)
    victim.kill()
    assert set(statuses(db, ids).values()) == {"PENDING"}

    restarted = Worker(sys_url, "solo")
    workers.append(restarted)
    wait_until(lambda: set(statuses(db, ids).values()) == {"SUCCESS"}, "the restarted process to finish them", 60)
    completers = assert_each_completed_step_ran_once(db, ids, victim.proc.pid)
    assert all(pids == {victim.proc.pid, restarted.proc.pid} for pids in completers.values()), completers


# -- 2. takeover by another executor -----------------------------------------------------------


def test_a_live_peer_takes_over_a_dead_members_async_workflows_and_finishes_them(sys_url, ledger, workers):
    db = ledger
    ids = mixed_ids("node-a", 2)
    peer = Worker(sys_url, "node-b")
    workers.append(peer)
    victim = Worker(sys_url, "node-a", "mixed", "2", env={"PGFLEET_TEST_HANG_STEP": str(HANG)})
    workers.append(victim)
    # node-b may claim some of node-a's queued ones itself: wait for the ones node-a runs.
    wait_until(
        lambda: db.execute(
            "SELECT count(*) FROM dbos.workflow_status w WHERE workflow_uuid = ANY(%s) AND "
            "(executor_id = 'node-b' OR EXISTS (SELECT 1 FROM public.side_effects s "
            " WHERE s.workflow_id = w.workflow_uuid AND s.function_id = %s))",
            (ids, HANG + 1),
        ).fetchone()[0] == len(ids),
        "node-a's workflows inside their second step", 30,
    )
    on_a = [r[0] for r in db.execute(
        "SELECT workflow_uuid FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s) AND executor_id = 'node-a'", (ids,)
    )]
    assert {i.split("-")[2] for i in on_a} >= {"aw", "bg"}, on_a
    killed_at = time.time()
    victim.kill()
    wait_until(lambda: set(statuses(db, ids).values()) == {"SUCCESS"}, "node-b to take them over and finish", 30)
    completers = assert_each_completed_step_ran_once(db, ids, victim.proc.pid)
    assert {w for w, pids in completers.items() if peer.proc.pid in pids} >= set(on_a)
    resumed = db.execute(
        "SELECT workflow_id, min(extract(epoch from at))::float8 FROM public.side_effects "
        "WHERE executor_id = 'node-b' AND workflow_id = ANY(%s) GROUP BY 1", (on_a,)
    ).fetchall()
    assert sorted(r[0] for r in resumed) == sorted(on_a)
    latency = max(at - killed_at for _, at in resumed)
    print(f"async kill->resume latency: max {latency:.2f}s (member timeout {MEMBER_TIMEOUT}s)")
    assert latency <= MEMBER_TIMEOUT + 2.0  # the timeout, a sweep tick, CI slack
    moved = {r[0] for r in db.execute("SELECT workflow_uuid FROM dbos.pgfleet_takeovers WHERE to_executor_id = 'node-b'")}
    assert moved >= {i for i in on_a if "-q-" not in i}, moved


# -- 4. queue limits and admission -------------------------------------------------------------


@pytest.fixture
def q_ledger(db):
    db.execute("CREATE TABLE public.q_ledger (workflow_id text, executor text, started float8, ended float8)")
    return db


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t opens)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, 0) for _, end in intervals])
    running = peak = 0
    for _, is_start in events:
        running += 1 if is_start else -1
        peak = max(peak, running)
    return peak


def enqueue(url: str, names_and_ids: list[tuple[str, str]]) -> list[str]:
    from runtime import DBOSClient

    client = DBOSClient(system_database_url=url)
    try:
        return [client.enqueue({"workflow_name": name, "queue_name": "limits-q", "workflow_id": workflow_id,
                                "app_version": "async-cluster-test"}, i).workflow_id
                for i, (name, workflow_id) in enumerate(names_and_ids)]
    finally:
        client.destroy()


def all_succeeded(db, ids: list[str]):
    def check() -> bool:
        seen = Counter(statuses(db, ids).values())
        assert set(seen) <= {"ENQUEUED", "PENDING", "SUCCESS"}, seen
        return seen["SUCCESS"] == len(ids)

    return check


def test_async_workflows_on_a_queue_never_exceed_its_limits_across_two_processes(sys_url, q_ledger, workers):
    db = q_ledger
    env = {"PGFLEET_Q_CONCURRENCY": "3", "PGFLEET_Q_WORKER_CONCURRENCY": "2"}
    executors = ["lim-1", "lim-2"]
    for executor_id in executors:
        workers.append(Worker(sys_url, executor_id, env=env))
    # Async and sync workflows of one queue share its limits.
    ids = enqueue(sys_url, [("limits_task" if i % 3 else "limits_sync_task", f"lim-wf-{i}") for i in range(24)])
    wait_until(all_succeeded(db, ids), "24 queued workflows to succeed", 60)

    rows = db.execute("SELECT workflow_id, executor, started, ended FROM public.q_ledger").fetchall()
    assert sorted(r[0] for r in rows) == sorted(ids)  # each step body ran once
    peak = max_overlap([(s, e) for _, _, s, e in rows])
    per_executor = {x: max_overlap([(s, e) for _, ex, s, e in rows if ex == x]) for x in executors}
    by_executor = Counter(r[1] for r in rows)
    print(f"async queue: peak {peak}, per-executor peaks {per_executor}, per executor {dict(by_executor)}")
    assert peak <= 3, f"{peak} ran at once (concurrency=3)"
    assert all(p <= 2 for p in per_executor.values()), f"per-executor peaks {per_executor} (worker_concurrency=2)"
    assert len(by_executor) == 2, f"only {dict(by_executor)} did work"
    owners = dict(db.execute("SELECT workflow_uuid, executor_id FROM dbos.workflow_status WHERE queue_name='limits-q'").fetchall())
    assert {r[0]: r[1] for r in rows} == owners
    for worker in workers:
        assert worker.terminate() == 0


def test_async_workflows_count_against_max_executor_threads_like_threads(sys_url, q_ledger, workers):
    db = q_ledger
    # Started from sync code (4 async, 4 sync) and claimed from a queue without limits (6):
    # with max_executor_threads=2 never more than two at once, whatever their kind.
    worker = Worker(sys_url, "admit-1", "admit", "4", env={"PGFLEET_MAX_THREADS": "2"})
    workers.append(worker)
    queued = enqueue(sys_url, [("limits_task" if i % 2 else "limits_sync_task", f"admit-q-{i}") for i in range(6)])
    ids = [f"admit-{kind}-{i}" for kind in "as" for i in range(4)] + queued
    wait_until(all_succeeded(db, ids), "every workflow to succeed", 60)
    rows = db.execute("SELECT workflow_id, started, ended FROM public.q_ledger").fetchall()
    assert sorted(r[0] for r in rows) == sorted(ids)
    peak = max_overlap([(s, e) for _, s, e in rows])
    print(f"admission: peak {peak} of max_executor_threads=2")
    assert peak <= 2, f"{peak} workflows ran at once with max_executor_threads=2"
    assert worker.terminate() == 0
