"""The idle phase of ``queue.py``: statements/s of one executor with idle queues.

On a fresh database one executor that declares and serves N idle queues (``--idle-queues``)
runs for ``--idle-seconds`` after launching and ``--idle-settle`` seconds of grace, connected
through ``StatementCountingProxy`` (below), which counts what the client sends. With a peer
(``--idle-with-peer``) an uncounted executor with the same queues starts first, so the counted
one is a follower, not the leader. When the server preloads ``pg_stat_statements`` the
database's server-side count is reported beside it as a cross-check. See ``queue.py``'s
docstring for the details of what is counted.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections import Counter
from typing import Any

if __package__:
    from . import queue_run, queue_worker
else:  # loaded by path by queue.py, which has loaded these the same way first
    queue_run = sys.modules["pgfleet_bench_queue_run"]
    queue_worker = sys.modules["pgfleet_bench_queue_worker"]

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


def idle(run: queue_run.EngineRun, queues: int, peer: bool = False) -> dict[str, Any]:
    """Statements/s of one executor serving ``queues`` idle queues (beside a peer if ``peer``)."""
    from urllib.parse import urlsplit

    a = run.args
    obstacle = _proxy_obstacle(run.server_url)
    if obstacle:
        return {"queues": queues, "peer": peer, "skipped": obstacle}
    dbname, url = run.database(f"idle{queues}{'peer' if peer else ''}")
    parts = urlsplit(run.server_url)
    proxy = StatementCountingProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    worker: queue_run.Child | None = None
    other: queue_run.Child | None = None
    try:
        print(f"[bench] {run.engine}: idle cost with {queues} idle queue(s)"
              f"{', beside a peer executor' if peer else ''}, {a.idle_seconds:g} s ...", file=sys.stderr, flush=True)
        pgss = _PgStatStatements.attach(url)
        names = [f"{queue_worker.IDLE_QUEUE_PREFIX}{i + 1}" for i in range(queues)]
        if peer:  # started first and not counted: it is the one that ends up with any fleet-wide duties
            other = run.serve(url, f"qbench-{run.engine}-peer", names)
            other.wait_ready(a.timeout)
            time.sleep(a.settle)
        worker = run.serve(_proxied_url(url, proxy.port), f"qbench-{run.engine}-idle", names)
        worker.wait_ready(a.timeout)
        time.sleep(a.idle_settle)
        before, server_before, t0 = proxy.snapshot(), pgss.calls() if pgss else None, time.monotonic()
        time.sleep(a.idle_seconds)
        after, server_after, t1 = proxy.snapshot(), pgss.calls() if pgss else None, time.monotonic()
        run.note(worker.finish(a.timeout, stop=True))
        worker = None
        if other is not None:
            other.finish(a.timeout, stop=True)
            other = None
    finally:
        for child in (worker, other):
            if child is not None:
                child.kill()
        proxy.close()
        run.drop(dbname)
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
