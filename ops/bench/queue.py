"""Queue benchmark: pgfleet (and optionally DBOS Transact) on the same Postgres.

Run it from anywhere with the project's virtual environment::

    /work/venv/bin/python ops/bench/queue.py                          # pgfleet alone
    /work/venv/bin/python ops/bench/queue.py --dbos-python /path/to/venv/bin/python
    /work/venv/bin/python ops/bench/queue.py --database-url postgresql://u:p@host:5432/postgres
    /work/venv/bin/python ops/bench/queue.py --embedded-dir /tmp/pgfleet-qbench --count 1000 --json

What is measured
----------------
One workflow, ``qbench_one_step(enqueued_at)``: it notes ``time.time()`` on entry, calls one
trivial checkpointed step and returns (entry time - ``enqueued_at``). It sits on the queue
``qbench`` declared ``Queue("qbench", worker_concurrency=W)`` (``--worker-concurrency``,
default 32) in every process, with no global concurrency or rate limit. Every process of a run
sets the same ``application_version``, so DBOS's version filter never hides work.

* **enqueue** -- one process enqueues ``--count`` (default 2,000) workflows, one after the
  other from one thread outside any workflow (``Queue.enqueue``), timed with
  ``time.perf_counter``: enqueues/s and the p50/p99 of one call. That process serves no
  queue: pgfleet's config ``"queues": []`` and DBOS's ``DBOS.listen_queues([])`` (both still
  serve their internal queue, which is empty), so nothing is dequeued while it runs and both
  engines pay for exactly the insert plus whatever they do around it (pgfleet's throttled
  NOTIFY, for instance). ``--warmup`` (default 50) untimed enqueues go to another queue that
  nobody serves. It runs once before each drain below; the reported rate is their median.

* **drain** -- for each K in ``--processes`` (default 1,2,4) on a fresh database: ``--count``
  workflows are enqueued (above), then the parent locks every one of their rows
  (``SELECT ... FOR UPDATE`` in an open transaction), starts K worker processes with distinct
  executor ids that serve ``qbench``, waits until every one has launched and reported ready
  plus ``--settle`` seconds, and commits: both engines claim with ``FOR UPDATE SKIP LOCKED``,
  so until then every worker polls and finds nothing, and afterwards all K see the work on
  their next poll. Launch order and launch time therefore favour nobody. The drain rate is
  ``count / (last completed_at - first started_at_epoch_ms)`` read back from
  ``dbos.workflow_status`` (pgfleet stamps both with the worker's clock, DBOS with the
  database's; all on this host), i.e. from the first dequeue to the last completion. The
  time from the release to the first dequeue (each engine's poll phase, <= its polling
  interval) is reported separately and not counted. The parent polls the table every 50 ms
  to know when all are SUCCESS; the workers' CPU time while serving is reported too.
  ``--history ROWS`` first adds that many finished workflows of another queue to the
  database (a system database with history, as in production; default none).

* **enqueue -> start latency** -- on a fresh database one worker serves ``qbench`` and sits
  idle; a second process (serving no queue) enqueues ``--latency-count`` (default 200)
  workflows, one every I ms on a fixed schedule without waiting for them, passing
  ``time.time()`` taken just before ``enqueue``. Latency is the workflow's own ``time.time()``
  on entry minus that: both clocks are this host's wall clock (no database clock involved),
  and it includes everything until user code runs (insert, wake-up or poll, claim, dispatch
  to a thread). ``--latency-warmup`` (default 10) first ones are discarded. p50/p90/p99/max
  in ms. I comes from ``--latency-interval-ms`` (default ``50,200``: each value is one run on
  its own database); the first value is the one checked against the target. Each workflow
  finishes in a few ms, so the queue is idle at every enqueue in both runs; the second one
  shows what is left when enqueues from one process are further apart than pgfleet's NOTIFY
  throttle window (100 ms).

* **idle cost** -- on a fresh database one executor that declares and serves N idle queues
  (``--idle-queues``, default 1,2; the queues are empty and nothing is enqueued) runs for
  ``--idle-seconds`` (default 10) after launching and ``--idle-settle`` (default 3) seconds of
  grace. Alone, a pgfleet executor is also the cluster's leader and does the leader's duties;
  so the first queue count is measured once more in a second executor started ``--settle``
  seconds after an uncounted peer with the same queues (``--no-idle-with-peer`` skips it):
  that is what every other executor of a fleet costs. It connects through a small TCP proxy started by this benchmark that counts what the
  client sends: every simple ``Query`` message and every ``Execute`` of the extended protocol
  is one statement (BEGIN and COMMIT included), attributed to its SQL text through the
  ``Parse``/``Bind`` messages; new connections are counted too. This works on any server and
  counts exactly one process's traffic. The proxy answers ``N`` to SSL requests, so it is
  skipped (and the cost not reported) for a URL with ``sslmode=require`` or a unix-socket
  host. When the server has ``pg_stat_statements`` in ``shared_preload_libraries`` the
  benchmark also reports the server-side count for the database (sum of ``calls`` delta) as a
  cross-check: it covers the whole database (the peer below included) and does not count
  empty queries (``;``, SQLAlchemy's connection ping). The embedded server does not preload
  it.

With ``--dbos-python PATH`` (the python of a virtual environment where ``dbos`` is installed)
everything runs under DBOS Transact too, against the same server, each engine on its own
databases, one engine after the other. ``ratio`` is always "how many times better pgfleet
is": pgfleet/DBOS for rates, DBOS/pgfleet for latencies and idle statements.

How it runs
-----------
The parent only manages databases, the proxy and the worker processes (this file with
``--worker ROLE``, under this interpreter for pgfleet and the DBOS python for DBOS), and
prints. Databases are named ``qbench_<engine>_<timestamp>_<phase>`` and dropped afterwards
(``--keep-databases`` keeps them). A worker prints ``PGFLEET_BENCH_READY <json>`` once
launched (serving roles) and one ``PGFLEET_BENCH_RESULT <json>`` line at the end; a serving
worker stops when it reads ``STOP`` (or EOF) on stdin. Server handling is the one of
``workflows.py`` (``common.BenchServer``): without ``--database-url`` the embedded server
under ``--embedded-dir`` is started or joined with durability on, and stopped at the end if
this run started it (unless ``--keep-server``).

Targets (from the issue): drain >= 5x DBOS with one process; enqueue -> start p50 <= 10 ms
(DBOS polls once a second); an executor with idle queues issues at most a couple of
statements per second (checked here as <= 2.0/s).

This file is named ``queue.py`` like the standard library's ``queue`` module, so when it runs
as a script it first removes its own directory from ``sys.path`` (or every ``import queue``
in the process, threading's and psycopg-pool's included, would load this file).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # See the last paragraph of the docstring: never shadow the standard library's ``queue``.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import importlib.util
import json
import queue as stdlib_queue
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__:
    from . import common
else:  # a script: load the sibling module by path (its directory is off sys.path, see above)
    _spec = importlib.util.spec_from_file_location("pgfleet_bench_common", Path(__file__).resolve().parent / "common.py")
    assert _spec is not None and _spec.loader is not None
    common = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = common
    _spec.loader.exec_module(common)

READY_PREFIX = "PGFLEET_BENCH_READY "
REPO_ROOT = common.REPO_ROOT

QUEUE_NAME = "qbench"
WARMUP_QUEUE_NAME = "qbench_warmup"  # declared by enqueuers only, served by nobody
IDLE_QUEUE_PREFIX = "qbench_idle_"
WORKFLOW_NAME = "qbench_one_step"
APP_NAME = "qbench"
APP_VERSION = "qbench-1"

TARGET_DRAIN_RATIO = 5.0
TARGET_LATENCY_P50_MS = 10.0
TARGET_IDLE_STATEMENTS_PER_S = 2.0

MONITOR_INTERVAL_S = 0.05


# ---------------------------------------------------------------------------------- worker


def _load_engine(engine: str, url: str) -> tuple[Any, Any, str, bool]:
    """(DBOS, Queue, version label, migrations patched) of the engine, in this process."""
    if engine == "pgfleet":
        # Only the pgfleet worker sees the repository: the DBOS worker must import the real dbos.
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        from runtime import DBOS, Queue  # type: ignore[import-not-found]

        return DBOS, Queue, "pgfleet", False
    if engine == "dbos":
        from dbos import DBOS, Queue  # type: ignore[import-not-found,no-redef]

        patched = common.dbos_tolerate_missing_uuid_ossp(url)
        return DBOS, Queue, common.dbos_version(), patched
    raise SystemExit(f"unknown engine {engine!r}")


def _launch(DBOS: Any, engine: str, url: str, executor_id: str, served: list[str]) -> float:
    """Configure and launch DBOS serving exactly ``served`` (plus the engine's internal queue)."""
    config: dict[str, Any] = {
        "name": APP_NAME,
        "system_database_url": url,
        "log_level": "WARNING",
        "run_admin_server": False,
        "executor_id": executor_id,
        "application_version": APP_VERSION,
    }
    if engine == "pgfleet":
        config["queues"] = list(served)
    t0 = time.perf_counter()
    try:
        DBOS(config=config)
    except Exception as exc:  # an engine that rejects run_admin_server: retry without it
        if "run_admin_server" not in str(exc):
            raise
        config.pop("run_admin_server")
        DBOS(config=config)
    if engine == "dbos":
        DBOS.listen_queues(list(served))
    DBOS.launch()
    return time.perf_counter() - t0


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_worker(args: argparse.Namespace) -> None:
    """One role of one engine in this process; prints one result line."""
    engine, role, url = args.engine, args.worker, args.database_url
    DBOS, Queue, version, patched = _load_engine(engine, url)

    @DBOS.step(name="qbench_step")
    def qbench_step(i: int) -> int:
        return i + 1

    @DBOS.workflow(name=WORKFLOW_NAME)
    def qbench_one_step(enqueued_at: float) -> float:
        started = time.time()
        qbench_step(1)
        return started - enqueued_at

    bench_queue = Queue(QUEUE_NAME, worker_concurrency=args.worker_concurrency)
    served = [s for s in (args.serve or "").split(",") if s]
    for name in served:
        if name != QUEUE_NAME:
            Queue(name, worker_concurrency=args.worker_concurrency)
    warmup_queue = Queue(WARMUP_QUEUE_NAME) if role == "enqueue" else None

    payload: dict[str, Any] = {"engine": engine, "version": version, "python": sys.version.split()[0],
                               "role": role, "dbos_migration_without_uuid_ossp": patched}
    if role == "serve":
        payload["launch_s"] = _launch(DBOS, engine, url, args.executor_id, served)
        cpu0, wall0 = _cpu_seconds(), time.perf_counter()
        sys.stdout.write(READY_PREFIX + json.dumps({"pid": os.getpid(), "launch_s": payload["launch_s"]}) + "\n")
        sys.stdout.flush()
        for line in sys.stdin:  # until STOP or EOF
            if line.strip() == "STOP":
                break
        payload["serve_cpu_s"] = _cpu_seconds() - cpu0
        payload["serve_wall_s"] = time.perf_counter() - wall0
        DBOS.destroy()
    elif role == "enqueue":
        payload["launch_s"] = _launch(DBOS, engine, url, args.executor_id, [])
        try:
            for _ in range(args.warmup):
                warmup_queue.enqueue(qbench_one_step, 0.0)
            perf = time.perf_counter
            calls: list[float] = []
            cpu0 = _cpu_seconds()
            start = perf()
            for _ in range(args.count):
                t = perf()
                bench_queue.enqueue(qbench_one_step, 0.0)
                calls.append(perf() - t)
            elapsed = perf() - start
            cpu = _cpu_seconds() - cpu0
        finally:
            DBOS.destroy()
        calls.sort()
        payload.update({
            "count": args.count,
            "elapsed_s": elapsed,
            "enqueue_per_s": args.count / elapsed,
            "ms_p50": 1000.0 * statistics.median(calls),
            "ms_p99": 1000.0 * common.percentile(calls, 0.99),
            "cpu_ms_per_enqueue": 1000.0 * cpu / args.count,
        })
    elif role == "latency":
        payload["launch_s"] = _launch(DBOS, engine, url, args.executor_id, [])
        interval = args.latency_interval_ms[0] / 1000.0
        total = args.latency_warmup + args.latency_count
        handles = []
        try:
            begin = time.perf_counter()
            for i in range(total):
                delay = begin + i * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                handles.append(bench_queue.enqueue(qbench_one_step, time.time()))
            values = [float(h.get_result()) for h in handles]
        finally:
            DBOS.destroy()
        measured = sorted(1000.0 * v for v in values[args.latency_warmup:])
        payload.update({
            "count": len(measured),
            "interval_ms": args.latency_interval_ms[0],
            "ms_p50": statistics.median(measured),
            "ms_p90": common.percentile(measured, 0.90),
            "ms_p99": common.percentile(measured, 0.99),
            "ms_max": measured[-1],
            "ms_mean": statistics.fmean(measured),
            "ms_min": measured[0],
        })
    else:
        raise SystemExit(f"unknown role {role!r}")
    common.emit_result(payload)


# ---------------------------------------------------------------------------------- proxy


class StatementCountingProxy:
    """A TCP proxy in front of Postgres that counts the statements its clients send.

    A simple ``Query`` message and an ``Execute`` message each count as one statement (a
    simple query holding several ``;``-separated statements counts once; drivers do not send
    those). Statement texts come from the ``Query`` message, or for ``Execute`` from the
    ``Parse`` of the statement its portal was bound to. SSL and GSSAPI encryption requests are
    declined (``N``) so the stream can be read; clients with ``sslmode=prefer`` (the default)
    then continue in clear text.
    """

    SSL_REQUEST = 80877103
    GSSENC_REQUEST = 80877104
    CANCEL_REQUEST = 80877102

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._statements = 0
        self._connections = 0
        self._by_text: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._accept_loop, name="qbench-proxy", daemon=True)

    def start(self) -> StatementCountingProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        try:
            self._listener.close()
        except OSError:
            pass

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"statements": self._statements, "connections": self._connections, "by_text": dict(self._by_text)}

    # -- plumbing

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            data = sock.recv(n - len(chunks))
            if not data:
                return None
            chunks += data
        return bytes(chunks)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            while True:  # the untyped startup packets
                head = self._recv_exact(client, 8)
                if head is None:
                    return
                length, code = struct.unpack("!ii", head)
                rest = self._recv_exact(client, length - 8) if length > 8 else b""
                if rest is None:
                    return
                if code in (self.SSL_REQUEST, self.GSSENC_REQUEST):
                    client.sendall(b"N")
                    continue
                upstream = socket.create_connection(self._upstream)
                upstream.sendall(head + rest)
                if code != self.CANCEL_REQUEST:
                    with self._lock:
                        self._connections += 1
                break
            threading.Thread(target=self._relay, args=(upstream, client), daemon=True).start()
            self._client_to_server(client, upstream)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    try:
                        sock.close()
                    except OSError:
                        pass

    @staticmethod
    def _relay(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _client_to_server(self, client: socket.socket, upstream: socket.socket) -> None:
        buf = bytearray()
        prepared: dict[bytes, str] = {}
        portals: dict[bytes, str] = {}
        while True:
            data = client.recv(65536)
            if not data:
                return
            upstream.sendall(data)
            buf += data
            while len(buf) >= 5:
                kind = buf[0]
                length = struct.unpack("!i", buf[1:5])[0]
                if len(buf) < 1 + length:
                    break
                body = bytes(buf[5:1 + length])
                del buf[:1 + length]
                if kind == ord("Q"):
                    self._count(body.split(b"\0", 1)[0].decode("utf-8", "replace"))
                elif kind == ord("P"):
                    name, rest = body.split(b"\0", 1)
                    prepared[name] = rest.split(b"\0", 1)[0].decode("utf-8", "replace")
                elif kind == ord("B"):
                    portal, rest = body.split(b"\0", 1)
                    portals[portal] = prepared.get(rest.split(b"\0", 1)[0], "?")
                elif kind == ord("E"):
                    self._count(portals.get(body.split(b"\0", 1)[0], "?"))

    def _count(self, sql: str) -> None:
        label = _statement_label(sql)
        with self._lock:
            self._statements += 1
            self._by_text[label] += 1


def _statement_label(sql: str) -> str:
    """A statement's text without comments and extra whitespace, cut to a readable length."""
    lines = [line.split("--", 1)[0] if not line.lstrip().startswith("--") else "" for line in sql.splitlines()]
    text = " ".join(" ".join(lines).split())
    if text in ("", ";"):
        return "(empty query ';': a connection ping)"
    return text if len(text) <= 110 else text[:107] + "..."


def _proxied_url(url: str, port: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit((parts.scheme, f"{userinfo}127.0.0.1:{port}", parts.path, parts.query, parts.fragment))


def _proxy_obstacle(url: str) -> str | None:
    """Why the counting proxy cannot sit in front of this URL (None when it can)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if query.get("sslmode", ["prefer"])[-1] in ("require", "verify-ca", "verify-full"):
        return "the URL requires SSL, which the counting proxy cannot read"
    if "host" in query or "hostaddr" in query or not parts.hostname or parts.hostname.startswith("/"):
        return "the URL names no TCP host:port for the counting proxy"
    return None


# ---------------------------------------------------------------------------------- parent


class _Child:
    """A worker process; its stdout is read in a thread, its stderr kept in a temp file."""

    def __init__(self, cmd: list[str], label: str) -> None:
        self.cmd = cmd
        self.label = label
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, env=common.worker_env(), cwd=str(REPO_ROOT))
        self._stdout: list[str] = []
        self._ready: stdlib_queue.Queue[dict[str, Any] | None] = stdlib_queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._stdout.append(line)
            if line.startswith(READY_PREFIX):
                self._ready.put(json.loads(line[len(READY_PREFIX):]))
        self._ready.put(None)

    def _fail(self, what: str) -> SystemExit:
        self._stderr.seek(0)
        sys.stderr.write("".join(self._stdout)[-4000:])
        sys.stderr.write(self._stderr.read()[-4000:])
        return SystemExit(f"[bench] {self.label} {what} (exit code {self.proc.poll()}): {' '.join(self.cmd)}")

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        try:
            ready = self._ready.get(timeout=timeout)
        except stdlib_queue.Empty:
            self.kill()
            raise self._fail(f"did not report ready within {timeout:.0f}s") from None
        if ready is None:
            raise self._fail("exited before it was ready")
        return ready

    def finish(self, timeout: float, stop: bool) -> dict[str, Any]:
        """Send STOP (serving roles) or just close stdin, wait, and return the result line."""
        try:
            assert self.proc.stdin is not None
            if stop:
                self.proc.stdin.write("STOP\n")
                self.proc.stdin.flush()
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self._fail(f"did not finish within {timeout:.0f}s") from None
        self._reader.join(5)
        result = common.parse_result("".join(self._stdout))
        if self.proc.returncode != 0 or result is None:
            raise self._fail("failed")
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class _EngineRun:
    """Every phase of one engine, each on a fresh database."""

    def __init__(self, engine: str, python: str, server_url: str, stamp: str, args: argparse.Namespace) -> None:
        self.engine = engine
        self.python = python
        self.server_url = server_url
        self.stamp = stamp
        self.args = args
        self.info: dict[str, Any] = {}

    # -- helpers

    def _database(self, phase: str) -> tuple[str, str]:
        dbname = f"qbench_{self.engine}_{self.stamp}_{phase}"
        common.admin(self.server_url, f'DROP DATABASE IF EXISTS "{dbname}"')
        common.admin(self.server_url, f'CREATE DATABASE "{dbname}"')
        return dbname, common.with_database(self.server_url, dbname)

    def _drop(self, dbname: str) -> None:
        if self.args.keep_databases:
            return
        try:
            common.admin(self.server_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        except Exception as exc:  # pragma: no cover - report, do not mask the run's result
            print(f"[bench] could not drop {dbname}: {exc}", file=sys.stderr)

    def _cmd(self, role: str, url: str, executor_id: str, serve: list[str] | None = None) -> list[str]:
        a = self.args
        cmd = [self.python, str(Path(__file__).resolve()), "--worker", role, "--engine", self.engine,
               "--database-url", url, "--executor-id", executor_id, "--count", str(a.count), "--warmup", str(a.warmup),
               "--worker-concurrency", str(a.worker_concurrency), "--latency-count", str(a.latency_count),
               "--latency-warmup", str(a.latency_warmup)]
        if serve:
            cmd += ["--serve", ",".join(serve)]
        return cmd

    def _note(self, result: dict[str, Any]) -> None:
        self.info.setdefault("version", result["version"])
        self.info.setdefault("python", result["python"])
        if result.get("dbos_migration_without_uuid_ossp"):
            self.info["dbos_migration_without_uuid_ossp"] = True

    def _one_shot(self, role: str, url: str, extra: list[str] | None = None) -> dict[str, Any]:
        child = _Child(self._cmd(role, url, f"qbench-{role}") + (extra or []), f"{self.engine} {role} worker")
        result = child.finish(self.args.timeout, stop=False)
        self._note(result)
        return result

    def _serve(self, url: str, executor_id: str, serve: list[str]) -> _Child:
        return _Child(self._cmd("serve", url, executor_id, serve), f"{self.engine} serve worker {executor_id}")

    # -- phases

    def drain(self, processes: int) -> dict[str, Any]:
        import psycopg

        a = self.args
        dbname, url = self._database(f"drain{processes}")
        workers: list[_Child] = []
        try:
            print(f"[bench] {self.engine}: enqueue {a.count}, then drain with {processes} process(es) ...",
                  file=sys.stderr, flush=True)
            enqueue = self._one_shot("enqueue", url)
            if a.history:
                _add_history(url, a.history)
            with psycopg.connect(url) as lock_conn, psycopg.connect(url, autocommit=True) as monitor:
                # Hold every enqueued row until all workers are up (both engines skip locked rows).
                locked = lock_conn.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM dbos.workflow_status WHERE queue_name = %s "
                    "AND status = 'ENQUEUED' FOR UPDATE) AS held", (QUEUE_NAME,)).fetchone()[0]
                if locked != a.count:
                    raise SystemExit(f"[bench] {self.engine}: expected {a.count} enqueued workflows, found {locked}")
                workers = [self._serve(url, f"qbench-{self.engine}-{i}", [QUEUE_NAME]) for i in range(processes)]
                ready = [w.wait_ready(a.timeout) for w in workers]
                time.sleep(a.settle)
                released = time.time()
                lock_conn.commit()
                deadline = time.monotonic() + a.timeout
                while True:
                    done, failed = monitor.execute(
                        "SELECT count(*) FILTER (WHERE status = 'SUCCESS'), "
                        "count(*) FILTER (WHERE status NOT IN ('SUCCESS', 'ENQUEUED', 'PENDING')) "
                        "FROM dbos.workflow_status WHERE queue_name = %s", (QUEUE_NAME,)).fetchone()
                    if failed:
                        raise SystemExit(f"[bench] {self.engine}: {failed} workflows ended in another status than SUCCESS")
                    if done >= a.count:
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"[bench] {self.engine}: only {done}/{a.count} done after {a.timeout:.0f}s")
                    time.sleep(MONITOR_INTERVAL_S)
                observed = time.time()
                first_start, last_done = monitor.execute(
                    "SELECT min(started_at_epoch_ms), max(completed_at) FROM dbos.workflow_status "
                    "WHERE queue_name = %s", (QUEUE_NAME,)).fetchone()
                per_executor = dict(monitor.execute(
                    "SELECT executor_id, count(*) FROM dbos.workflow_status WHERE queue_name = %s "
                    "GROUP BY executor_id ORDER BY executor_id", (QUEUE_NAME,)).fetchall())
            served = [w.finish(a.timeout, stop=True) for w in workers]
            workers = []
        finally:
            for w in workers:
                w.kill()
            self._drop(dbname)
        for r in served:
            self._note(r)
        seconds = (last_done - first_start) / 1000.0
        cpu = sum(r["serve_cpu_s"] for r in served)
        return {
            "processes": processes,
            "count": a.count,
            "enqueue": {k: enqueue[k] for k in ("enqueue_per_s", "elapsed_s", "ms_p50", "ms_p99", "cpu_ms_per_enqueue")},
            "drain_s": seconds,
            "drain_per_s": a.count / seconds if seconds > 0 else None,
            "release_to_first_start_ms": first_start - 1000.0 * released,
            "release_to_all_seen_s": observed - released,
            "per_executor": per_executor,
            "worker_cpu_s": cpu,
            "worker_cpu_ms_per_wf": 1000.0 * cpu / a.count,
            "launch_s": [r["launch_s"] for r in ready],
        }

    def latency(self, interval_ms: float) -> dict[str, Any]:
        a = self.args
        dbname, url = self._database(f"latency{interval_ms:g}".replace(".", "_"))
        worker: _Child | None = None
        try:
            print(f"[bench] {self.engine}: enqueue->start latency, {a.latency_count} x every "
                  f"{interval_ms:g} ms ...", file=sys.stderr, flush=True)
            worker = self._serve(url, f"qbench-{self.engine}-0", [QUEUE_NAME])
            worker.wait_ready(a.timeout)
            time.sleep(a.settle)
            result = self._one_shot("latency", url, ["--latency-interval-ms", f"{interval_ms:g}"])
            self._note(worker.finish(a.timeout, stop=True))
            worker = None
        finally:
            if worker is not None:
                worker.kill()
            self._drop(dbname)
        return {k: result[k] for k in ("count", "interval_ms", "ms_p50", "ms_p90", "ms_p99", "ms_max", "ms_mean", "ms_min")}

    def idle(self, queues: int, peer: bool = False) -> dict[str, Any]:
        from urllib.parse import urlsplit

        a = self.args
        obstacle = _proxy_obstacle(self.server_url)
        if obstacle:
            return {"queues": queues, "peer": peer, "skipped": obstacle}
        dbname, url = self._database(f"idle{queues}{'peer' if peer else ''}")
        parts = urlsplit(self.server_url)
        proxy = StatementCountingProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
        worker: _Child | None = None
        other: _Child | None = None
        try:
            print(f"[bench] {self.engine}: idle cost with {queues} idle queue(s)"
                  f"{', beside a peer executor' if peer else ''}, {a.idle_seconds:g} s ...", file=sys.stderr, flush=True)
            pgss = _PgStatStatements.attach(url)
            names = [f"{IDLE_QUEUE_PREFIX}{i + 1}" for i in range(queues)]
            if peer:  # started first and not counted: it is the one that ends up with any fleet-wide duties
                other = self._serve(url, f"qbench-{self.engine}-peer", names)
                other.wait_ready(a.timeout)
                time.sleep(a.settle)
            worker = self._serve(_proxied_url(url, proxy.port), f"qbench-{self.engine}-idle", names)
            worker.wait_ready(a.timeout)
            time.sleep(a.idle_settle)
            before, server_before, t0 = proxy.snapshot(), pgss.calls() if pgss else None, time.monotonic()
            time.sleep(a.idle_seconds)
            after, server_after, t1 = proxy.snapshot(), pgss.calls() if pgss else None, time.monotonic()
            self._note(worker.finish(a.timeout, stop=True))
            worker = None
            if other is not None:
                other.finish(a.timeout, stop=True)
                other = None
        finally:
            for child in (worker, other):
                if child is not None:
                    child.kill()
            proxy.close()
            self._drop(dbname)
        seconds = t1 - t0
        texts = Counter(after["by_text"])
        texts.subtract(before["by_text"])
        return {
            "queues": queues,
            "peer": peer,
            "seconds": seconds,
            "statements": after["statements"] - before["statements"],
            "statements_per_s": (after["statements"] - before["statements"]) / seconds,
            "connections_opened": after["connections"] - before["connections"],
            "by_text_per_s": {t: n / seconds for t, n in texts.most_common() if n > 0},
            "server_statements_per_s": (server_after - server_before) / seconds if pgss else None,
        }

    def run(self) -> dict[str, Any]:
        a = self.args
        drains = {str(k): self.drain(k) for k in a.processes}
        latency = {f"{i:g}": self.latency(i) for i in a.latency_interval_ms} if a.latency_count > 0 else {}
        idle = {str(q): self.idle(q) for q in a.idle_queues}
        if a.idle_with_peer and a.idle_queues:
            idle[f"{a.idle_queues[0]}+peer"] = self.idle(a.idle_queues[0], peer=True)
        rates = [d["enqueue"]["enqueue_per_s"] for d in drains.values()]
        return {
            "engine": self.engine,
            **self.info,
            "enqueue_per_s": statistics.median(rates) if rates else None,
            "enqueue_per_s_runs": rates,
            "drain": drains,
            "latency": latency,
            "idle": idle,
        }


def _add_history(url: str, rows: int) -> None:
    """Insert ``rows`` finished workflows of another queue, as a system database with history."""
    import psycopg

    print(f"[bench] adding {rows} finished workflows of history ...", file=sys.stderr, flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, executor_id, "
            "application_version, created_at, updated_at, started_at_epoch_ms, completed_at, recovery_attempts) "
            "SELECT 'history-' || g, 'SUCCESS', %s, 'qbench_history', 'qbench-history', %s, "
            "g, g, g, g + 1, 1 FROM generate_series(1, %s) AS g", (WORKFLOW_NAME, APP_VERSION, rows))
        conn.execute("VACUUM ANALYZE dbos.workflow_status")


class _PgStatStatements:
    """Server-side statement counts of one database, when pg_stat_statements is preloaded."""

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def attach(cls, url: str) -> _PgStatStatements | None:
        import psycopg

        try:
            with psycopg.connect(url, autocommit=True) as conn:
                libraries = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
                if "pg_stat_statements" not in libraries:
                    return None
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        except psycopg.Error:
            return None
        return cls(url)

    def calls(self) -> int:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return int(conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND query NOT ILIKE '%pg_stat_statements%'").fetchone()[0])


# ---------------------------------------------------------------------------------- report


def _ratio(better: float | None, worse: float | None) -> str:
    if not better or not worse:
        return "-"
    return f"{better / worse:.2f}x"


def _table(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    pg = runs["pgfleet"]
    db = runs.get("dbos")
    header = ["metric", "pgfleet"] + (["dbos", "ratio"] if db else [])
    rows = [header]

    def add(label: str, get: Any, spec: str, higher_is_better: bool) -> None:
        p = get(pg)
        row = [label, common.fmt(p, spec)]
        if db:
            d = get(db)
            row += [common.fmt(d, spec), _ratio(p, d) if higher_is_better else _ratio(d, p)]
        rows.append(row)

    def dig(*path: Any) -> Any:
        def get(run: dict[str, Any]) -> Any:
            value: Any = run
            for key in path:
                if not isinstance(value, dict) or key not in value:
                    return None
                value = value[key]
            return value
        return get

    add("enqueue/s (1 thread)", dig("enqueue_per_s"), ".0f", True)
    for k in args.processes:
        add(f"drain wf/s, {k} process{'es' if k > 1 else ''}", dig("drain", str(k), "drain_per_s"), ".0f", True)
    for k in args.processes:
        add(f"  worker CPU ms/wf, {k} proc", dig("drain", str(k), "worker_cpu_ms_per_wf"), ".2f", False)
    if args.latency_count > 0:
        for interval in args.latency_interval_ms:
            key = f"{interval:g}"
            add(f"enqueue->start p50 ms, every {key} ms", dig("latency", key, "ms_p50"), ".1f", False)
            add(f"enqueue->start p99 ms, every {key} ms", dig("latency", key, "ms_p99"), ".1f", False)
    for q in args.idle_queues:
        add(f"idle statements/s, {q} queue{'s' if q > 1 else ''}", dig("idle", str(q), "statements_per_s"), ".2f", False)
    if args.idle_with_peer and args.idle_queues:
        q = args.idle_queues[0]
        add(f"idle statements/s, {q} queue{'s' if q > 1 else ''}, 2nd executor",
            dig("idle", f"{q}+peer", "statements_per_s"), ".2f", False)
    return common.render_table(rows)


def _targets(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    lines = []
    pg = runs["pgfleet"]
    if "dbos" in runs and "1" in pg["drain"] and "1" in runs["dbos"]["drain"]:
        ratio = pg["drain"]["1"]["drain_per_s"] / runs["dbos"]["drain"]["1"]["drain_per_s"]
        verdict = "ok" if ratio >= TARGET_DRAIN_RATIO else "MISSED"
        lines.append(f"target drain >= {TARGET_DRAIN_RATIO:g}x DBOS with 1 process: {ratio:.2f}x -> {verdict}")
    if pg.get("latency"):
        key = f"{args.latency_interval_ms[0]:g}"
        p50 = pg["latency"][key]["ms_p50"]
        verdict = "ok" if p50 <= TARGET_LATENCY_P50_MS else "MISSED"
        lines.append(f"target enqueue->start p50 <= {TARGET_LATENCY_P50_MS:g} ms (enqueues every {key} ms): "
                     f"{p50:.1f} ms -> {verdict}")
    for idle in pg["idle"].values():
        if "statements_per_s" in idle:
            rate = idle["statements_per_s"]
            verdict = "ok" if rate <= TARGET_IDLE_STATEMENTS_PER_S else "MISSED"
            where = f"{idle['queues']} queue(s)" + (", beside a peer" if idle.get("peer") else ", alone")
            lines.append(f"target idle <= {TARGET_IDLE_STATEMENTS_PER_S:g} statements/s ({where}): "
                         f"{rate:.2f}/s -> {verdict}")
    return lines


def _details(runs: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for engine, run in runs.items():
        for k, d in run["drain"].items():
            spread = ", ".join(f"{n}" for n in d["per_executor"].values())
            lines.append(f"{engine} drain {k}p: {d['drain_s']:.2f} s first start -> last completion; "
                         f"release -> first start {d['release_to_first_start_ms']:.0f} ms; per executor [{spread}]; "
                         f"enqueue {d['enqueue']['enqueue_per_s']:.0f}/s (p50 {d['enqueue']['ms_p50']:.2f} ms, "
                         f"p99 {d['enqueue']['ms_p99']:.2f} ms)")
        for lat in run.get("latency", {}).values():
            lines.append(f"{engine} enqueue->start ms: min {lat['ms_min']:.1f} p50 {lat['ms_p50']:.1f} "
                         f"p90 {lat['ms_p90']:.1f} p99 {lat['ms_p99']:.1f} max {lat['ms_max']:.1f} "
                         f"({lat['count']} x every {lat['interval_ms']:g} ms)")
        for idle in run["idle"].values():
            where = f"{idle['queues']} queue(s)" + (", beside a peer" if idle.get("peer") else ", alone")
            if "skipped" in idle:
                lines.append(f"{engine} idle ({where}): not measured: {idle['skipped']}")
                continue
            server = idle.get("server_statements_per_s")
            lines.append(f"{engine} idle ({where}): {idle['statements_per_s']:.2f} statements/s over "
                         f"{idle['seconds']:.1f} s, {idle['connections_opened']} new connections"
                         + (f"; server-side (pg_stat_statements, whole database{', the peer included' if idle.get('peer') else ''}, "
                            f"empty queries not counted) {server:.2f}/s" if server is not None else ""))
            for text, rate in list(idle["by_text_per_s"].items())[:12]:
                lines.append(f"    {rate:6.2f}/s  {text}")
    return lines


def _logs_to_stderr() -> None:
    """structlog prints to stdout by default (the embedded server's start/stop lines): keep
    this process's stdout for the report (``--json`` must be parseable)."""
    try:
        import structlog
    except ImportError:  # pragma: no cover - pgfleet depends on it
        return
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def run_parent(args: argparse.Namespace) -> int:
    _logs_to_stderr()
    bench_server = common.BenchServer(args.database_url, args.embedded_dir)
    stamp = time.strftime("%Y%m%d_%H%M%S") + f"_{os.getpid()}"
    runs: dict[str, dict[str, Any]] = {}
    try:
        runs["pgfleet"] = _EngineRun("pgfleet", sys.executable, bench_server.url, stamp, args).run()
        if args.dbos_python:
            runs["dbos"] = _EngineRun("dbos", args.dbos_python, bench_server.url, stamp, args).run()
    finally:
        bench_server.close(args.keep_server)

    report = {
        "server": bench_server.where(),
        "embedded": bench_server.embedded,
        "durability": True if bench_server.embedded else None,
        "count": args.count,
        "worker_concurrency": args.worker_concurrency,
        "history": args.history,
        "processes": args.processes,
        "runs": runs,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"server {report['server']}  count {args.count}  worker_concurrency {args.worker_concurrency}  "
          + (f"history {args.history} rows  " if args.history else "") +
          f"({'embedded, durability on' if bench_server.embedded else 'external server'})")
    for engine, run in runs.items():
        print(f"{engine}: {run.get('version', '?')} on python {run.get('python', '?')}"
              + ("  [schema migrated without uuid-ossp]" if run.get("dbos_migration_without_uuid_ossp") else ""))
    print()
    print(_table(runs, args))
    print()
    for line in _targets(runs, args):
        print(line)
    print()
    for line in _details(runs):
        print(line)
    return 0


# ---------------------------------------------------------------------------------- main


def _int_list(parser: argparse.ArgumentParser, option: str, text: str) -> list[int]:
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        parser.error(f"{option} must be comma-separated integers, got {text!r}")
    if any(v < 1 for v in values):
        parser.error(f"{option} must be positive integers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", help="Postgres server URL (default: the embedded server)")
    parser.add_argument("--count", type=int, default=2000, help="workflows enqueued and drained per run (default 2000)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed enqueues first, to an unserved queue (default 50)")
    parser.add_argument("--processes", default="1,2,4", help="executor processes per drain run (default 1,2,4)")
    parser.add_argument("--worker-concurrency", type=int, default=32,
                        help="worker_concurrency of the queue in every process (default 32)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds between all workers ready and the release (default 1)")
    parser.add_argument("--latency-count", type=int, default=200, help="timed enqueue->start samples (default 200; 0 skips)")
    parser.add_argument("--latency-warmup", type=int, default=10, help="discarded first samples (default 10)")
    parser.add_argument("--latency-interval-ms", default="50,200",
                        help="ms between enqueues; comma-separated, one run each; the first is checked (default 50,200)")
    parser.add_argument("--idle-queues", default="1,2", help="idle queue counts to measure (default 1,2)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle window measured (default 10)")
    parser.add_argument("--idle-settle", type=float, default=3.0, help="seconds after launch before measuring (default 3)")
    parser.add_argument("--idle-with-peer", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the first --idle-queues count in a 2nd executor beside an uncounted "
                             "peer started first (pgfleet: a follower, not the leader) (default on)")
    parser.add_argument("--history", type=int, default=0,
                        help="finished workflows (of another queue) added to each drain database before the drain, "
                             "to measure on a system database with history (default 0)")
    parser.add_argument("--dbos-python", help="python of a virtualenv with dbos installed: also run DBOS")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    parser.add_argument("--embedded-dir", default=".pgfleet", help="embedded server base dir (default ./.pgfleet)")
    parser.add_argument("--keep-server", action="store_true", help="do not stop an embedded server this run started")
    parser.add_argument("--keep-databases", action="store_true", help="do not drop the benchmark databases")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per worker or drain (default 900)")
    parser.add_argument("--worker", choices=("enqueue", "serve", "latency"), help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=("pgfleet", "dbos"), help=argparse.SUPPRESS)
    parser.add_argument("--executor-id", default="qbench", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.count < 1 or args.warmup < 0 or args.worker_concurrency < 1 or args.history < 0:
        parser.error("--count and --worker-concurrency must be >= 1, --warmup and --history >= 0")
    try:
        args.latency_interval_ms = [float(s) for s in str(args.latency_interval_ms).split(",") if s.strip()]
    except ValueError:
        parser.error(f"--latency-interval-ms must be comma-separated numbers, got {args.latency_interval_ms!r}")
    if args.latency_count < 0 or args.latency_warmup < 0 or not args.latency_interval_ms \
            or any(i < 0 for i in args.latency_interval_ms):
        parser.error("--latency-count, --latency-warmup and --latency-interval-ms must be >= 0")
    if args.idle_seconds <= 0 or args.idle_settle < 0 or args.settle < 0:
        parser.error("--idle-seconds must be > 0 and --idle-settle, --settle >= 0")

    if args.worker:
        if not args.database_url or not args.engine:
            parser.error("--worker needs --database-url and --engine")
        run_worker(args)
        return 0
    args.processes = _int_list(parser, "--processes", args.processes)
    args.idle_queues = _int_list(parser, "--idle-queues", args.idle_queues)
    if args.dbos_python and not os.path.exists(args.dbos_python):
        parser.error(f"--dbos-python {args.dbos_python!r} does not exist")
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
