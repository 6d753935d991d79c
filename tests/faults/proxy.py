"""A TCP proxy in front of Postgres that loses replies on purpose.

The fault it makes is the one a real network makes at the worst moment: a statement reaches
the server and commits, and its reply never reaches the client, whose connection then fails.
A correct client retries, and the retry must recognise its own effect.

Usage::

    proxy = PgProxy.start(sys_url)          # listens on 127.0.0.1, forwards to the server
    url = proxy.url                         # give this to the code under test
    rule = proxy.drop_reply("INSERT INTO dbos.notifications")
    ...                                     # run the code under test
    assert rule.fired.wait(10)              # the statement committed and its reply was lost
    proxy.cut_all()                         # or: cut every link now (plain outage)
    proxy.close()

How a rule works. The proxy parses the client->server stream into protocol messages. A rule
matches the first message whose SQL text contains the given text: a simple Query ('Q'), a Parse
('P'), or a Bind ('B') of a statement prepared on that link by a matching Parse (so server-side
prepared statements are matched too). From then on, on that link, server->client messages are
held back: each ReadyForQuery ('Z') that leaves the session inside a transaction ('T' or 'E')
releases what was held (so the client goes on to send its COMMIT), and the first one that leaves
the session idle ('I') -- the reply that ends the matched statement's transaction, that is the
autocommit statement itself or the COMMIT after it -- is dropped with everything held, and the
link is cut both ways. The server has committed; the client sees a dropped connection.

Each rule fires once. Links opened before a rule was added are matched too.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

__all__ = ["PgProxy", "DropRule"]

# Untyped startup-phase requests (no type byte) that the server answers with one unframed byte.
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


@dataclass
class DropRule:
    """Drop the reply that ends the transaction of the next statement whose SQL contains
    ``text`` (and, if given, for which ``predicate(sql)`` is true)."""

    text: bytes
    predicate: Callable[[str], bool] | None = None
    # Set once the reply was dropped and the link cut (the server did process the statement).
    fired: threading.Event = field(default_factory=threading.Event)
    # Set once a message matched (its reply may not have been dropped yet).
    matched: threading.Event = field(default_factory=threading.Event)
    matched_sql: str = ""

    def matches(self, sql_text: bytes) -> bool:
        if self.text not in sql_text:
            return False
        return self.predicate is None or self.predicate(sql_text.decode("utf-8", "replace"))


class _Link:
    """One client connection and its server connection, pumped by two threads."""

    def __init__(self, proxy: PgProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.closed = threading.Event()
        self.armed: DropRule | None = None
        self.unframed_replies = 0  # SSL/GSSENC answers still due from the server
        self.opaque = False  # the server accepted encryption: nothing can be parsed
        self.prepared: dict[bytes, bytes] = {}  # statement name -> SQL text, from Parse
        self.lock = threading.Lock()

    def start(self) -> None:
        for target, name in ((self._pump_client, "c2s"), (self._pump_server, "s2c")):
            threading.Thread(target=target, name=f"pgproxy-{name}", daemon=True).start()

    def cut(self) -> None:
        with self.lock:  # both pumps and cut_all may get here at once
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.proxy._forget(self)

    # -- client -> server ---------------------------------------------------------------------

    def _pump_client(self) -> None:
        buffer = b""
        startup = True
        try:
            while not self.closed.is_set():
                chunk = self.client.recv(65536)
                if not chunk:
                    break
                if self.opaque:
                    self.server.sendall(chunk)
                    continue
                buffer += chunk
                while True:
                    message, buffer, startup = self._next_client_message(buffer, startup)
                    if message is None:
                        break
                    self.server.sendall(message)
        except OSError:
            pass
        self.cut()

    def _next_client_message(self, buffer: bytes, startup: bool) -> tuple[bytes | None, bytes, bool]:
        if startup:  # untyped: int32 length, int32 code
            if len(buffer) < 8:
                return None, buffer, True
            (length, code) = struct.unpack("!ii", buffer[:8])
            if len(buffer) < length:
                return None, buffer, True
            if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                with self.lock:
                    self.unframed_replies += 1
                return buffer[:length], buffer[length:], True
            return buffer[:length], buffer[length:], False
        if len(buffer) < 5:
            return None, buffer, False
        kind = buffer[:1]
        (length,) = struct.unpack("!i", buffer[1:5])
        if len(buffer) < 1 + length:
            return None, buffer, False
        message = buffer[: 1 + length]
        self._inspect(kind, message[5:])
        return message, buffer[1 + length :], False

    def _inspect(self, kind: bytes, body: bytes) -> None:
        sql_text: bytes | None = None
        if kind == b"Q":
            sql_text = body.split(b"\0", 1)[0]
        elif kind == b"P":
            name, rest = body.split(b"\0", 1)
            sql_text = rest.split(b"\0", 1)[0]
            if name:
                self.prepared[name] = sql_text
        elif kind == b"B":
            _portal, rest = body.split(b"\0", 1)
            name = rest.split(b"\0", 1)[0]
            sql_text = self.prepared.get(name) if name else None
        if sql_text is None or self.armed is not None:
            return
        rule = self.proxy._take_rule(sql_text)
        if rule is not None:
            rule.matched_sql = sql_text.decode("utf-8", "replace")
            self.armed = rule
            rule.matched.set()

    # -- server -> client ---------------------------------------------------------------------

    def _pump_server(self) -> None:
        buffer = b""
        held = b""
        try:
            while not self.closed.is_set():
                chunk = self.server.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while buffer and not self.opaque:
                    with self.lock:
                        unframed = self.unframed_replies > 0
                        if unframed:
                            self.unframed_replies -= 1
                    if unframed:
                        self.opaque = buffer[:1] in (b"S", b"G")
                        self.client.sendall(buffer[:1])
                        buffer = buffer[1:]
                        continue
                    if len(buffer) < 5:
                        break
                    (length,) = struct.unpack("!i", buffer[1:5])
                    if len(buffer) < 1 + length:
                        break
                    message, buffer = buffer[: 1 + length], buffer[1 + length :]
                    held = self._deliver(message, held)
                    if self.closed.is_set():
                        return
                if self.opaque and buffer:
                    self.client.sendall(buffer)
                    buffer = b""
        except OSError:
            pass
        self.cut()

    def _deliver(self, message: bytes, held: bytes) -> bytes:
        rule = self.armed
        if rule is None:
            self.client.sendall(message)
            return b""
        held += message
        if message[:1] != b"Z":
            return held
        status = message[5:6]
        if status in (b"T", b"E"):  # still inside the transaction: let the client go on
            self.client.sendall(held)
            return b""
        # The statement's transaction is over on the server: lose its reply, cut the link.
        rule.fired.set()  # before the cut, so a client that sees the failure sees the rule fired
        self.cut()
        return b""


class PgProxy:
    """A TCP proxy on 127.0.0.1 in front of one Postgres server (see the module docstring)."""

    def __init__(self, target_url: str) -> None:
        params = conninfo_to_dict(target_url)
        self.target = (params.get("host") or "127.0.0.1", int(params.get("port") or 5432))
        self._params = params
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._links: set[_Link] = set()
        self._rules: list[DropRule] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="pgproxy-accept", daemon=True)

    @classmethod
    def start(cls, target_url: str) -> PgProxy:
        proxy = cls(target_url)
        proxy._thread.start()
        return proxy

    @property
    def url(self) -> str:
        """A ``postgresql://`` URL for the same database and user, through this proxy
        (unencrypted, so the proxy can read the protocol)."""
        user = quote(self._params.get("user") or "", safe="")
        password = self._params.get("password")
        auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        dbname = quote(self._params.get("dbname") or "postgres", safe="")
        return f"postgresql://{auth}127.0.0.1:{self.port}/{dbname}?sslmode=disable&gssencmode=disable"

    def drop_reply(self, text: str | bytes, predicate: Callable[[str], bool] | None = None) -> DropRule:
        """Arm a rule: the next statement whose SQL contains ``text`` commits, its reply is lost."""
        rule = DropRule(text.encode() if isinstance(text, str) else text, predicate)
        with self._lock:
            self._rules.append(rule)
        return rule

    def cancel(self, rule: DropRule) -> None:
        """Withdraw a rule that has not matched yet."""
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def cut_all(self) -> int:
        """Cut every open link now (the clients see their connections drop). Returns how many."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.cut()
        return len(links)

    def link_count(self) -> int:
        with self._lock:
            return len(self._links)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.cut_all()

    def __enter__(self) -> PgProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _take_rule(self, sql_text: bytes) -> DropRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(sql_text):
                    self._rules.remove(rule)
                    return rule
        return None

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, server)
            with self._lock:
                self._links.add(link)
            link.start()
