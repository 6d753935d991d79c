"""Failover with real processes and real signals: SIGKILL, SIGSTOP/SIGCONT, a killed leader,
racing sweepers, and a Postgres restart. Every scenario ends by checking the invariants: every
workflow finished with the right result, no step output recorded twice, nothing recorded by a
fenced owner, at most one leader per term."""

from __future__ import annotations

import base64
import os
import pickle
import signal
import threading
import time

import psycopg
import pytest

from conftest import run_app, wait_until
from sysdb import SystemDatabase

HEARTBEAT = 0.25
MEMBER_TIMEOUT = 1.5
ENV = {"PGFLEET_HEARTBEAT": str(HEARTBEAT), "PGFLEET_MEMBER_TIMEOUT": str(MEMBER_TIMEOUT)}
STEPS = 6


class Fleet:
    """Worker processes of tests/apps/cluster_worker.py, killed for sure at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: dict[str, object] = {}

    def start(self, executor_id: str, *args: str, env: dict | None = None):
        proc = run_app("cluster_worker.py", self.url, executor_id, *args, env={**ENV, **(env or {})})
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line
        self.procs[executor_id] = proc
        return proc

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def fleet(sys_url):
    f = Fleet(sys_url)
    yield f
    f.stop_all()


def statuses(db, prefix: str) -> dict[str, str]:
    return dict(db.execute("SELECT workflow_uuid, status FROM dbos.workflow_status WHERE workflow_uuid LIKE %s", (prefix + "%",)).fetchall())


def recorded_outputs(db, workflow_id: str) -> list[dict]:
    rows = db.execute(
        "SELECT function_id, output FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY function_id", (workflow_id,)
    ).fetchall()
    return [pickle.loads(base64.b64decode(output)) for _, output in rows]


def assert_invariants(db, workflow_ids: list[str]) -> None:
    for workflow_id in workflow_ids:
        status, output = db.execute(
            "SELECT status, output FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)
        ).fetchone()
        assert status == "SUCCESS", (workflow_id, status)
        result = pickle.loads(base64.b64decode(output))
        assert [r["step"] for r in result] == list(range(STEPS))
        # The primary key makes a second record of one position impossible; check it holds.
        positions = [r[0] for r in db.execute(
            "SELECT function_id FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY 1", (workflow_id,)
        )]
        assert positions == list(range(1, STEPS + 1))
    terms = db.execute("SELECT term, count(DISTINCT executor_id) FROM dbos.pgfleet_leader_log GROUP BY term").fetchall()
    assert all(n == 1 for _, n in terms), f"two leaders acted in one term: {terms}"


def test_sigkilled_executor_work_is_finished_by_a_peer(fleet, ledger, sys_url):
    db = ledger
    victim = fleet.start("node-a", "start", "4")
    fleet.start("node-b")
    # Let node-a record a step or two of each workflow, then kill it mid-step.
    wait_until(lambda: db.execute("SELECT count(*) FROM dbos.operation_outputs").fetchone()[0] >= 4, "first steps", 20)
    killed_at = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)

    ids = [f"node-a-wf-{i}" for i in range(4)]
    wait_until(lambda: set(statuses(db, "node-a-wf-").values()) == {"SUCCESS"}, "takeover and completion", 30)
    assert_invariants(db, ids)
    # node-b resumed them: the first step it ran for each came within the bound.
    resumed = db.execute(
        "SELECT workflow_id, min(extract(epoch from at))::float8 FROM public.side_effects WHERE executor_id = 'node-b' GROUP BY 1"
    ).fetchall()
    assert sorted(r[0] for r in resumed) == ids
    latencies = [at - killed_at for _, at in resumed]
    print(f"kill->resume latency: max {max(latencies):.2f}s (member timeout {MEMBER_TIMEOUT}s)")
    assert max(latencies) <= MEMBER_TIMEOUT + 1.0 + 1.0  # timeout + sweep tick, with CI slack
    takeovers = db.execute("SELECT workflow_uuid, to_executor_id FROM dbos.pgfleet_takeovers ORDER BY 1").fetchall()
    assert takeovers == [(i, "node-b") for i in ids]
    assert db.execute("SELECT status FROM dbos.pgfleet_executors WHERE executor_id='node-a'").fetchone()[0] == "dead"


def test_paused_executor_is_fenced_and_rejoins_with_a_new_epoch(fleet, ledger):
    db = ledger
    victim = fleet.start("node-a", "start", "3")
    fleet.start("node-b")
    old_epoch = db.execute("SELECT epoch FROM dbos.pgfleet_executors WHERE executor_id='node-a'").fetchone()[0]
    wait_until(lambda: db.execute("SELECT count(*) FROM public.side_effects").fetchone()[0] >= 3, "steps running", 20)
    os.kill(victim.pid, signal.SIGSTOP)  # paused mid-step, holding its workflows
    ids = [f"node-a-wf-{i}" for i in range(3)]
    wait_until(lambda: set(statuses(db, "node-a-wf-").values()) == {"SUCCESS"}, "takeover and completion", 30)
    takeover_at = db.execute("SELECT min(at) FROM dbos.pgfleet_takeovers").fetchone()[0]
    os.kill(victim.pid, signal.SIGCONT)

    # It notices it was declared dead, abandons its old work and rejoins with a new epoch.
    new_epoch = wait_until(
        lambda: (lambda r: r[0] if r and r[1] == "active" and r[0] != old_epoch else None)(
            db.execute("SELECT epoch, status FROM dbos.pgfleet_executors WHERE executor_id='node-a'").fetchone()
        ),
        "node-a to rejoin", 20,
    )
    assert new_epoch > old_epoch
    time.sleep(1.0)  # give a fenced write every chance to land
    assert_invariants(db, ids)
    for workflow_id in ids:
        for output in recorded_outputs(db, workflow_id):
            # Outputs recorded by node-a came from before the takeover; node-b did the rest.
            assert output["executor_id"] in ("node-a", "node-b")
        final = db.execute("SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid=%s", (workflow_id,)).fetchone()[0]
        assert final == "node-b"
    # No checkpoint by node-a's old ownership after the takeover: every output it recorded is
    # from a step whose side effect happened before the takeover.
    late = db.execute(
        "SELECT s.workflow_id, s.function_id FROM public.side_effects s "
        "JOIN dbos.operation_outputs o ON o.workflow_uuid = s.workflow_id AND o.function_id = s.function_id "
        "WHERE s.executor_id = 'node-a' AND s.at > %s",
        (takeover_at,),
    ).fetchall()
    for workflow_id, function_id in late:
        output = recorded_outputs(db, workflow_id)[function_id - 1]
        assert output["executor_id"] != "node-a", f"fenced owner recorded step {function_id} of {workflow_id}"


def test_killing_the_leader_elects_another_with_a_higher_term(fleet, db):
    fleet.start("node-a")
    first = wait_until(lambda: db.execute("SELECT executor_id, term FROM dbos.pgfleet_leader WHERE expires_at > now()").fetchone(), "a leader", 10)
    fleet.start("node-b")
    fleet.start("node-c")
    leader_proc = fleet.procs[first[0]]
    (killed_at,) = db.execute("SELECT now()").fetchone()  # on the database clock, as acquired_at
    os.kill(leader_proc.pid, signal.SIGKILL)
    leader_proc.wait(10)
    second = wait_until(
        lambda: db.execute("SELECT executor_id, term FROM dbos.pgfleet_leader WHERE expires_at > now() AND term > %s", (first[1],)).fetchone(),
        "a new leader", MEMBER_TIMEOUT + 5,
    )
    (acquired_at,) = db.execute("SELECT acquired_at FROM dbos.pgfleet_leader WHERE term = %s", (second[1],)).fetchone()
    elapsed = (acquired_at - killed_at).total_seconds()
    print(f"leader re-elected in {elapsed:.2f}s")
    assert second[0] != first[0]
    assert second[1] > first[1]
    # Recorded times: the new term began within the member timeout (plus a poll) of the kill.
    assert elapsed <= MEMBER_TIMEOUT + 2.0
    # The new leader declares the old one dead, and logs it in its own term.
    wait_until(lambda: db.execute("SELECT 1 FROM dbos.pgfleet_leader_log WHERE action='declare_dead' AND term=%s", (second[1],)).fetchone(), "declare_dead", 10)
    rows = db.execute("SELECT term, executor_id FROM dbos.pgfleet_leader_log ORDER BY id").fetchall()
    terms = [t for t, _ in rows]
    assert terms == sorted(terms)
    assert all(len({e for t2, e in rows if t2 == t}) == 1 for t in set(terms))


def test_two_sweepers_of_one_dead_member_move_each_workflow_once(sys_url, db):
    """Two members race to take over the same dead peer: each workflow moves exactly once."""
    from cluster.coordination.sweeper import take_over_member

    db.execute(
        "INSERT INTO dbos.pgfleet_executors (executor_id, epoch, host, pid, status, workflow_names) VALUES "
        "('dead-node', 1, 'h', 1, 'dead', '{}'), ('live-1', 2, 'h', 2, 'active', '{w}'), ('live-2', 3, 'h', 3, 'active', '{w}')"
    )
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, executor_id, owner_epoch, queue_name, created_at) "
            "VALUES (%s, 'PENDING', 'w', 'dead-node', %s, %s, %s)",
            [(f"w{i}", i, "q" if i % 3 == 0 else None, i) for i in range(500)],
        )
    dbs = [SystemDatabase(sys_url, pool_size=2) for _ in range(2)]
    for d in dbs:
        d.open(run_migrations=False)
    results: list[list] = [[], []]
    barrier = threading.Barrier(2)

    def sweep(k: int) -> None:
        barrier.wait()
        results[k] = take_over_member(dbs[k], "dead-node", 1, by_executor_id=f"live-{k + 1}", member_timeout_sec=60)

    threads = [threading.Thread(target=sweep, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for d in dbs:
        d.close()
    moved = [r.workflow_uuid for batch in results for r in batch]
    assert sorted(moved) == sorted(f"w{i}" for i in range(500))  # all, once
    assert len(moved) == len(set(moved))
    assert db.execute("SELECT count(*), count(DISTINCT workflow_uuid) FROM dbos.pgfleet_takeovers").fetchone() == (500, 500)
    counts = dict(db.execute(
        "SELECT coalesce(executor_id, status), count(*) FROM dbos.workflow_status GROUP BY 1"
    ).fetchall())
    requeued = sum(1 for i in range(500) if i % 3 == 0)
    assert counts.get("ENQUEUED") == requeued
    # The rest are spread evenly over the two live members.
    assert abs(counts["live-1"] - counts["live-2"]) <= 1
    assert db.execute("SELECT count(DISTINCT owner_epoch) FROM dbos.workflow_status WHERE status='PENDING'").fetchone()[0] == 500 - requeued


def test_fleet_status_shows_members_leader_and_queues(dbos, db):
    from runtime import DBOS

    status = wait_until(lambda: (lambda s: s if s.leader_term else None)(DBOS.fleet_status()), "leader", 10)
    me = status.member("test-executor")
    assert me is not None and me.status == "active" and me.is_leader
    assert me.heartbeat_age_sec < 5
    assert status.leader is not None and status.leader.executor_id == "test-executor"


def test_postgres_restart_mid_run_every_executor_reconnects_and_finishes():
    """A server of this test's own (durable), stopped for longer than the member timeout."""
    import shutil
    import tempfile

    from psycopg.conninfo import make_conninfo

    from sysdb.embedded import EmbeddedPostgres

    # Not under pytest's tmp_path: pytest resets its root to mode 0700 when any session starts,
    # which would cut the server's own user off from its data directory mid-test.
    base = tempfile.mkdtemp(prefix="pgfleet-restart-test-")
    server = EmbeddedPostgres(base, durability=True)
    server.ensure_running()
    url = make_conninfo(server.url("postgres"), dbname="restart_test")
    fleet = Fleet(url)
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE restart_test")
        bootstrap = SystemDatabase(url, pool_size=1)
        bootstrap.open()
        bootstrap.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE public.side_effects (id bigserial, workflow_id text, function_id int, executor_id text, "
                "owner_epoch bigint, pid int, at timestamptz default clock_timestamp())"
            )
        fleet.start("node-a", "start", "3")
        fleet.start("node-b", "start", "3")

        def done_steps() -> int:
            with psycopg.connect(url) as conn:
                return conn.execute("SELECT count(*) FROM dbos.operation_outputs").fetchone()[0]

        wait_until(lambda: done_steps() >= 6, "some steps", 20)
        server.stop(mode="fast")
        time.sleep(MEMBER_TIMEOUT + 1.5)  # the outage itself: longer than the member timeout
        server.ensure_running()

        ids = [f"node-{n}-wf-{i}" for n in "ab" for i in range(3)]

        def all_done() -> bool:
            with psycopg.connect(url) as conn:
                return conn.execute(
                    "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS' AND workflow_uuid = ANY(%s)", (ids,)
                ).fetchone()[0] == len(ids)

        wait_until(all_done, "every workflow to finish after the restart", 60, interval=0.2)
        for proc in fleet.procs.values():
            assert proc.poll() is None, "an executor died instead of reconnecting"
        with psycopg.connect(url, autocommit=True) as conn:
            assert_invariants(conn, ids)
    finally:
        fleet.stop_all()
        server.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


