r"""Network namespaces for ``pgfleet chaos --netns``: each node a host of its own, joined to the
database's namespace by a veth link, so that a partition is a real cut cable (packets lost, no
RST, no closed socket) instead of a killed connection::

    pgfc-n0-<pid>  10.204.0.2 --veth-- 10.204.0.1 \
                                                    pgfc-db-<pid>: the embedded Postgres
    pgfc-n1-<pid>  10.204.1.2 --veth-- 10.204.1.1 /

Every packet stays inside namespaces the run made (none has a route anywhere else), so runs
of several processes at once, each with its own namespaces, never meet. Names carry the
creating pid; namespaces of a pid that is gone (a run that was SIGKILLed) are removed first.
The runner itself reaches the server through its unix socket. Needs root and ``ip`` (iproute2).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from .nodes import pid_alive

__all__ = ["Netns", "NetnsError"]

SUBNET = "10.204"  # 10.204.<node>.0/30 per link; only ever inside the run's own namespaces
MAX_NODES = 250  # one /30 per node in 10.204.<node>.0; interface names stay <= 15 chars
_NAME = re.compile(r"^(pgfc-(?:db|n\d+)-(\d+))\b")


class NetnsError(RuntimeError):
    """A namespace command failed (the message names the command and what ``ip`` said)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


class Netns:
    """One namespace for the database and one per node, each node linked to the database by a veth pair."""

    def __init__(self, tag: int | None = None) -> None:
        self.tag = os.getpid() if tag is None else tag
        self.db_ns = f"pgfc-db-{self.tag}"
        self.nodes = 0
        self._created: list[str] = []

    @staticmethod
    def available() -> str | None:
        """None when namespaces can be made here; else why not (shown to the operator)."""
        if not sys.platform.startswith("linux"):
            return "network namespaces need Linux"
        if os.geteuid() != 0:
            return "network namespaces need root (run pgfleet chaos --netns as root)"
        if shutil.which("ip") is None:
            return "the 'ip' command (iproute2) is not installed"
        return None

    # -- names -------------------------------------------------------------------------------

    def node_ns(self, index: int) -> str:
        return f"pgfc-n{index}-{self.tag}"

    def db_ip(self, index: int) -> str:
        """The database's address on node ``index``'s link (what that node connects to)."""
        return f"{SUBNET}.{index}.1"

    def node_ip(self, index: int) -> str:
        return f"{SUBNET}.{index}.2"

    def db_addresses(self) -> list[str]:
        """The database ends of every link (where the server must listen)."""
        return [self.db_ip(i) for i in range(self.nodes)]

    def _db_if(self, index: int) -> str:
        return f"pgcd{index}-{self.tag}"  # interface names: at most 15 characters

    def _node_if(self, index: int) -> str:
        return f"pgcn{index}-{self.tag}"

    # -- lifecycle ---------------------------------------------------------------------------

    @staticmethod
    def remove_stale() -> list[str]:
        """Delete the namespaces of runs whose process is gone; returns their names."""
        removed = []
        for line in _ip("netns", "list", check=False).stdout.splitlines():
            match = _NAME.match(line)
            if match and not pid_alive(int(match.group(2))):
                _ip("netns", "del", match.group(1), check=False)
                removed.append(match.group(1))
        return removed

    def create(self, nodes: int) -> None:
        """The db namespace, ``nodes`` node namespaces and their links. Raises
        :class:`NetnsError` (after removing what it made) when the system refuses."""
        reason = self.available()
        if reason:
            raise NetnsError(reason)
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"--netns supports 1..{MAX_NODES} nodes, got {nodes}")
        self.remove_stale()
        try:
            self._add(self.db_ns)
            for i in range(nodes):
                self._add(self.node_ns(i))
                self._link(i)
                self.nodes = i + 1
        except NetnsError:
            self.destroy()
            raise

    def _add(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._created.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def _link(self, i: int) -> None:
        # Both ends are created straight inside their namespaces: never in the root one.
        _ip("link", "add", self._db_if(i), "netns", self.db_ns, "type", "veth",
            "peer", "name", self._node_if(i), "netns", self.node_ns(i))  # fmt: skip
        _ip("-n", self.db_ns, "addr", "add", f"{self.db_ip(i)}/30", "dev", self._db_if(i))
        _ip("-n", self.node_ns(i), "addr", "add", f"{self.node_ip(i)}/30", "dev", self._node_if(i))
        _ip("-n", self.db_ns, "link", "set", self._db_if(i), "up")
        _ip("-n", self.node_ns(i), "link", "set", self._node_if(i), "up")

    def destroy(self) -> None:
        """Delete every namespace this object made (their veth ends go with them). Processes
        still inside one keep it alive until they exit: stop them first."""
        for ns in reversed(self._created):
            _ip("netns", "del", ns, check=False)
        self._created.clear()
        self.nodes = 0

    # -- use ---------------------------------------------------------------------------------

    def exec_prefix(self, index: int) -> list[str]:
        """The command prefix that runs a program in node ``index``'s namespace (``ip netns
        exec`` execs in place: the program keeps the pid the caller started)."""
        self._check(index)
        return ["ip", "netns", "exec", self.node_ns(index)]

    def db_prefix(self) -> list[str]:
        """The command prefix that runs a program in the database's namespace."""
        return ["ip", "netns", "exec", self.db_ns]

    def cut(self, index: int) -> None:
        """Node ``index``'s cable cut: the database end of its link down. The node keeps its
        address and route, but its packets, and the server's replies, vanish."""
        self._check(index)
        _ip("-n", self.db_ns, "link", "set", self._db_if(index), "down")

    def heal(self, index: int) -> None:
        """Node ``index``'s link back up."""
        self._check(index)
        _ip("-n", self.db_ns, "link", "set", self._db_if(index), "up")

    def _check(self, index: int) -> None:
        if not 0 <= index < self.nodes:
            raise ValueError(f"no node namespace {index} (this run made {self.nodes})")
