"""The fleet chaos run (marked ``chaos``; ``pytest -m chaos``): three supervised nodes of two
workers each serve tests/apps/chaos_app.py while a seeded schedule of faults hits them, then
the invariants of tests/chaos_checks.py are checked from the side-effect ledger and the system
database, and every violation is reported with its evidence rows.

The faults, in an order and at times drawn from ``random.Random(seed)``: a whole node SIGKILLed
(supervisor tree) and restarted, twice; a worker SIGKILLed (its supervisor replaces it), three
times; a whole node and a single worker SIGSTOPped until the fleet declared them dead (past the
member timeout) and then SIGCONTed, twice each; two Postgres restarts (one clean, one
crash-and-recover); two rounds of pg_terminate_backend on half of pgfleet's backends. Work is
enqueued in waves while the faults go on: 320 queued jobs (each with a child workflow) and 16
queued fan-outs that start 5 direct jobs each, 816 workflows in all. Each fault is logged with
its time and pids, and the report marks evidence rows whose process a fault hit.

``PGFLEET_CHAOS_SEEDS`` (default "1,2,3") picks the seeds, ``PGFLEET_CHAOS_FLEET_SECONDS``
(default 90) how long the faults go on; each seed takes about 3-4 minutes. The server is an
embedded Postgres of this test's own (it is restarted), with durability on (a crash restart
must not lose commits, or a legitimate re-execution would look like a violation).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import chaos_checks as cc
from chaos_history import INSTRUMENT, load_history
from conftest import REPO_ROOT
from faults.fleet import Node, restart_postgres, signal_all, terminate_backends

pytestmark = pytest.mark.chaos

SEEDS = [int(s) for s in os.environ.get("PGFLEET_CHAOS_SEEDS", "1,2,3").split(",") if s.strip()]
FAULT_SECONDS = float(os.environ.get("PGFLEET_CHAOS_FLEET_SECONDS", "90"))
DRAIN_SECONDS = 180.0
APP = str(REPO_ROOT / "tests" / "apps" / "chaos_app.py")
NODES, WORKERS = ("chaos-a", "chaos-b", "chaos-c"), 2
HEARTBEAT, MEMBER_TIMEOUT = 0.5, 2.0
# The queue's limits and the work are sized so that the queue stays busy while the faults go on.
CONCURRENCY, WORKER_CONCURRENCY = 6, 2
WAVES, JOBS, FANOUTS, FANOUT_WIDTH = 8, 320, 16, 5
STEP_SECONDS, SLEEP_SECONDS = 0.2, 1.0
REQUIRED_FAULTS = (("node_kill",) * 2 + ("worker_kill",) * 3 + ("node_pause",) * 2 + ("worker_pause",) * 2
                   + ("pg_restart",) * 2 + ("terminate_backends",) * 2)  # fmt: skip


def job_result(n: int) -> dict:
    return {"n": n, "a": 10 * n + 1, "child": 10 * n + 6, "b": 10 * n + 2}


def fanout_result(n: int) -> dict:
    return {"n": n, "first": 10 * n, "jobs": [job_result(100 * n + i) for i in range(FANOUT_WIDTH)]}


def wall(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3]


class Admin:
    """The test's own connection, reconnecting across Postgres restarts."""

    def __init__(self, url: str) -> None:
        self.url, self.conn = url, None

    def query(self, query: str, params: tuple = ()) -> list[tuple]:
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                cur = self.conn.execute(query, params)
                return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                self.conn = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


@pytest.fixture(scope="module")
def chaos_server():
    from sysdb.embedded import EmbeddedPostgres

    base = Path(tempfile.mkdtemp(prefix="pgfleet-chaos-"))
    server = EmbeddedPostgres(base, durability=True)
    server.ensure_running()
    try:
        yield server
    finally:
        server.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


