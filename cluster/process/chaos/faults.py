"""The faults of a chaos run, each injected for real and logged as a :class:`FaultRecord`.

Targets are drawn from the run's seeded ``random.Random`` and weighted by the workflows each
node or worker runs at that moment: a fault should hit work, not an idle process. Every time in
a record is on the database clock (this host's clock plus the offset measured against the
server), so faults and the history of the database line up on one axis.

- ``kill-node``: SIGKILL a node's whole supervisor tree, restart it after a short random delay.
- ``kill-worker``: SIGKILL one registered worker; its supervisor replaces it.
- ``pause-node`` / ``pause-worker``: SIGSTOP (a node's supervisor first), hold until the fleet
  has declared the executors dead (bounded), a little longer, then SIGCONT (``ended_at``).
- ``partition``: cut a node's veth link (``--netns``) until it is declared dead, then heal it.
- ``restart-db``: stop the embedded server (clean the first time, a crash after that) and start
  it again (``ended_at``: when it is back).
- ``terminate-backends``: ``pg_terminate_backend`` half of pgfleet's sessions.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .model import FAULT_KINDS, FaultRecord
from .netns import Netns
from .nodes import Node, signal_all

if TYPE_CHECKING:
    from .database import ChaosDatabase

__all__ = ["FaultInjector", "FaultUnavailable", "check_fault_kinds", "describe_fault"]

# How long a fault looks for a registered worker to hit (a node just restarted is booting).
FIND_WORKER_TIMEOUT_SEC = 20.0
POLL_SEC = 0.1


class FaultUnavailable(Exception):
    """This fault cannot be done in this run (the message says why, and what would allow it)."""


def check_fault_kinds(kinds: Iterable[str], *, can_restart: bool, netns: bool) -> None:
    """Refuse, before anything starts, a ``--faults`` list this run cannot do (``can_restart``:
    the run has an embedded server of its own; ``netns``: its nodes live in namespaces). Raises
    :class:`FaultUnavailable` naming the first problem."""
    kinds = list(kinds)
    if not kinds:
        raise FaultUnavailable(f"--faults is empty; choose from {', '.join(FAULT_KINDS)}")
    for kind in kinds:
        if kind not in FAULT_KINDS:
            raise FaultUnavailable(f"unknown fault kind {kind!r} in --faults; choose from {', '.join(FAULT_KINDS)}")
    if "partition" in kinds and not netns:
        reason = Netns.available()
        raise FaultUnavailable("partition needs --netns (network namespaces; root on Linux)" + (f": {reason}" if reason else ""))
    if "restart-db" in kinds and not can_restart:
        raise FaultUnavailable("restart-db needs the embedded server (pgfleet restarts only a server of its own); "
                               "this run uses a configured system database: leave its URL unset, or drop restart-db")  # fmt: skip


class FaultInjector:
    """Injects faults into ``nodes`` (node ``i`` in namespace ``i`` with ``netns``) and ``db``."""

    def __init__(self, db: ChaosDatabase, nodes: list[Node], rng: random.Random, *, netns: Netns | None,
                 member_timeout_sec: float, log: Callable[[str], None] | None = None,
                 stop: threading.Event | None = None) -> None:  # fmt: skip
        """``stop`` (the run's interrupt): once set, a fault's waits and holds end early; the
        fault is still undone (SIGCONT, link healed, node restarted) before ``inject`` returns."""
        self.db, self.nodes, self.rng, self.netns = db, nodes, rng, netns
        self.member_timeout_sec = member_timeout_sec
        self.log = log or (lambda line: None)
        self.stop = stop or threading.Event()
        self.restarts = 0
        self._offset = self._measure_offset(0.0)

    # -- clocks ------------------------------------------------------------------------------

    def _measure_offset(self, fallback: float) -> float:
        try:
            return self.db.clock_offset()
        except Exception:  # the server is down (a restart): the last offset still holds
            return fallback

    def now(self) -> float:
        """The database clock now, as unix seconds."""
        return time.time() + self._offset

    # -- targets -----------------------------------------------------------------------------

    def _running(self) -> dict[str, int]:
        """Workflows each active executor runs now (its PENDING rows)."""
        return {m.executor_id: m.running_workflows for m in self.db.members() if m.status == "active"}

    def pick_node(self, alive_only: bool = True) -> tuple[int, Node]:
        """A node at random, weighted by the workflows it runs now."""
        choices = [(i, n) for i, n in enumerate(self.nodes) if n.alive() or not alive_only]
        if not choices:
            raise FaultUnavailable("no node is running")
        running = self._running()
        weights = [0.2 + sum(c for e, c in running.items() if node.owns(e)) for _, node in choices]
        return self.rng.choices(choices, weights)[0]

    def pick_worker(self) -> tuple[Node, str, int]:
        """A registered worker of any node (node, executor id, pid), weighted by its work;
        waits a little for one (a restarted node is still booting)."""
        deadline = time.monotonic() + FIND_WORKER_TIMEOUT_SEC
        while True:
            found = [(node, e, pid) for node in self.nodes for e, pid in sorted(node.worker_pids(self.db).items())]
            if found:
                running = self._running()
                return self.rng.choices(found, [0.2 + running.get(e, 0) for _, e, _ in found])[0]
            if time.monotonic() > deadline or self.stop.is_set():
                raise FaultUnavailable(f"no registered worker to hit within {FIND_WORKER_TIMEOUT_SEC:.0f}s")
            self.stop.wait(POLL_SEC * 2)

    def _registered(self, node: Node) -> dict[str, int]:
        """The node's workers once all registered, or those that did within the timeout."""
        deadline = time.monotonic() + FIND_WORKER_TIMEOUT_SEC
        while len(workers := node.worker_pids(self.db)) < node.workers and time.monotonic() < deadline:
            if self.stop.wait(POLL_SEC * 2):
                break
        if not workers:
            raise FaultUnavailable(f"node {node.name} has no registered worker within {FIND_WORKER_TIMEOUT_SEC:.0f}s")
        return workers

    # -- injecting ---------------------------------------------------------------------------

    def inject(self, kind: str) -> FaultRecord:
        """Inject one fault of ``kind`` (one of ``FAULT_KINDS``) and return its record. Raises
        :class:`FaultUnavailable` when it cannot be done now."""
        handlers: dict[str, Callable[[], FaultRecord]] = {
            "kill-node": self._kill_node, "kill-worker": self._kill_worker, "pause-node": self._pause_node,
            "pause-worker": self._pause_worker, "partition": self._partition, "restart-db": self._restart_db,
            "terminate-backends": self._terminate_backends,
        }  # fmt: skip
        if kind not in handlers:
            raise FaultUnavailable(f"unknown fault kind {kind!r}; choose from {', '.join(FAULT_KINDS)}")
        if kind != "restart-db":
            self._offset = self._measure_offset(self._offset)
        record = handlers[kind]()
        self.log(describe_fault(record))
        return record

    def _kill_node(self) -> FaultRecord:
        _, node = self.pick_node()
        executors = sorted(node.worker_pids(self.db))
        at = self.now()
        pids = node.kill()
        delay = round(self.rng.uniform(0.5, 2.0), 2)
        try:
            self.stop.wait(delay)
        finally:
            supervisor = node.start()
        return FaultRecord("kill-node", at, node=node.name, target=node.name, pids=sorted(pids), executors=executors,
                           detail={"signal": "SIGKILL", "restart_after_sec": delay, "new_supervisor_pid": supervisor})  # fmt: skip

    def _kill_worker(self) -> FaultRecord:
        node, executor, pid = self.pick_worker()
        at = self.now()
        signal_all([pid], signal.SIGKILL)
        return FaultRecord("kill-worker", at, node=node.name, target=executor, pids=[pid], executors=[executor],
                           detail={"signal": "SIGKILL"})  # fmt: skip

    def _pause_node(self) -> FaultRecord:
        _, node = self.pick_node()
        executors = sorted(self._registered(node))
        at = self.now()
        pids = node.pause()
        try:
            detail = self._hold(executors)
        finally:
            node.resume()
        return FaultRecord("pause-node", at, node=node.name, target=node.name, pids=sorted(pids), executors=executors,
                           ended_at=self.now(), detail={"signal": "SIGSTOP", **detail})  # fmt: skip

    def _pause_worker(self) -> FaultRecord:
        node, executor, pid = self.pick_worker()
        at = self.now()
        signal_all([pid], signal.SIGSTOP)
        try:
            detail = self._hold([executor])
        finally:
            signal_all([pid], signal.SIGCONT)
        return FaultRecord("pause-worker", at, node=node.name, target=executor, pids=[pid], executors=[executor],
                           ended_at=self.now(), detail={"signal": "SIGSTOP", **detail})  # fmt: skip

    def _partition(self) -> FaultRecord:
        if self.netns is None:
            raise FaultUnavailable("partition needs --netns (network namespaces; root on Linux)")
        index, node = self.pick_node()
        executors = sorted(self._registered(node))
        pids = sorted(node.tree())
        at = self.now()
        self.netns.cut(index)
        try:
            detail = self._hold(executors)
        finally:
            self.netns.heal(index)
        return FaultRecord("partition", at, node=node.name, target=node.name, pids=pids, executors=executors,
                           ended_at=self.now(), detail={"link": "cut", **detail})  # fmt: skip

    def _hold(self, executors: list[str]) -> dict[str, Any]:
        """Wait (bounded: member timeout x3 + 10 s) until the fleet declared ``executors`` dead,
        then a little longer; what was seen."""
        started = time.monotonic()
        bound = self.member_timeout_sec * 3 + 10.0
        wanted = set(executors)
        dead_after: float | None = None
        while time.monotonic() - started < bound:
            dead = {m.executor_id for m in self._members_or_none() if m.status == "dead"}
            if wanted <= dead:
                dead_after = round(time.monotonic() - started, 2)
                break
            if self.stop.wait(POLL_SEC):
                break
        extra = round(self.rng.uniform(0.2, 1.5), 2)
        self.stop.wait(extra)
        return {"declared_dead_after_sec": dead_after, "held_after_sec": extra, "bound_sec": bound}

    def _members_or_none(self) -> list[Any]:
        try:
            return self.db.members()
        except Exception:  # an outage during the hold: ask again
            return []

    def restore_all(self) -> list[str]:
        """Undo whatever a fault may have left behind (an interrupted one, an error): every
        link healed, every node's tree SIGCONTed, a node that was started but is down started
        again, the embedded server started if it is down. What it did; never raises. Call it
        before stopping the nodes (a node stopped on purpose would be started again)."""
        done: list[str] = []
        if self.netns is not None:
            for index in range(self.netns.nodes):
                with contextlib.suppress(Exception):
                    self.netns.heal(index)
        for node in self.nodes:
            with contextlib.suppress(Exception):
                if node.alive():
                    node.resume()
                elif node.starts:
                    node.start()
                    done.append(f"restarted node {node.name}")
        with contextlib.suppress(Exception):
            if self.db.ensure_server_running():
                done.append("started the database server again")
        for line in done:
            self.log(line)
        return done

    def _restart_db(self) -> FaultRecord:
        if not self.db.can_restart:
            raise FaultUnavailable("restart-db needs the embedded server; this run uses a configured system database")
        self.restarts += 1
        mode = "fast" if self.restarts == 1 else "immediate"
        at = self.now()
        detail = self.db.restart(mode, round(self.rng.uniform(0.5, 2.5), 2))
        return FaultRecord("restart-db", at, target="postgres", ended_at=self.now(), detail=detail)

    def _terminate_backends(self) -> FaultRecord:
        at = self.now()
        detail = self.db.terminate_backends(self.rng)
        pids: set[int] = set()
        executors: set[str] = set()
        for name in detail["by_application"]:
            parts = name.split()  # "pgfleet <pid> <executor_id>" (truncated at 63 characters)
            if len(parts) >= 3 and parts[0] == "pgfleet" and parts[1].isdigit():
                pids.add(int(parts[1]))
                executors.add(parts[2])
        return FaultRecord("terminate-backends", at, target="postgres", pids=sorted(pids), executors=sorted(executors),
                           detail=detail)  # fmt: skip


def describe_fault(record: FaultRecord) -> str:
    """One line for the run's log: the kind, the target, the pids, how long it lasted."""
    lasted = f" for {record.ended_at - record.at:.1f}s" if record.ended_at is not None else ""
    pids = f" pids={record.pids}" if record.pids else ""
    return f"{record.kind} {record.target or ''}{pids}{lasted}".strip()
