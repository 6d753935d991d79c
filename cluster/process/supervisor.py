"""``pgfleet supervise``: one supervisor per host spawns the executor processes and keeps them up.

Modelled on Solid Queue's supervisor, with its gaps closed:
- children are spawned (``multiprocess``, spawn context), never forked;
- they are reaped about once a second; a dead child is fenced at once (its member row marked
  dead and its workflows handed over) and replaced at once, then with exponential backoff if it
  keeps dying; past ``CRASH_LOOP_RESTARTS`` failures in ``CRASH_LOOP_WINDOW_SEC`` the slot is
  reported as crash-looping and retried at the maximum backoff;
- a child that has not registered within the boot deadline is killed and replaced;
- signal handlers only record the signal and wake the loop (``signal.set_wakeup_fd``): the first
  SIGTERM/SIGINT drains (children finish or hand over their work within the grace period), a
  second one, or the end of the grace period, stops everything at once;
- children die with the supervisor, even when it is SIGKILLed (``PR_SET_PDEATHSIG`` and a
  parent-pid check in the worker);
- one supervisor per ``--name`` per host, held by an exclusive lock on a pidfile.
Every lifecycle event is a structured log line; slot states are written to
``dbos.pgfleet_supervisors`` for ``pgfleet status``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import selectors
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import multiprocess

from cluster.coordination.service import exponential_backoff
from cluster.coordination.sweeper import WorkMoved, announce_moved, take_over_member
from sysdb import SystemDatabase, resolve_system_database_url
from sysdb.fleet import SlotReport, SupervisorReport
from sysdb.logs import get_logger

from .worker import WorkerSpec, run_worker

__all__ = ["SupervisorOptions", "WorkerSpec", "Supervisor", "run_supervisor"]

log = get_logger("pgfleet.supervisor")

REAP_INTERVAL_SEC = 1.0
BACKOFF_BASE_SEC = 0.5
BACKOFF_MAX_SEC = 30.0
CRASH_LOOP_RESTARTS = 5
CRASH_LOOP_WINDOW_SEC = 60.0
# A child that has run this long is healthy again: its failure count starts over.
STABLE_AFTER_SEC = 30.0
# Extra time after the grace period for children to write their hand-over and exit.
DRAIN_SLACK_SEC = 5.0
# How long one of the supervisor's own database calls keeps trying an unreachable server. They
# are best effort (its state row; fencing a dead worker, which the leader's sweep does anyway
# after the member timeout), and the loop that makes them also reaps workers and answers
# signals: with the worker's 10 s a Ctrl-C while the database was down took about 100 s.
DATABASE_RETRY_SEC = 2.0


@dataclass(frozen=True)
class SupervisorOptions:
    """How to run one node's workers (see ``pgfleet supervise --help``)."""

    app: str
    workers: int = 1
    name: str | None = None  # the node name; default: this host's name
    queues: tuple[str, ...] | None = None
    grace_sec: float = 30.0
    metrics_port: int | None = None
    worker_config: dict[str, Any] = field(default_factory=dict)
    boot_deadline_sec: float = 30.0