def test_a_leaving_member_hands_its_workflows_over_at_once(dbos, db):
    """A graceful stop that cannot finish its workflows gives them to live members that can run
    them right away, without waiting for the member timeout (30 s here)."""
    from runtime import DBOS

    @DBOS.step(name="slow_step")  # the leaver's step name: this function replays its steps
    def slow_step(i):
        return i

    @DBOS.workflow(name="leaver_job")
    def leaver_job(n):
        return [slow_step(i) for i in range(n)]

    # This executor's heartbeat advertises leaver_job from its next beat on.
    wait_until(lambda: "leaver_job" in db.execute(
        "SELECT workflow_names FROM dbos.pgfleet_executors WHERE executor_id='test-executor'").fetchone()[0], "registration", 10)
    leaver = run_app("leaver.py", db.info.dsn)
    out, err = leaver.communicate(timeout=60)
    assert leaver.returncode == 0, err
    ids = [f"left-{i}" for i in range(3)]
    moved = db.execute("SELECT workflow_uuid, to_executor_id, by_executor_id FROM dbos.pgfleet_takeovers ORDER BY 1").fetchall()
    assert moved == [(i, "test-executor", "leaver") for i in ids]
    for workflow_id in ids:
        assert DBOS.retrieve_workflow(workflow_id).get_result(timeout_seconds=10) == list(range(6))
    # The leaver handed its work over itself as it left (by_executor_id above), and it is dead
    # now: nobody waited for its 30 s member timeout to run out.
    assert db.execute("SELECT status FROM dbos.pgfleet_executors WHERE executor_id='leaver'").fetchone()[0] == "dead"
