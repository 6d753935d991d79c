r"""Two `pgfleet supervise` nodes as two hosts, each in a network namespace of its own, sharing one
Postgres over veth links: SIGKILL one host's whole process tree, and cut one host's link for
longer than the member timeout.

The test builds its own little network (it needs root; it is skipped, with the reason, when it
cannot create namespaces):

    pgf-h1-<pid>  10.203.1.2 --veth-- 10.203.1.1 \
                                                   pgf-db-<pid>: Postgres (embedded server)
    pgf-h2-<pid>  10.203.2.2 --veth-- 10.203.2.1 /

Postgres runs in a third namespace, so every packet of the test stays inside namespaces the test
made (none has a route anywhere else) and dies with them; the test process itself reaches the
server through its unix socket. Each host also gets a UTS namespace with its own host name, so
the two supervisors really look like two machines (supervisor ids ``NODE@pgf-hN``).

A partition is the server-side end of a host's veth set down: the host keeps its address and
route but its packets vanish, as on a cut cable. After every scenario the test checks, from the
database: every workflow SUCCESS with all its steps; no step position recorded twice; and, from
who-ran-it step outputs plus the time each output row was inserted (a trigger of the test's own),
that no output of a lost ownership was recorded after its takeover.

Scenarios: the host holding the leadership SIGKILLed whole (the other elects itself, sweeps, and
finishes every job); a host cut off for longer than the member timeout, once as the leader and
once as a follower (the other takes its work over; back on the network it records nothing for
what it lost and rejoins with new epochs); and a cut-off host stops starting steps once its
heartbeats have failed for the member timeout minus a margin, even while a heartbeat hangs (this
test once caught the heartbeat blocking in TCP retransmission).
"""

from __future__ import annotations

import base64
import itertools
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from cluster.process.chaos.netns import SUBNET, Netns, NetnsError
from cluster.process.chaos.nodes import descendants, pid_alive
from conftest import REPO_ROOT, wait_until

APP = str(REPO_ROOT / "tests" / "apps" / "hosts_app.py")
HEARTBEAT = 0.25
MEMBER_TIMEOUT = 1.5
WORKERS = 2  # per host
STEPS = 8
STEP_SECONDS = 0.25
PARTITION_SEC = 4.0  # longer than the member timeout, as the issue asks
HOSTS = (1, 2)  # the test's hosts; host h lives in node namespace h - 1 of cluster/process/chaos/netns.py

_db_counter = itertools.count()


# -- helpers -----------------------------------------------------------------------------------


def decode(text: str):
    return pickle.loads(base64.b64decode(text))


# -- the network ---------------------------------------------------------------------------------


def _why_no_namespaces() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (run the suite as root to include these tests)"
    for tool in ("ip", "unshare", "hostname"):
        if shutil.which(tool) is None:
            return f"the {tool!r} command is not installed (iproute2 / util-linux / hostname)"
    return None


# Run in the db namespace: start (or restart) the embedded server there, so it listens there.
_START_SERVER = (
    "import sys; from sysdb.embedded import EmbeddedPostgres; "
    "print(EmbeddedPostgres(sys.argv[1], durability=False).ensure_running())"
)
_PROBE = "import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=5).close()"


@dataclass
class Lab:
    net: Netns
    server: object
    base: Path
    port: int
    admin_url: str  # through the unix socket, from the test process

    def local_url(self, dbname: str) -> str:
        return make_conninfo(self.admin_url, dbname=dbname)

    def host_url(self, host: int, dbname: str) -> str:
        return f"postgresql://postgres@{self.net.db_ip(host - 1)}:{self.port}/{dbname}"

    def set_link(self, host: int, up: bool) -> None:
        """The server-side end of the host's cable: down, and the host's packets go nowhere."""
        (self.net.heal if up else self.net.cut)(host - 1)

    def host_ns(self, host: int) -> str:
        return self.net.node_ns(host - 1)