@dataclass
class Slot:
    """One worker slot: executor id ``<name>-<index>``, and the process currently filling it."""

    index: int
    executor_id: str
    process: Any = None
    ready_conn: Any = None
    started_at: float = 0.0
    registered: bool = False
    restarts: int = 0
    failures: list[float] = field(default_factory=list)
    next_start_at: float = 0.0
    state: str = "starting"
    last_exit: str | None = None

    def report(self) -> SlotReport:
        return {
            "slot": self.index,
            "executor_id": self.executor_id,
            "pid": self.process.pid if self.process is not None else None,
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Supervisor:
    """Spawns, reaps and restarts the worker processes of one node."""

    def __init__(self, options: SupervisorOptions) -> None:
        if options.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {options.workers}")
        self.options = options
        self.host = socket.gethostname()
        self.name = options.name or self.host
        self.supervisor_id = f"{self.name}@{self.host}"
        self.slots = [Slot(i, f"{self.name}-{i}") for i in range(options.workers)]
        self._context = multiprocess.get_context("spawn")
        self._signals: list[int] = []
        self._draining_since: float | None = None
        self._db: SystemDatabase | None = None
        self._pidfile: Any = None

    # -- the pidfile ---------------------------------------------------------------------------

    def _lock_pidfile(self) -> None:
        path = Path(tempfile.gettempdir()) / f"pgfleet-supervisor-{self.name}.pid"
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise SystemExit(
                f"pgfleet supervise: a supervisor named {self.name!r} already runs on this host "
                f"(pid {holder}, pidfile {path}); give this one another --name"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._pidfile = handle

    # -- children ------------------------------------------------------------------------------

    def _spawn(self, slot: Slot) -> None:
        parent_conn, child_conn = self._context.Pipe(duplex=False)
        spec = WorkerSpec(
            app=self.options.app,
            executor_id=slot.executor_id,
            supervisor_id=self.supervisor_id,
            supervisor_pid=os.getpid(),
            queues=self.options.queues,
            worker_config=dict(self.options.worker_config),
            grace_sec=self.options.grace_sec,
            metrics_port=self.options.metrics_port + slot.index if self.options.metrics_port else None,
            ready=child_conn,
        )
        process = self._context.Process(target=run_worker, args=(spec,), name=f"pgfleet-worker-{slot.executor_id}")
        process.start()
        child_conn.close()
        slot.process, slot.ready_conn = process, parent_conn
        slot.started_at, slot.registered = time.monotonic(), False
        slot.state = "starting"
        log.info("spawned worker", slot=slot.index, executor_id=slot.executor_id, pid=process.pid)

    def _check_ready(self, slot: Slot) -> None:
        if slot.registered or slot.ready_conn is None:
            return
        try:
            if slot.ready_conn.poll():
                slot.ready_conn.recv()
                slot.registered, slot.state = True, "running"
                log.info("worker registered", slot=slot.index, executor_id=slot.executor_id, pid=slot.process.pid)
        except (EOFError, OSError):
            pass  # the child died before reporting; the reaper handles it
        if not slot.registered and time.monotonic() - slot.started_at > self.options.boot_deadline_sec:
            log.error("worker did not register within the boot deadline; killing it", slot=slot.index, pid=slot.process.pid)
            os.kill(slot.process.pid, signal.SIGKILL)

    def _reap(self, slot: Slot) -> None:
        process = slot.process
        if process is None or process.is_alive():
            return
        process.join(0)
        code = process.exitcode
        slot.last_exit = _describe_exit(code)
        slot.process, slot.ready_conn = None, None
        now = time.monotonic()
        uptime = now - slot.started_at
        # A clean exit while draining is what was asked for; any other exit is news to an operator.
        expected = self._draining_since is not None and code == 0
        (log.info if expected else log.warning)(
            "worker exited", slot=slot.index, executor_id=slot.executor_id, pid=process.pid,
            exit=slot.last_exit, uptime_sec=round(uptime, 1),
        )
        self._fence(slot, process.pid)
        if self._draining_since is not None:
            slot.state = "stopped"
            return
        if uptime > STABLE_AFTER_SEC:
            slot.failures.clear()
        slot.failures = [t for t in slot.failures if now - t < CRASH_LOOP_WINDOW_SEC] + [now]
        failures = len(slot.failures)
        backoff = 0.0 if failures == 1 else exponential_backoff(BACKOFF_BASE_SEC, failures - 1, BACKOFF_MAX_SEC)
        if failures > CRASH_LOOP_RESTARTS:
            backoff = BACKOFF_MAX_SEC
            slot.state = "crash_loop"
            log.error("worker is crash-looping; retrying at the maximum backoff", slot=slot.index,
                      failures=failures, window_sec=CRASH_LOOP_WINDOW_SEC, backoff_sec=backoff)
        else:
            slot.state = "backoff" if backoff else "restarting"
        slot.next_start_at = now + backoff
        if backoff:
            log.info("restarting worker after backoff", slot=slot.index, backoff_sec=backoff)

    def _fence(self, slot: Slot, pid: int) -> None:
        """A dead child's member row is marked dead and its workflows handed over at once,
        instead of waiting out the member timeout."""
        if self._db is None:
            return
        try:
            member = self._db.members.get(slot.executor_id, member_timeout_sec=0)
            if member is None or member.pid != pid or member.status == "dead":
                log.info("nothing to fence: the worker never registered or already left", executor_id=slot.executor_id,
                         registered_pid=member.pid if member else None, status=member.status if member else None)
                return
            self._db.members.set_status(slot.executor_id, member.epoch, "dead")
            moved = take_over_member(self._db, slot.executor_id, member.epoch, by_executor_id=self.supervisor_id,
                                     member_timeout_sec=float(self.options.worker_config.get("member_timeout_sec", 5.0)))
            if moved:
                log.info("took over a dead worker's workflows", executor_id=slot.executor_id, count=len(moved))
                announce_moved(self._db, WorkMoved.by_takeover(moved))
        except Exception as exc:  # the leader's sweep takes over later if we cannot now
            log.warning("could not fence a dead worker", executor_id=slot.executor_id, error=str(exc))

    # -- the loop ------------------------------------------------------------------------------

    def _report(self, state: str) -> None:
        if self._db is None:
            return
        try:
            self._db.fleet.report_supervisor(SupervisorReport(
                supervisor_id=self.supervisor_id, name=self.name, host=self.host, pid=os.getpid(), app=self.options.app,
                workers=self.options.workers, state=state, slots=[s.report() for s in self.slots],
            ))
        except Exception as exc:
            log.warning("could not report supervisor state", error=str(exc))

    def _open_database(self) -> None:
        config = self.options.worker_config
        url = resolve_system_database_url(config.get("system_database_url"), config.get("embedded_data_dir"))
        # Workers started after us use the same server: pass the resolved URL down.
        self.options.worker_config.setdefault("system_database_url", url)
        self._db = SystemDatabase(url, pool_size=2, application_name=f"pgfleet-supervisor-{self.name}", retry_timeout_sec=DATABASE_RETRY_SEC)
        self._db.open()

    def run(self) -> int:
        """Supervise until drained; returns the process exit code."""
        self._lock_pidfile()
        self._open_database()
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, _frame: self._signals.append(signum))
        selector = selectors.DefaultSelector()
        selector.register(read_fd, selectors.EVENT_READ)
        log.info("supervisor started", supervisor_id=self.supervisor_id, app=self.options.app, workers=self.options.workers)
        for slot in self.slots:
            self._spawn(slot)
        try:
            while True:
                selector.select(timeout=REAP_INTERVAL_SEC)
                try:
                    os.read(read_fd, 512)
                except BlockingIOError:
                    pass
                if self._handle_signals():
                    return 0
                for slot in self.slots:
                    self._reap(slot)
                    if slot.process is not None:
                        self._check_ready(slot)
                if self._draining_since is None:
                    now = time.monotonic()
                    for slot in self.slots:
                        if slot.process is None and now >= slot.next_start_at:
                            slot.restarts += 1
                            self._spawn(slot)
                elif all(s.process is None for s in self.slots):
                    log.info("drained: every worker has exited")
                    return 0
                elif time.monotonic() - self._draining_since > self.options.grace_sec + DRAIN_SLACK_SEC:
                    log.warning("grace period over: stopping the remaining workers now")
                    self._kill_all()
                    return 0
                self._report("draining" if self._draining_since is not None else "running")
        finally:
            self._kill_all()
            self._report("stopped")
            if self._db is not None:
                self._db.close()

    def _handle_signals(self) -> bool:
        """True when the supervisor must stop at once."""
        while self._signals:
            signum = self._signals.pop(0)
            if self._draining_since is None:
                self._draining_since = time.monotonic()
                log.info("draining: workers finish or hand over their workflows", signal=signal.Signals(signum).name,
                         grace_sec=self.options.grace_sec)
                for slot in self.slots:
                    if slot.process is not None and slot.process.is_alive():
                        os.kill(slot.process.pid, signal.SIGTERM)
            else:
                log.warning("second signal: stopping at once", signal=signal.Signals(signum).name)
                self._kill_all()
                return True
        return False

    def _kill_all(self) -> None:
        for slot in self.slots:
            process = slot.process
            if process is not None and process.is_alive():
                os.kill(process.pid, signal.SIGKILL)
                process.join(5)
                log.warning("killed worker", slot=slot.index, pid=process.pid)
                self._fence(slot, process.pid)
            slot.process = None


def run_supervisor(options: SupervisorOptions) -> int:
    """Run a supervisor in this process until it is drained or stopped; returns its exit code."""
    if not logging.getLogger().handlers:  # a bare command line: log lifecycle events to stderr
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return Supervisor(options).run()
