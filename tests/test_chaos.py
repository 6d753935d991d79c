"""A long chaos run (marked ``chaos``; run with ``pytest -m chaos``): executors are SIGKILLed,
SIGSTOPped and SIGCONTed at random while they work through queued and directly started
workflows, then the invariants are checked:

- every workflow finished with the right result;
- no step position was recorded twice (the primary key; checked anyway);
- nothing was recorded by a fenced owner: ownership epochs only grow, so within one workflow
  the epochs that recorded its steps never go down;
- at most one leader acted in any term.

``PGFLEET_CHAOS_SECONDS`` (default 40) sets how long the faults go on.
"""

from __future__ import annotations

import base64
import os
import pickle
import random
import signal
import time

import pytest

from conftest import run_app, wait_until
from test_cluster import ENV, STEPS

pytestmark = pytest.mark.chaos

CHAOS_SECONDS = float(os.environ.get("PGFLEET_CHAOS_SECONDS", "40"))
NODES = ("chaos-a", "chaos-b", "chaos-c")


def start(url: str, executor_id: str, *args: str):
    proc = run_app("cluster_worker.py", url, executor_id, *args, env=ENV)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_random_kills_and_pauses_lose_nothing_and_fence_everything(sys_url, db):
    db.execute(
        "CREATE TABLE public.side_effects (id bigserial, workflow_id text, function_id int, executor_id text, "
        "owner_epoch bigint, pid int, at timestamptz default clock_timestamp())"
    )
    rng = random.Random(int(os.environ.get("PGFLEET_CHAOS_SEED", "7")))
    procs = {node: start(sys_url, node, "start", "8") for node in NODES}
    paused: set[str] = set()
    faults = {"kill": 0, "pause": 0}
    deadline = time.monotonic() + CHAOS_SECONDS
    try:
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.5, 2.0))
            node = rng.choice(NODES)
            proc = procs[node]
            if node in paused:
                os.kill(proc.pid, signal.SIGCONT)
                paused.discard(node)
            elif rng.random() < 0.5:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                faults["kill"] += 1
                procs[node] = start(sys_url, node)  # restarted with the same executor id
            elif len(paused) < len(NODES) - 1:  # keep one executor running
                os.kill(proc.pid, signal.SIGSTOP)
                paused.add(node)
                faults["pause"] += 1
        for node in list(paused):
            os.kill(procs[node].pid, signal.SIGCONT)
        ids = [f"{node}-wf-{i}" for node in NODES for i in range(8)]
        wait_until(
            lambda: db.execute(
                "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS' AND workflow_uuid = ANY(%s)", (ids,)
            ).fetchone()[0] == len(ids),
            "every workflow to finish", 120,
            interval=0.5,
        )
        print(f"faults injected: {faults}")
        for workflow_id in ids:
            rows = db.execute(
                "SELECT function_id, output FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY function_id",
                (workflow_id,),
            ).fetchall()
            assert [r[0] for r in rows] == list(range(1, STEPS + 1))
            epochs = [pickle.loads(base64.b64decode(output))["owner_epoch"] for _, output in rows]
            assert epochs == sorted(epochs), f"{workflow_id}: a fenced owner recorded a step: epochs {epochs}"
            result = pickle.loads(base64.b64decode(
                db.execute("SELECT output FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()[0]
            ))
            assert [r["step"] for r in result] == list(range(STEPS))
        terms = db.execute("SELECT term, count(DISTINCT executor_id) FROM dbos.pgfleet_leader_log GROUP BY term").fetchall()
        assert all(n == 1 for _, n in terms)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(10)