def _in_ns(ns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def lab():
    reason = _why_no_namespaces()
    if reason:
        pytest.skip(reason)
    from sysdb.embedded import EmbeddedPostgres

    net = Netns()
    base = Path(tempfile.mkdtemp(prefix="pgfleet-hosts-"))  # not under tmp_path: see test_cluster
    server = EmbeddedPostgres(base, durability=False)  # started inside the db namespace below
    try:
        try:
            net.create(len(HOSTS))  # removes namespaces a killed earlier run left behind, too
        except NetnsError as exc:
            pytest.skip(f"cannot build the test network (no CAP_SYS_ADMIN/CAP_NET_ADMIN here?): {exc}")
        started = _in_ns(net.db_ns, sys.executable, "-c", _START_SERVER, str(base))
        assert started.returncode == 0, f"embedded server did not start in {net.db_ns}: {started.stderr[-3000:]}"
        port = server.status().port
        admin_url = make_conninfo("", host=str(server.run_dir), port=port, user="postgres", dbname="postgres")
        # Listen on the db ends of both links too, and trust the two /30 links (ALTER SYSTEM
        # overrides the server's managed pgfleet.conf; pg_hba.conf is ours to extend).
        with psycopg.connect(admin_url, autocommit=True) as conn:
            addresses = ",".join(["127.0.0.1", *net.db_addresses()])
            conn.execute(sql.SQL("ALTER SYSTEM SET listen_addresses = {}").format(sql.Literal(addresses)))
        with open(server.data_dir / "pg_hba.conf", "a") as hba:
            for i in range(len(HOSTS)):
                hba.write(f"host all all {SUBNET}.{i}.0/30 trust  # tests/test_hosts.py\n")
        server.stop(mode="fast")
        started = _in_ns(net.db_ns, sys.executable, "-c", _START_SERVER, str(base))
        assert started.returncode == 0, f"embedded server did not restart: {started.stderr[-3000:]}"
        for i in range(len(HOSTS)):
            probe = _in_ns(net.node_ns(i), sys.executable, "-c", _PROBE,
                           f"postgresql://postgres@{net.db_ip(i)}:{port}/postgres")  # fmt: skip
            assert probe.returncode == 0, f"host {i} cannot reach Postgres over its veth: {probe.stderr[-2000:]}"
        yield Lab(net, server, base, port, admin_url)
    finally:
        try:
            server.stop(mode="immediate")  # no-op when it never started
        finally:
            net.destroy()
        shutil.rmtree(base, ignore_errors=True)


# -- the hosts -----------------------------------------------------------------------------------


class Host:
    """One `pgfleet supervise` node in host namespace ``index``, with a host name of its own."""

    def __init__(self, lab: Lab, index: int, name: str, dbname: str, workdir: Path) -> None:
        self.index, self.name = index, name
        self.hostname = f"pgf-h{index}"
        self.ledger = workdir / f"{name}.ledger"
        self.log = workdir / f"{name}.log"
        config = workdir / f"{name}.toml"
        config.write_text(f"heartbeat_interval_sec = {HEARTBEAT}\nmember_timeout_sec = {MEMBER_TIMEOUT}\n")
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "PGFLEET_SYSTEM_DATABASE_URL": lab.host_url(index, dbname),
            "PGFLEET_TEST_LEDGER": str(self.ledger),
            "PGFLEET_TEST_STEP_SECONDS": str(STEP_SECONDS),
            "PGF_TEST_HOSTNAME": self.hostname,
        }
        cmd = [
            "ip", "netns", "exec", lab.host_ns(index),
            "unshare", "--uts",
            "sh", "-c", 'hostname "$PGF_TEST_HOSTNAME" && exec "$@"', "sh",
            sys.executable, "-m", "cluster.process.cli", "supervise", APP,
            "--name", name, "--workers", str(WORKERS), "--grace", "3", "--config", str(config),
        ]  # fmt: skip
        # Every `exec` above keeps the pid: self.proc.pid is the supervisor, and its own session
        # and process group hold the whole host (the workers inherit both).
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def members(self, db) -> dict[str, dict]:
        rows = db.execute(
            "SELECT executor_id, epoch, pid, status, host, supervisor_id FROM dbos.pgfleet_executors "
            "WHERE executor_id LIKE %s ORDER BY executor_id",
            (self.name + "-%",),
        ).fetchall()
        return {r[0]: {"epoch": r[1], "pid": r[2], "status": r[3], "host": r[4], "supervisor_id": r[5]} for r in rows}

    def owns(self, executor_id: str | None) -> bool:
        return bool(executor_id) and executor_id.rsplit("-", 1)[0] == self.name

    def kill_tree(self) -> set[int]:
        """SIGKILL the supervisor and every process below it, all at once."""
        tree = descendants(self.proc.pid)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in tree:  # anything that left the process group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        return tree

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill_tree()

    def log_events(self, needle: str) -> list[tuple[float, str]]:
        """(unix time, line) of the log lines containing ``needle`` (supervisor and workers log
        "%Y-%m-%d %H:%M:%S,mmm LEVEL logger event=..." in local time)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ", line)
            if m and needle in line:
                found.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(m.group(2)) / 1000, line))
        return found

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def victim_is(host: Host, leader: dict) -> bool:
    """Whether ``host`` holds the leadership described by ``leader``."""
    return host.owns(leader["executor_id"])


class Cluster:
    """One test's database on the lab server, and the hosts running on it."""

    def __init__(self, lab: Lab, dbname: str, workdir: Path, db) -> None:
        self.lab, self.dbname, self.workdir, self.db = lab, dbname, workdir, db
        self.hosts: list[Host] = []

    def start_hosts(self, prefix: str) -> tuple[Host, Host]:
        h1 = Host(self.lab, 1, f"{prefix}-h1", self.dbname, self.workdir)
        self.hosts.append(h1)
        h2 = Host(self.lab, 2, f"{prefix}-h2", self.dbname, self.workdir)
        self.hosts.append(h2)
        t0 = time.monotonic()

        def all_up():
            for host in (h1, h2):
                if host.proc.poll() is not None:
                    raise AssertionError(f"supervisor {host.name} exited ({host.proc.returncode}):\n{host.log_tail()}")
            members = {**h1.members(self.db), **h2.members(self.db)}
            return len(members) == 2 * WORKERS and all(m["status"] == "active" for m in members.values())

        wait_until(all_up, "both hosts' workers to register", timeout=45)
        wait_until(self.leader, "a leader", timeout=10)
        print(f"\n[{prefix}] both hosts up in {time.monotonic() - t0:.2f}s; leader {self.leader()}")
        for host in (h1, h2):  # each host is its own machine: its own host name
            assert {m["host"] for m in host.members(self.db).values()} == {host.hostname}
        return h1, h2

    def leader(self) -> dict | None:
        row = self.db.execute(
            "SELECT executor_id, term, backend_pid FROM dbos.pgfleet_leader WHERE expires_at > now()"
        ).fetchone()
        return {"executor_id": row[0], "term": row[1], "backend_pid": row[2]} if row else None

    def enqueue(self, ids: list[str], workflow_name: str = "hosts_job", args: tuple = (STEPS,)) -> None:
        from runtime import DBOSClient

        client = DBOSClient(system_database_url=self.lab.local_url(self.dbname))
        try:
            for workflow_id in ids:
                client.enqueue({"workflow_name": workflow_name, "queue_name": "jobs", "workflow_id": workflow_id}, workflow_id, *args)
        finally:
            client.destroy()

    def pending_of(self, host: Host) -> list[str]:
        """Workflows ``host`` owns right now that have at least one recorded step."""
        return [r[0] for r in self.db.execute(
            "SELECT w.workflow_uuid FROM dbos.workflow_status w WHERE w.status = 'PENDING' AND w.executor_id LIKE %s "
            "AND EXISTS (SELECT 1 FROM dbos.operation_outputs o WHERE o.workflow_uuid = w.workflow_uuid)",
            (host.name + "-%",),
        )]

    def all_succeeded(self, ids: list[str]) -> bool:
        return self.db.execute(
            "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS' AND workflow_uuid = ANY(%s)", (ids,)
        ).fetchone()[0] == len(ids)

    def outputs(self) -> list[dict]:
        """Every recorded step output (of host_step: sleeps record a wake-up time), with the time
        (database clock) its row was inserted."""
        rows = self.db.execute(
            "SELECT o.workflow_uuid, o.function_id, o.output, extract(epoch FROM l.at)::float8 "
            "FROM dbos.operation_outputs o JOIN public.output_log l USING (workflow_uuid, function_id) "
            "WHERE o.function_name <> 'DBOS.sleep' ORDER BY l.at"
        ).fetchall()
        return [{"workflow_uuid": w, "function_id": f, **decode(out), "recorded_at": at} for w, f, out, at in rows]

    def takeovers(self) -> list[dict]:
        cols = ("workflow_uuid", "from_executor_id", "from_epoch", "to_executor_id", "to_epoch", "requeued_to",
                "by_executor_id", "leader_term", "at")  # fmt: skip
        rows = self.db.execute(
            f"SELECT {', '.join(cols[:-1])}, extract(epoch FROM at)::float8 FROM dbos.pgfleet_takeovers ORDER BY id"
        ).fetchall()
        return [dict(zip(cols, r)) for r in rows]

    def ledger(self, host: Host) -> list[dict]:
        """The step bodies ``host`` ran (side effects, recorded or not)."""
        if not host.ledger.exists():
            return []
        out = []
        for line in host.ledger.read_text().splitlines():
            at, job, step, executor_id, epoch, hostname, pid = line.split()
            out.append({"at": float(at), "job": job, "step": int(step), "executor_id": executor_id,
                        "owner_epoch": int(epoch), "host": hostname, "pid": int(pid)})  # fmt: skip
        return out

    def assert_invariants(self, ids: list[str]) -> None:
        """Every workflow SUCCESS with every step, each position recorded once, one leader a term."""
        for workflow_id in ids:
            status, output = self.db.execute(
                "SELECT status, output FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)
            ).fetchone()
            assert status == "SUCCESS", (workflow_id, status)
            result = decode(output)
            assert [r["step"] for r in result] == list(range(STEPS)), (workflow_id, result)
            assert {r["job"] for r in result} == {workflow_id}
            positions = [r[0] for r in self.db.execute(
                "SELECT function_id FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY 1", (workflow_id,)
            )]  # fmt: skip
            assert positions == list(range(1, STEPS + 1)), (workflow_id, positions)
        logged = self.db.execute("SELECT count(*) FROM public.output_log").fetchone()[0]
        recorded = self.db.execute("SELECT count(*) FROM dbos.operation_outputs").fetchone()[0]
        assert logged == recorded, "an output row was inserted twice (or deleted)"
        terms = self.db.execute(
            "SELECT term, array_agg(DISTINCT executor_id) FROM dbos.pgfleet_leader_log GROUP BY term"
        ).fetchall()
        assert all(len(executors) == 1 for _, executors in terms), f"two leaders acted in one term: {terms}"

    def assert_no_write_after_takeover(self) -> None:
        """No output of a lost ownership (executor, epoch) was recorded after it was taken over."""
        outputs = self.outputs()
        for t in self.takeovers():
            late = [o for o in outputs
                    if o["workflow_uuid"] == t["workflow_uuid"] and o["executor_id"] == t["from_executor_id"]
                    and o["owner_epoch"] == t["from_epoch"] and o["recorded_at"] > t["at"]]  # fmt: skip
            assert not late, f"fenced owner {t['from_executor_id']}@{t['from_epoch']} recorded after its takeover: {late}"