class Run:
    """One seed's run: the nodes, the fault log, the work enqueued."""

    def __init__(self, seed: int, server: Any, workdir: Path) -> None:
        from sysdb import SystemDatabase

        self.seed, self.server, self.workdir = seed, server, workdir
        self.rng = random.Random(seed)
        self.dbname = f"pgfleet_chaos_{seed}_{os.getpid()}"
        self.admin_url = server.url("postgres")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.dbname)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))
        self.url = server.url(self.dbname)
        migrated = SystemDatabase(self.url, pool_size=1)
        migrated.open()
        migrated.close()
        self.db = Admin(self.url)
        self.db.query(INSTRUMENT)
        env = {"PGFLEET_SYSTEM_DATABASE_URL": self.url, "PGFLEET_CHAOS_CONCURRENCY": str(CONCURRENCY),
               "PGFLEET_CHAOS_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY), "PGFLEET_CHAOS_STEP_SECONDS": str(STEP_SECONDS),
               "PGFLEET_CHAOS_SLEEP_SECONDS": str(SLEEP_SECONDS)}  # fmt: skip
        config = {"heartbeat_interval_sec": HEARTBEAT, "member_timeout_sec": MEMBER_TIMEOUT}
        self.nodes = [Node(name, APP, WORKERS, config, env, workdir, REPO_ROOT) for name in NODES]
        self.faults: list[dict[str, Any]] = []
        self.expected: dict[str, Any] = {}
        self.t0 = time.time()
        self.pg_restarts = 0

    # -- logging ------------------------------------------------------------------------------

    def log(self, kind: str, **detail: Any) -> None:
        entry = {"t": round(time.time() - self.t0, 2), "wall": time.time(), "kind": kind, **detail}
        self.faults.append(entry)
        print(f"[seed {self.seed}] +{entry['t']:7.2f}s {wall(entry['wall'])} {kind} "
              + " ".join(f"{k}={v}" for k, v in detail.items()), flush=True)  # fmt: skip

    def fault_context(self, row: dict) -> str:
        """The faults that hit this row's process in the minute before it (a paused pid, say)."""
        pid, at = row.get("pid"), row.get("started_at")
        if pid is None or at is None:
            return ""
        hits = [f"{f['kind']} at {wall(f['wall'])} ({abs(at - f['wall']):.2f}s {'before' if at >= f['wall'] else 'after'})"
                for f in self.faults if pid in f.get("pids", ()) and at - 60 <= f["wall"] <= at + 0.5]  # fmt: skip
        return f"  <- pid {pid}: {', '.join(hits)}" if hits else ""

    # -- work -----------------------------------------------------------------------------------

    def enqueue_wave(self, wave: int) -> None:
        from runtime import DBOSClient

        work = [("chaos_job", f"job-{wave}-{i}", (wave * 1000 + i,)) for i in range(JOBS // WAVES)]
        work += [("chaos_fanout", f"fan-{wave}-{i}", (wave * 10 + i, FANOUT_WIDTH)) for i in range(FANOUTS // WAVES)]
        deadline = time.monotonic() + 90
        client = None
        for name, workflow_id, args in work:
            while True:
                try:
                    client = client or DBOSClient(system_database_url=self.url)
                    client.enqueue({"workflow_name": name, "queue_name": "chaos", "workflow_id": workflow_id}, *args)
                    break
                except Exception as exc:  # a restart or a terminated backend: enqueueing is idempotent
                    if time.monotonic() > deadline:
                        raise AssertionError(f"could not enqueue {workflow_id}: {exc!r}") from exc
                    client = None
                    time.sleep(0.5)
            self.expected[workflow_id] = job_result(args[0]) if name == "chaos_job" else fanout_result(args[0])
        if client is not None:
            client.destroy()
        self.log("enqueue", wave=wave, workflows=len(work))

    # -- faults ---------------------------------------------------------------------------------

    def pending_by_executor(self) -> dict[str, int]:
        return dict(self.db.query("SELECT executor_id, count(*) FROM dbos.workflow_status WHERE status = 'PENDING' GROUP BY 1"))

    def pick_node(self) -> Node:
        """A node at random, weighted by the workflows it runs now: a fault should hit work."""
        pending = self.pending_by_executor()
        weights = [0.2 + sum(n for e, n in pending.items() if e and e.startswith(node.name + "-")) for node in self.nodes]
        return self.rng.choices(self.nodes, weights)[0]

    def live_worker(self, node: Node, timeout: float = 20.0) -> tuple[str, int] | None:
        """One of the node's registered workers, weighted by the workflows it runs now."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = sorted(node.worker_pids(self.db.query).items())
            if workers:
                pending = self.pending_by_executor()
                return self.rng.choices(workers, [0.2 + pending.get(e, 0) for e, _ in workers])[0]
            time.sleep(0.2)
        return None

    def registered(self, node: Node, timeout: float = 20.0) -> dict[str, int]:
        """The node's workers once all have registered (a node just restarted is still booting),
        or those that did within ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(workers := node.worker_pids(self.db.query)) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.2)
        return workers

    def wait_declared_dead(self, executors: list[str], timeout: float = 20.0) -> float | None:
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            rows = self.db.query("SELECT count(*) FROM dbos.pgfleet_executors WHERE executor_id = ANY(%s) AND status = 'dead'",
                                 (executors,))  # fmt: skip
            if executors and rows[0][0] == len(executors):
                return round(time.monotonic() - t, 2)
            time.sleep(0.1)
        return None

    def hold_paused(self, kind: str, target: str, pids: set[int], executors: list[str]) -> None:
        """Keep ``pids`` stopped until the fleet declared ``executors`` dead (past the member
        timeout, so their workflows are taken over), a little longer, then SIGCONT them."""
        self.log(kind, target=target, pids=sorted(pids), executors=executors, signal="SIGSTOP")
        dead_after = self.wait_declared_dead(executors)
        time.sleep(MEMBER_TIMEOUT if dead_after is None else self.rng.uniform(0.2, 1.5))
        signal_all(pids, signal.SIGCONT)
        self.log(kind + "_resume", target=target, pids=sorted(pids), declared_dead_after=dead_after, signal="SIGCONT")

    def inject(self, kind: str) -> None:
        node = self.pick_node()
        if kind == "node_kill":
            tree = node.kill()
            self.log(kind, target=node.name, pids=sorted(tree), signal="SIGKILL")
            time.sleep(self.rng.uniform(0.5, 2.0))
            self.log("node_restart", target=node.name, supervisor=node.start())
        elif kind in ("worker_kill", "worker_pause"):
            found = self.live_worker(node)
            if found is None:
                self.log(kind + "_skipped", target=node.name, why="no registered worker in 20s")
                return
            executor, pid = found
            if kind == "worker_kill":
                signal_all([pid], signal.SIGKILL)
                self.log(kind, target=executor, pids=[pid], signal="SIGKILL")
            else:
                signal_all([pid], signal.SIGSTOP)
                self.hold_paused(kind, executor, {pid}, [executor])
        elif kind == "node_pause":
            executors = sorted(self.registered(node))
            if not executors:
                self.log(kind + "_skipped", target=node.name, why="no registered worker in 20s")
                return
            self.hold_paused(kind, node.name, node.pause(), executors)
        elif kind == "pg_restart":
            self.pg_restarts += 1
            mode = "fast" if self.pg_restarts == 1 else "immediate"
            self.log(kind, **restart_postgres(self.server, mode, self.rng.uniform(0.5, 2.5)))
        elif kind == "terminate_backends":
            self.log(kind, **terminate_backends(self.admin_url, self.dbname, self.rng))
        else:
            raise AssertionError(kind)

    def schedule(self) -> list[tuple[float, str, Any]]:
        kinds = list(REQUIRED_FAULTS)
        self.rng.shuffle(kinds)
        slot = FAULT_SECONDS / len(kinds)
        events = [(slot * (i + self.rng.uniform(0.1, 0.5)), "fault", k) for i, k in enumerate(kinds)]
        events += [(FAULT_SECONDS * 0.6 * w / WAVES, "wave", w) for w in range(WAVES)]
        return sorted(events, key=lambda e: e[0])

    # -- the run --------------------------------------------------------------------------------

    def start_nodes(self) -> None:
        for node in self.nodes:
            node.start()

        def all_up() -> bool:
            for node in self.nodes:
                if node.proc.poll() is not None:
                    raise AssertionError(f"supervisor {node.name} exited ({node.proc.returncode}):\n{node.log_tail()}")
            return sum(len(n.worker_pids(self.db.query)) for n in self.nodes) == len(NODES) * WORKERS

        deadline = time.monotonic() + 90
        while not all_up():
            assert time.monotonic() < deadline, "the nodes' workers did not all register in 90s"
            time.sleep(0.2)
        self.log("nodes_up", workers={n.name: n.worker_pids(self.db.query) for n in self.nodes})

    def run_faults(self) -> None:
        start = time.time()
        for at, what, arg in self.schedule():
            time.sleep(max(0.0, start + at - time.time()))
            if what == "wave":
                self.enqueue_wave(arg)
            else:
                self.inject(arg)

    def drain(self) -> bool:
        """Wait (bounded) until every workflow row is SUCCESS; False if some never got there."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            ((total, unfinished),) = self.db.query(
                "SELECT count(*), count(*) FILTER (WHERE status <> 'SUCCESS') FROM dbos.workflow_status")
            if unfinished == 0 and total >= len(self.expected):
                self.log("drained", workflows=total)
                return True
            time.sleep(0.5)
        self.log("drain_timeout", unfinished=unfinished, of=total)
        return False

    def stop(self) -> None:
        for node in self.nodes:
            signal_all(node.tree(), signal.SIGCONT)
            node.kill()


def check(run: Run, history: dict[str, list[dict]]) -> list[cc.Violation]:
    violations = cc.check_outcomes(history["statuses"], run.expected, events=run.expected)
    violations += cc.check_no_rerun_after_record(history["ledger"], history["outputs"])
    violations += cc.check_no_start_after_ownership_lost(history["ledger"], history["ownership"], history["takeovers"])
    violations += cc.check_outputs_recorded_once(history["outputs"])
    violations += cc.check_queue_concurrency(history["ownership"], "chaos", CONCURRENCY, WORKER_CONCURRENCY)
    violations += cc.check_one_leader_per_term(history["leader_log"])
    # The harness itself: a run whose faults did not happen, or hit nothing, proves nothing.
    done = [f["kind"] for f in run.faults]
    for kind in set(REQUIRED_FAULTS):
        if done.count(kind) < REQUIRED_FAULTS.count(kind):
            violations.append(cc.Violation("harness", f"fault {kind} ran {done.count(kind)} times, planned {REQUIRED_FAULTS.count(kind)}"))
    if len(history["statuses"]) < 500:
        violations.append(cc.Violation("harness", f"only {len(history['statuses'])} workflows ran (want >= 500)"))
    for f in run.faults:
        if f["kind"].endswith("_resume") and f.get("declared_dead_after") is None:
            violations.append(cc.Violation("pause-undetected", f"{f['target']} SIGSTOPped past the member timeout was not "
                                           f"declared dead within 20s (SIGCONT at {wall(f['wall'])})", [f]))  # fmt: skip
    if not history["takeovers"]:
        violations.append(cc.Violation("harness", "no workflow was ever taken over: the pauses and kills hit nothing"))
    return violations


def summary(run: Run, history: dict[str, list[dict]]) -> str:
    ledger, outputs = history["ledger"], history["outputs"]
    step_outputs = sum(1 for o in outputs if o["function_name"] == "chaos_step")
    peak, peak_here = cc.queue_peaks(history["ownership"], "chaos")
    return (
        f"seed {run.seed}: {len(history['statuses'])} workflows, {len(ledger)} step bodies started, {step_outputs} step "
        f"outputs recorded ({len(ledger) - step_outputs} bodies ran without becoming the recorded output), "
        f"{len(history['takeovers'])} takeovers, {len({r['owner_epoch'] for r in history['ownership'] if r['owner_epoch']})} "
        f"ownership epochs, {len({r['term'] for r in history['leader_log']})} leader terms; queue chaos peaked at "
        f"{peak}/{CONCURRENCY} PENDING, {peak_here}/{WORKER_CONCURRENCY} on one worker; faults: "
        + ", ".join(f"{k} x{sum(1 for f in run.faults if f['kind'] == k)}" for k in sorted(set(REQUIRED_FAULTS)))
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_fleet_survives_a_seeded_storm_of_faults(chaos_server, seed):
    # Not tmp_path: pytest keeps only its last few runs, and a failing run's node logs must stay.
    workdir = Path(tempfile.mkdtemp(prefix=f"pgfleet-chaos-seed{seed}-"))
    run = Run(seed, chaos_server, workdir)
    try:
        run.start_nodes()
        run.run_faults()
        for node in run.nodes:  # nothing may stay paused, and a node killed last must be back
            signal_all(node.tree(), signal.SIGCONT)
        run.drain()
        time.sleep(1.0)  # every late write of a resumed process gets its chance to land
    finally:
        run.stop()
    with psycopg.connect(run.url, autocommit=True) as conn:
        history = load_history(conn)
    violations = check(run, history)

    def describe(row: dict) -> str:
        return cc.describe_row(row) + (run.fault_context(row) if row else "")

    report = summary(run, history) + "\n" + cc.format_report(violations, describe=describe)
    full = summary(run, history) + "\n" + cc.format_report(violations, per_kind=10_000, describe=describe)
    (workdir / "report.txt").write_text(full + "\n\nfaults:\n" + "\n".join(map(str, run.faults)) + "\n")
    print(report)
    print(f"node logs, fault log and report: {workdir}")
    assert not violations, report
