"""The processes and faults of ``pgfleet chaos`` (cluster/process/chaos/: database, netns, nodes,
faults) on a real two-node fleet of tests/apps/supervised_app.py: each fault kind does what it
says, and closing the run leaves no process, database or namespace behind.

The fleet runs on an embedded server of the run's own (durability on, as in a chaos run),
inside network namespaces when this machine allows them (root on Linux), so that ``partition``
is a real link cut; without them the partition test is skipped, saying why. The scratch
database on a configured server is checked on the test server.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from cluster.process.chaos.database import ChaosDatabase, ChaosDatabaseError
from cluster.process.chaos.faults import FaultInjector, FaultUnavailable, check_fault_kinds
from cluster.process.chaos.model import FAULT_KINDS
from cluster.process.chaos.netns import Netns, NetnsError
from cluster.process.chaos.nodes import Node, node_config_text, pid_alive
from conftest import REPO_ROOT, wait_until

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

APP = str(REPO_ROOT / "tests" / "apps" / "supervised_app.py")
WORKERS = 2
HEARTBEAT, MEMBER_TIMEOUT = 0.4, 2.0
SETTINGS = {"heartbeat_interval_sec": HEARTBEAT, "member_timeout_sec": MEMBER_TIMEOUT}


@dataclass
class Fleet:
    db: ChaosDatabase
    nodes: list[Node]
    netns: Netns | None
    why_no_netns: str | None
    injector: FaultInjector
    base: Path
    closed: bool = False

    def members(self) -> dict[str, tuple[int, int, str]]:
        """executor id -> (pid, epoch, status)."""
        return {m.executor_id: (m.pid, m.epoch, m.status) for m in self.db.members()}

    def all_up(self) -> bool:
        for node in self.nodes:
            assert node.alive(), f"node {node.name} exited:\n{node.log_tail()}"
        return all(len(node.worker_pids(self.db)) == WORKERS for node in self.nodes)

    def wait_up(self, what: str = "every worker of both nodes to be registered") -> None:
        wait_until(self.all_up, what, timeout=60, interval=0.1)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.nodes[0].stop(grace=2)
            self.nodes[1].kill_everything()
            self.db.close()
        finally:
            if self.netns is not None:
                self.netns.destroy()
            shutil.rmtree(self.base, ignore_errors=True)


def _namespaces(netns: Netns | None) -> tuple[Netns | None, str | None]:
    reason = Netns.available()
    if reason:
        return None, reason
    assert netns is not None
    try:
        netns.create(2)
    except NetnsError as exc:
        return None, f"cannot create network namespaces here: {exc}"
    return netns, None


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    base = Path(tempfile.mkdtemp(prefix="pgfleet-chaos-faults-"))  # the server user must reach it: not tmp_path
    netns, why = _namespaces(Netns())
    db = ChaosDatabase.prepare(configured_url=None, netns=netns, workdir=base, seed=7)
    tag = os.getpid()
    nodes = [
        Node(f"cf{tag}-{letter}", APP, WORKERS, url=db.node_url(i), config_file=None, workdir=base / "logs",
             env={"PGFLEET_TEST_LEDGER": str(base / "ledger")}, prefix=netns.exec_prefix(i) if netns else [],
             extra_config=SETTINGS, cwd=REPO_ROOT, grace=2)
        for i, letter in enumerate("ab")
    ]  # fmt: skip
    log: list[str] = []
    injector = FaultInjector(db, nodes, random.Random(7), netns=netns, member_timeout_sec=MEMBER_TIMEOUT, log=log.append)
    f = Fleet(db, nodes, netns, why, injector, base)
    try:
        for node in nodes:
            node.start()
        f.wait_up()
        yield f
    finally:
        print("\n".join(log))
        f.close()


def test_kill_worker_sigkills_a_registered_worker_and_its_supervisor_replaces_it(fleet: Fleet) -> None:
    fleet.wait_up()
    record = fleet.injector.inject("kill-worker")
    (pid,), (executor,) = record.pids, record.executors
    assert record.kind == "kill-worker" and record.target == executor and any(n.owns(executor) for n in fleet.nodes)
    wait_until(lambda: not pid_alive(pid), f"worker {pid} to die")
    wait_until(lambda: (lambda m: m and m[2] == "active" and m[0] != pid)(fleet.members().get(executor)),
               f"{executor} to be replaced by a new process", timeout=60, interval=0.1)  # fmt: skip


def test_pause_worker_holds_it_until_declared_dead_then_resumes_it(fleet: Fleet) -> None:
    fleet.wait_up()
    before = fleet.members()
    record = fleet.injector.inject("pause-worker")
    (pid,), (executor,) = record.pids, record.executors
    assert record.detail["declared_dead_after_sec"] is not None, record
    assert record.ended_at is not None and record.ended_at > record.at
    assert pid_alive(pid), "a paused worker is resumed, not killed"
    # Back from its pause it learns it was declared dead and rejoins: same process, new epoch.
    wait_until(lambda: (lambda m: m[2] == "active" and m[0] == pid and m[1] > before[executor][1])(fleet.members()[executor]),
               f"{executor} to rejoin with a new epoch", timeout=30, interval=0.1)  # fmt: skip


def test_kill_node_kills_the_whole_tree_and_restarts_the_node(fleet: Fleet) -> None:
    fleet.wait_up()
    record = fleet.injector.inject("kill-node")
    node = next(n for n in fleet.nodes if n.name == record.node)
    assert len(record.pids) >= 1 + WORKERS, record.pids
    assert sorted(record.executors) == [f"{node.name}-{i}" for i in range(WORKERS)]
    wait_until(lambda: not any(pid_alive(p) for p in record.pids), "every process of the killed node to be gone")
    assert node.alive() and node.pid == record.detail["new_supervisor_pid"] not in record.pids
    fleet.wait_up(f"{node.name} to be back with all its workers")
    assert not set(node.worker_pids(fleet.db.sysdb).values()) & set(record.pids)  # a SystemDatabase works too
    # Its supervisor's pidfile is in the node's own temporary directory: another run's node of
    # the same name on this machine is not refused.
    assert (node.tmpdir / f"pgfleet-supervisor-{node.name}.pid").read_text().strip() == str(node.pid)


def test_pause_node_stops_the_tree_until_its_workers_are_declared_dead(fleet: Fleet) -> None:
    fleet.wait_up()
    record = fleet.injector.inject("pause-node")
    node = next(n for n in fleet.nodes if n.name == record.node)
    assert record.detail["declared_dead_after_sec"] is not None, record
    assert record.ended_at is not None and set(record.pids) >= {node.pid}
    assert all(pid_alive(p) for p in record.pids)
    fleet.wait_up(f"{node.name}'s workers to rejoin after the pause")


def test_terminate_backends_ends_some_of_pgfleets_sessions(fleet: Fleet) -> None:
    fleet.wait_up()
    record = fleet.injector.inject("terminate-backends")
    ended = record.detail["backend_pids"]
    assert 1 <= record.detail["terminated"] == len(ended) <= record.detail["of"]
    assert all(name.startswith("pgfleet") for name in record.detail["by_application"])
    with psycopg.connect(fleet.db.url, autocommit=True) as conn:
        wait_until(lambda: not conn.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (ended,)).fetchall(),
                   "the terminated backends to exit")  # fmt: skip
    fleet.wait_up()


def test_restart_db_restarts_the_server_fast_then_immediate(fleet: Fleet) -> None:
    fleet.wait_up()
    modes = []
    for _ in range(2):
        record = fleet.injector.inject("restart-db")
        detail = record.detail
        modes.append(detail["mode"])
        assert detail["old_postmaster"] and detail["new_postmaster"] and detail["old_postmaster"] != detail["new_postmaster"]
        assert not pid_alive(detail["old_postmaster"]) and pid_alive(detail["new_postmaster"])
        assert record.ended_at is not None and record.ended_at > record.at
        fleet.wait_up("the fleet to carry on after the restart")
    assert modes == ["fast", "immediate"]


def test_partition_cuts_a_node_off_until_it_is_declared_dead(fleet: Fleet) -> None:
    if fleet.netns is None:
        pytest.skip(f"partition needs network namespaces: {fleet.why_no_netns}")
    fleet.wait_up()
    before = fleet.members()
    record = fleet.injector.inject("partition")
    assert record.detail["declared_dead_after_sec"] is not None, record
    assert record.ended_at is not None and all(pid_alive(p) for p in record.pids), "a partition kills nothing"
    fleet.wait_up(f"{record.node} to rejoin once its link is back")
    after = fleet.members()
    assert all(after[e][1] > before[e][1] for e in record.executors), "the cut-off workers rejoined with new epochs"


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def test_an_interrupted_hold_ends_at_once_and_still_resumes_the_worker(fleet: Fleet) -> None:
    fleet.wait_up()
    interrupted = threading.Event()
    interrupted.set()
    injector = FaultInjector(fleet.db, fleet.nodes, random.Random(1), netns=fleet.netns, member_timeout_sec=MEMBER_TIMEOUT,
                             stop=interrupted)  # fmt: skip
    record = injector.inject("pause-worker")
    assert record.detail["declared_dead_after_sec"] is None, "the hold did not wait for the death"
    assert pid_alive(record.pids[0]) and not _stopped(record.pids[0])


def test_restore_all_undoes_what_an_interrupted_fault_left(fleet: Fleet) -> None:
    fleet.wait_up()
    paused, killed = fleet.nodes
    stopped = paused.pause()
    killed.kill()
    if fleet.netns is not None:
        fleet.netns.cut(0)
    assert fleet.db.server is not None and fleet.db.server.stop(mode="fast")
    done = fleet.injector.restore_all()
    assert done == [f"restarted node {killed.name}", "started the database server again"]
    assert not any(_stopped(p) for p in stopped if pid_alive(p))
    fleet.wait_up("the fleet to be whole again after restore_all")


def test_every_fault_kind_is_possible_in_this_run(fleet: Fleet) -> None:
    kinds = [k for k in FAULT_KINDS if fleet.netns is not None or k != "partition"]
    check_fault_kinds(kinds, can_restart=fleet.db.can_restart, netns=fleet.netns is not None)


def test_close_leaves_no_process_database_or_namespace_behind(fleet: Fleet) -> None:
    fleet.wait_up()
    pids = set().union(*(node.tree() for node in fleet.nodes))
    postmaster = fleet.db.server.status().pid if fleet.db.server else None
    namespaces = [fleet.netns.db_ns, fleet.netns.node_ns(0)] if fleet.netns else []
    assert postmaster and pids
    fleet.close()
    wait_until(lambda: not any(pid_alive(p) for p in pids | {postmaster}), "every node process and the server to be gone")
    assert not fleet.base.exists()
    listed = os.popen("ip netns list 2>/dev/null").read()
    assert not [ns for ns in namespaces if ns in listed], listed


# -- without a fleet -------------------------------------------------------------------------


def test_a_configured_server_gets_a_scratch_database_created_migrated_and_dropped(pg_server_url: str, tmp_path: Path) -> None:
    with pytest.raises(ChaosDatabaseError, match="--netns needs the embedded server"):
        ChaosDatabase.prepare(configured_url=pg_server_url, netns=Netns(), workdir=tmp_path, seed=3)
    db = ChaosDatabase.prepare(configured_url=pg_server_url, netns=None, workdir=tmp_path, seed=3)
    try:
        assert db.dbname == f"pgfleet_chaos_3_{os.getpid()}" and not db.can_restart and db.node_url(1) == db.url
        assert db.describe().startswith(f"scratch database {db.dbname} on postgresql://")
        # The same name again (same seed, same pid) is refused, and the first run's is left alone.
        with pytest.raises(ChaosDatabaseError, match=f"{db.dbname} already exists"):
            ChaosDatabase.prepare(configured_url=pg_server_url, netns=None, workdir=tmp_path, seed=3)
        with psycopg.connect(db.url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM dbos.pgfleet_migrations").fetchone()[0] >= 7
            assert conn.execute("SELECT current_database()").fetchone()[0] == db.dbname
        assert abs(db.clock_offset()) < 5.0  # one host: the clocks agree
        for kinds, message in ((["restart-db"], "restart-db needs the embedded server"),
                               (["kill-node", "partition"], r"partition needs --netns"),
                               (["kill-nodes"], "unknown fault kind 'kill-nodes'"), ([], "--faults is empty")):  # fmt: skip
            with pytest.raises(FaultUnavailable, match=message):
                check_fault_kinds(kinds, can_restart=db.can_restart, netns=False)
        check_fault_kinds(["kill-node", "kill-worker", "pause-node", "pause-worker", "terminate-backends"], can_restart=db.can_restart, netns=False)
        # terminate-backends ends pgfleet's sessions, and only those.
        sessions = {name: psycopg.connect(db.url, autocommit=True, application_name=name)
                    for name in ("pgfleet 123 n1-0", "pgfleet-supervisor-n1", "someone-else")}  # fmt: skip
        try:
            detail = db.terminate_backends(random.Random(1), fraction=1.0)
            assert detail["terminated"] == 2 and sorted(detail["by_application"]) == ["pgfleet 123 n1-0", "pgfleet-supervisor-n1"]
            sessions["someone-else"].execute("SELECT 1")
            with pytest.raises(psycopg.OperationalError):
                sessions["pgfleet 123 n1-0"].execute("SELECT 1")
        finally:
            for conn in sessions.values():
                conn.close()
    finally:
        said = db.close()
    assert "dropped the scratch database" in said
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        assert not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db.dbname,)).fetchone()
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = current_database()").fetchone()


def test_a_role_that_cannot_create_databases_gets_a_clear_error(pg_server_url: str, tmp_path: Path) -> None:
    role = f"pgfleet_nocreate_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB").format(sql.Identifier(role)))
    try:
        with pytest.raises(ChaosDatabaseError, match=rf"role {role} may not create databases.*CREATEDB"):
            ChaosDatabase.prepare(configured_url=make_conninfo(pg_server_url, user=role), netns=None, workdir=tmp_path, seed=4)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_an_embedded_server_without_namespaces_restarts_and_is_removed(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="pgfleet-chaos-db-"))
    db = ChaosDatabase.prepare(configured_url=None, netns=None, workdir=base, seed=5)
    try:
        assert db.can_restart and db.server is not None and db.server.durability
        detail = db.restart("immediate", 0.1)
        assert detail["old_postmaster"] != detail["new_postmaster"]
        with psycopg.connect(db.url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM dbos.pgfleet_migrations").fetchone()[0] >= 7
        postmaster = detail["new_postmaster"]
    finally:
        db.close()
    assert not pid_alive(postmaster) and not (base / "postgres").exists()
    shutil.rmtree(base, ignore_errors=True)


def test_a_nodes_config_is_the_users_with_the_database_and_the_ledger_the_runs(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('member_timeout_sec = 4.0\nattempt_ledger = false\nsystem_database_url = "postgresql://x@y/z"\n'
                    'queues = ["a", "b"]\nname = "ignored-by-the-flag"\n')  # fmt: skip
    text = node_config_text(user, "postgresql://postgres@10.204.0.1:5432/scratch", {"heartbeat_interval_sec": 0.5})
    values = tomllib.loads(text)
    assert values == {"member_timeout_sec": 4.0, "queues": ["a", "b"], "name": "ignored-by-the-flag",
                      "heartbeat_interval_sec": 0.5, "attempt_ledger": True,
                      "system_database_url": "postgresql://postgres@10.204.0.1:5432/scratch"}  # fmt: skip
    user.write_text("member_timeout = 4\n")
    with pytest.raises(Exception, match="unknown key 'member_timeout'"):
        node_config_text(user, "postgresql://x@y/z")