_OUTPUT_LOG = """
CREATE TABLE public.output_log (
    workflow_uuid text, function_id int, at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION public.log_output() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.output_log (workflow_uuid, function_id) VALUES (NEW.workflow_uuid, NEW.function_id);
    RETURN NULL;
END $$;
CREATE TRIGGER log_output AFTER INSERT ON dbos.operation_outputs
    FOR EACH ROW EXECUTE FUNCTION public.log_output();
"""


@pytest.fixture
def cluster(lab, tmp_path):
    from sysdb import SystemDatabase

    dbname = f"pgfleet_hosts_{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(lab.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    migrated = SystemDatabase(lab.local_url(dbname), pool_size=1)
    migrated.open()
    migrated.close()
    db = psycopg.connect(lab.local_url(dbname), autocommit=True)
    db.execute(_OUTPUT_LOG)  # the test's own instrumentation: when each output row was inserted
    c = Cluster(lab, dbname, tmp_path, db)
    try:
        yield c
    finally:
        for host in c.hosts:
            host.stop()
        for i in HOSTS:
            lab.set_link(i, up=True)
        db.close()
        with psycopg.connect(lab.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        print(f"host logs and ledgers: {tmp_path}")


# -- the scenarios -------------------------------------------------------------------------------


def test_sigkilled_host_its_workflows_are_finished_by_the_other_host(cluster):
    h1, h2 = cluster.start_hosts("kill")
    first = cluster.leader()
    # Kill the host holding the leadership: the other must elect itself, then sweep.
    victim, survivor = (h1, h2) if victim_is(h1, first) else (h2, h1)
    ids = [f"kill-job-{i}" for i in range(24)]
    cluster.enqueue(ids)
    wait_until(lambda: len(cluster.pending_of(victim)) >= 2 and cluster.pending_of(survivor), "both hosts to be mid-job", timeout=20)  # fmt: skip
    victim_members = victim.members(cluster.db)

    killed_at = time.time()  # latencies count from the SIGKILL
    tree = victim.kill_tree()
    assert len(tree) >= 1 + WORKERS, tree
    wait_until(lambda: not any(pid_alive(p) for p in tree), "the victim's process tree to die", timeout=10)
    lost = set(cluster.pending_of(victim))  # frozen now: nobody of the victim's is left to move them
    assert lost, "the victim held no workflow when it died"

    second = wait_until(
        lambda: (lambda row: row if row and row["term"] > first["term"] else None)(cluster.leader()),
        "a new leader", timeout=MEMBER_TIMEOUT + 5,
    )  # fmt: skip
    elected_after = time.time() - killed_at
    assert survivor.owns(second["executor_id"])
    wait_until(lambda: cluster.all_succeeded(ids), "every job to finish on the surviving host", timeout=60, interval=0.1)
    done_after = time.time() - killed_at

    cluster.assert_invariants(ids)
    cluster.assert_no_write_after_takeover()
    takeovers = [t for t in cluster.takeovers() if victim.owns(t["from_executor_id"])]
    moved = {t["workflow_uuid"] for t in takeovers}
    assert lost <= moved, f"not taken over: {lost - moved}"
    for t in takeovers:
        # Queued jobs go back to their queue; the survivor's leader moved them, in its own term.
        assert t["requeued_to"] == "jobs" and t["to_executor_id"] is None, t
        assert t["by_executor_id"] == second["executor_id"] and t["leader_term"] == second["term"], t
        assert t["from_epoch"] is not None
    for workflow_id in moved:
        owner = cluster.db.execute("SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid=%s", (workflow_id,)).fetchone()[0]
        assert survivor.owns(owner), (workflow_id, owner)
    outputs = cluster.outputs()
    # (A statement the victim sent just before it died may still run; never after a takeover.)
    first_takeover = min(t["at"] for t in takeovers)
    assert not [o for o in outputs if victim.owns(o["executor_id"]) and o["recorded_at"] > first_takeover]
    dead = victim.members(cluster.db)
    assert {k: v["status"] for k, v in dead.items()} == {k: "dead" for k in victim_members}
    declared = {r[0] for r in cluster.db.execute(
        "SELECT detail->>'executor_id' FROM dbos.pgfleet_leader_log WHERE action = 'declare_dead' AND term = %s",
        (second["term"],),
    )}  # fmt: skip
    assert declared >= set(victim_members)

    resumed = [min(o["recorded_at"] for o in outputs if o["workflow_uuid"] == w and survivor.owns(o["executor_id"]))
               for w in moved]  # fmt: skip
    print(
        f"[kill] SIGKILLed {victim.name} ({len(tree)} processes, held {len(lost)} jobs, leader term {first['term']}): "
        f"new leader {second['executor_id']} term {second['term']} after {elected_after:.2f}s, "
        f"first takeover after {first_takeover - killed_at:.2f}s, "
        f"taken-over jobs' first step recorded by {survivor.name} after {min(resumed) - killed_at:.2f}s..{max(resumed) - killed_at:.2f}s, "
        f"all {len(ids)} jobs done after {done_after:.2f}s"
    )
    assert elected_after <= MEMBER_TIMEOUT + 3.0


@pytest.mark.parametrize("cut", ["leader", "follower"])
def test_partitioned_host_rejoins_and_recorded_nothing_for_the_work_it_lost(cluster, cut):
    prefix = f"part{cut[0]}"
    h1, h2 = cluster.start_hosts(prefix)
    first = cluster.leader()
    leader_host, other = (h1, h2) if victim_is(h1, first) else (h2, h1)
    victim, survivor = (leader_host, other) if cut == "leader" else (other, leader_host)
    ids = [f"{prefix}-job-{i}" for i in range(16)]
    cluster.enqueue(ids)
    wait_until(lambda: len(cluster.pending_of(victim)) >= 2, f"{victim.name} to be mid-job", timeout=20)
    before = victim.members(cluster.db)
    pids = {k: v["pid"] for k, v in before.items()}

    cluster.lab.set_link(victim.index, up=False)
    t_down = time.time()  # the link is down by now: nothing the victim sends arrives after this
    held = set(cluster.pending_of(victim))

    def taken_over():
        moved = {t["workflow_uuid"] for t in cluster.takeovers() if victim.owns(t["from_executor_id"])}
        return moved if held <= moved else None

    new_leader = None
    if cut == "leader":
        # The cut-off leader's lease runs out; the survivor ends its still-locked session
        # (terminate_stale_leader) and takes a new term.
        new_leader = wait_until(
            lambda: (lambda row: row if row and row["term"] > first["term"] else None)(cluster.leader()),
            "a new leader on the surviving host", timeout=MEMBER_TIMEOUT + 5,
        )  # fmt: skip
        elected_after = time.time() - t_down
        assert survivor.owns(new_leader["executor_id"])
        assert not cluster.db.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first["backend_pid"],)
        ).fetchone(), "the cut-off leader's backend still holds its session"
    wait_until(taken_over, f"the survivor to take over {victim.name}'s workflows", timeout=15)
    takeover_after = time.time() - t_down
    time.sleep(max(0.0, t_down + PARTITION_SEC - time.time()))

    t_up = time.time()
    cluster.lab.set_link(victim.index, up=True)

    def rejoined():
        now = victim.members(cluster.db)
        return now if all(m["status"] == "active" and m["epoch"] != before[k]["epoch"] for k, m in now.items()) else None

    after = wait_until(rejoined, f"{victim.name}'s workers to rejoin with new epochs", timeout=30)
    rejoin_after = time.time() - t_up

    more = [f"{prefix}-after-{i}" for i in range(16)]
    cluster.enqueue(more)
    wait_until(lambda: cluster.all_succeeded(ids + more), "every job to finish", timeout=60, interval=0.1)
    time.sleep(1.0)  # give any late, fenced write every chance to land

    cluster.assert_invariants(ids + more)
    cluster.assert_no_write_after_takeover()
    takeovers = [t for t in cluster.takeovers() if victim.owns(t["from_executor_id"])]
    lost_epochs = {(t["from_executor_id"], t["from_epoch"]) for t in takeovers}
    assert held <= {t["workflow_uuid"] for t in takeovers}
    for t in takeovers:
        assert survivor.owns(t["by_executor_id"]) and t["leader_term"] is not None, t
        assert t_down < t["at"] < t_up, t
    outputs = cluster.outputs()
    from_victim = [o for o in outputs if victim.owns(o["executor_id"])]
    # Nothing crossed the cut link (the margin: a statement that reached the server just before
    # the cut may still be executing just after it, on a loaded machine) ...
    assert not [o for o in from_victim if t_down + 1.0 < o["recorded_at"] < t_up]
    # ... and once the link was back, whatever the victim recorded was under an ownership it got
    # after rejoining, never one it had lost.
    late = [o for o in from_victim if o["recorded_at"] > t_up]
    assert not [o for o in late if (o["executor_id"], o["owner_epoch"]) in lost_epochs], late
    assert all(o["owner_epoch"] > max(e for _, e in lost_epochs) for o in late)
    # The rejoined host works again: new epochs, same processes (it rejoined, was not restarted).
    assert {k: m["pid"] for k, m in after.items()} == pids
    assert all(after[k]["epoch"] > before[k]["epoch"] for k in before)
    assert any(victim.owns(o["executor_id"]) for o in outputs if o["workflow_uuid"] in more), \
        f"{victim.name} did no work after rejoining"
    slots = cluster.db.execute(
        "SELECT slots FROM dbos.pgfleet_supervisors WHERE name = %s", (victim.name,)
    ).fetchone()[0]
    assert [s["restarts"] for s in slots] == [0] * WORKERS, slots
    # Step bodies the cut-off host ran for the work it lost: side effects, never recorded.
    ran_unrecorded = [e for e in cluster.ledger(victim)
                      if e["at"] > t_down and (e["executor_id"], e["owner_epoch"]) in lost_epochs]  # fmt: skip
    recorded_keys = {(o["job"], o["step"], o["executor_id"], o["owner_epoch"]) for o in outputs}
    assert not [e for e in ran_unrecorded if (e["job"], e["step"], e["executor_id"], e["owner_epoch"]) in recorded_keys]

    # The old owner did try to go on after the link came back, and was refused: each workflow it
    # lost was stopped without an outcome, fenced by the database or abandoned on the way.
    stopped = victim.log_events("stopped without recording an outcome")
    assert held <= {w for w in held for _, line in stopped if f"'{w}'" in line}, stopped
    fenced_by_db = sum(1 for _, line in stopped if "is no longer owned" in line)
    lost_noticed = [at for at, _ in victim.log_events("lost its membership")]
    assert len(lost_noticed) >= WORKERS
    # Pooled connections have keepalives and tcp_user_timeout too: a statement sent over the cut
    # link fails (and is retried) within about the member timeout, instead of blocking in recv()
    # until the link comes back (or, for a link that never does, for TCP's ~15 minutes).
    pool_failed = [at for at, _ in victim.log_events("system database unreachable") if t_down < at < t_up]
    assert pool_failed and min(pool_failed) - t_down <= MEMBER_TIMEOUT + 1.5, "a pooled statement hung on the cut link"
    leader_died = None
    if cut == "leader":
        # Keepalives and tcp_user_timeout end the cut-off leader's own session within its lease
        # instead of leaving it to TCP's ~15-minute retransmission limit.
        failed = [at for at, _ in victim.log_events("leader session failed") if at > t_down]
        assert failed, "the cut-off leader's session never failed"
        leader_died = min(failed) - t_down
        assert leader_died <= MEMBER_TIMEOUT + 1.0
        assert elected_after <= MEMBER_TIMEOUT + 3.0
    print(
        f"[{prefix}] cut {victim.name} ({cut}, held {len(held)} jobs) for {t_up - t_down:.2f}s: "
        + (f"its leader session failed after {leader_died:.2f}s; new leader {new_leader['executor_id']} "
           f"term {new_leader['term']} after {elected_after:.2f}s; " if new_leader else "")  # fmt: skip
        + f"its {len(takeovers)} workflows taken over by {survivor.name} after {takeover_after:.2f}s (first at "
        f"{min(t['at'] for t in takeovers) - t_down:.2f}s); it noticed it was dead "
        f"{min(lost_noticed) - t_down:.2f}s after the cut = {min(lost_noticed) - t_up:+.2f}s after the link came back; "
        f"{len(stopped)} lost workflows stopped there ({fenced_by_db} refused by the database fence); "
        f"rejoined {rejoin_after:.2f}s after the link came back (epochs "
        f"{[before[k]['epoch'] for k in sorted(before)]} -> {[after[k]['epoch'] for k in sorted(after)]}); "
        f"{len(ran_unrecorded)} step bodies ran under lost ownerships after the cut, none recorded; "
        f"{sum(1 for o in outputs if o['workflow_uuid'] in more and victim.owns(o['executor_id']))} steps of the "
        f"second batch recorded by {victim.name}"
    )


class StartedStepsWhileCutOff(AssertionError):
    """The cut-off host started step bodies after it should have stopped executing."""


SLEEP_SEC = 4.0  # the cut-off host wakes up well after its work was taken over


def test_cut_off_host_stops_starting_steps_once_its_heartbeats_fail(cluster):
    """membership.py: a member whose heartbeats have failed for longer than the member timeout
    minus a margin must stop executing at once. A workflow sleeping durably (no database contact)
    when its host is cut off must not start its next step there once that time has passed."""
    h1, h2 = cluster.start_hosts("fence")
    first = cluster.leader()
    victim, survivor = (h2, h1) if victim_is(h1, first) else (h1, h2)  # cut the follower
    ids = [f"fence-job-{i}" for i in range(4 * 2 * WORKERS)]  # a full queue slot on every worker
    cluster.enqueue(ids, workflow_name="hosts_sleepy", args=(SLEEP_SEC,))

    def sleeping_on_victim():
        # position 2 is the sleep's wake-up time: recorded means the workflow sleeps now
        return [r[0] for r in cluster.db.execute(
            "SELECT w.workflow_uuid FROM dbos.workflow_status w JOIN dbos.operation_outputs o USING (workflow_uuid) "
            "WHERE w.status = 'PENDING' AND w.executor_id LIKE %s AND o.function_id = 2", (victim.name + "-%",),
        )]  # fmt: skip

    wait_until(sleeping_on_victim, f"a job asleep on {victim.name}", timeout=20, interval=0.02)
    cluster.lab.set_link(victim.index, up=False)
    t_down = time.time()
    held = set(sleeping_on_victim())
    time.sleep(SLEEP_SEC + 1.0)  # the link stays down until after every sleeper has woken up
    t_up = time.time()
    cluster.lab.set_link(victim.index, up=True)
    wait_until(lambda: cluster.all_succeeded(ids), "every job to finish", timeout=60, interval=0.1)
    time.sleep(1.0)

    # What the database fence guarantees holds: nothing of a lost ownership was recorded.
    cluster.assert_no_write_after_takeover()
    takeovers = [t for t in cluster.takeovers() if victim.owns(t["from_executor_id"])]
    assert held <= {t["workflow_uuid"] for t in takeovers}
    lost_epochs = {(t["from_executor_id"], t["from_epoch"]) for t in takeovers}
    for workflow_id in ids:
        positions = [r[0] for r in cluster.db.execute(
            "SELECT function_id FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY 1", (workflow_id,)
        )]  # fmt: skip
        assert positions == [1, 2, 3], (workflow_id, positions)
    assert not [o for o in cluster.outputs() if (o["executor_id"], o["owner_epoch"]) in lost_epochs and o["recorded_at"] > t_up]

    # What the member itself must do: stop executing once its heartbeats have failed for
    # fence_after_sec (the member timeout less one interval), that is before it can be declared
    # dead and its work taken over. Allowed here: one more second after each takeover.
    taken_at = {(t["from_executor_id"], t["from_epoch"]): t["at"] for t in takeovers}
    started = [e for e in cluster.ledger(victim)
               if (e["executor_id"], e["owner_epoch"]) in taken_at
               and e["at"] > taken_at[(e["executor_id"], e["owner_epoch"])] + 1.0]  # fmt: skip
    noticed = [at for at, _ in victim.log_events("lost its membership")]
    offsets = ", ".join(f"+{e['at'] - t_down:.2f}s" for e in started)
    print(
        f"[fence] cut {victim.name} for {t_up - t_down:.2f}s holding {len(held)} sleeping jobs: it noticed it was dead "
        f"{min(noticed) - t_down:.2f}s after the cut ({min(noticed) - t_up:+.2f}s after the link came back); "
        f"its work was taken over {min(taken_at.values()) - t_down:.2f}s after the cut; {len(started)} step bodies "
        f"started there under lost ownerships more than 1s after their takeover ({offsets or 'none'} after the cut)"
    )
    if started:
        raise StartedStepsWhileCutOff(
            f"{victim.name} started {len(started)} step bodies of workflows it had lost, "
            f"{min(e['at'] for e in started) - t_down:.2f}s after the cut: {started}"
        )
