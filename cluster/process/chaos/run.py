"""One ``pgfleet chaos`` run, start to finish: set up the database and the nodes, play the seeded
plan of faults while the workload's waves arrive, drain, stop every node (so no late write can
land after the history is read), check the history and build the result.

Everything the run starts is registered on one ``ExitStack`` as it is started, so an error, a
Ctrl-C or a SIGTERM at any point stops and removes exactly what exists by then.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

from runtime import DBOSClient
from sysdb import SystemDatabase
from sysdb.chaos_progress import ChaosProgress

from . import builtin_spec
from .database import ChaosDatabase
from .faults import FaultInjector, FaultUnavailable, check_fault_kinds
from .feeders import ProgressTicker, WaveFeeder
from .model import ChaosResult, FaultRecord
from .netns import Netns
from .nodes import Node
from .options import BUILTIN_APP, ChaosOptions, ChaosSetupError, ChaosUsageError
from .progress import Progress
from .result import build_result
from .schedule import plan, wave_count_for
from .workload import Workload, load_workload

__all__ = ["ChaosRun"]

REGISTER_TIMEOUT_SEC = 120.0
STOP_GRACE_SEC = 10.0
TERMINAL = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


class ChaosRun:
    """A run of ``options``; :meth:`execute` returns its :class:`ChaosResult`."""

    def __init__(self, options: ChaosOptions, *, progress_stream: TextIO) -> None:
        options.validate()
        self.options = options
        self.progress = Progress(options.seconds, progress_stream)
        self.faults: list[FaultRecord] = []
        self.notes: list[str] = []
        self._interrupted = threading.Event()
        self._last_fault: str | None = None
        self._done = self._started = 0
        self.kept: list[str] = []  # what a failed or --keep run leaves behind, and where
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix=f"pgfleet-chaos-{options.seed}-"))

    # -- the run ---------------------------------------------------------------------------------

    def execute(self) -> ChaosResult:
        options = self.options
        waves = wave_count_for(options.seconds)
        workload = load_workload(options.workload, options.seed, waves)  # bad specs fail before anything starts
        kinds = self._fault_kinds()
        self.workdir.mkdir(parents=True, exist_ok=True)
        passed = [False]
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(lambda: self._remove_workdir(keep=self._keep(passed[0])))
            cleanup.callback(self.progress.close)
            netns = self._netns(cleanup)
            database = ChaosDatabase.prepare(configured_url=options.database_url, netns=netns, workdir=self.workdir,
                                             seed=options.seed)  # fmt: skip
            cleanup.callback(lambda: self._close_database(database, keep=self._keep(passed[0])))
            sysdb = database.sysdb
            sysdb.chaos_history.install()
            nodes = self._start_nodes(database, netns, sysdb, cleanup)
            offset = database.clock_offset()
            started_at = time.time() + offset
            feeder = self._play(database, nodes, netns, kinds, workload, waves, sysdb)
            self._drain(sysdb, feeder)
            self._stop_nodes(nodes)
            ended_at = time.time() + offset
            history = sysdb.chaos_history.load()
            result = build_result(options, history, self.faults, feeder.expected, kinds=kinds, started_at=started_at,
                                  ended_at=ended_at, notes=self.notes, failed_waves=feeder.failed)  # fmt: skip
            passed[0] = result.passed
            return result
        raise AssertionError("unreachable")  # pragma: no cover - the with block returns or raises

    def interrupt(self) -> None:
        """Stop the run early (Ctrl-C, SIGTERM): the fault loop and the drain end at their next
        wait, and :meth:`execute` raises KeyboardInterrupt once everything is cleaned up."""
        self._interrupted.set()

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    # -- set-up ----------------------------------------------------------------------------------

    def _netns(self, cleanup: contextlib.ExitStack) -> Netns | None:
        if not self.options.netns:
            return None
        why = Netns.available()
        if why is not None:
            raise ChaosUsageError(f"--netns: {why}")
        netns = Netns()
        cleanup.callback(netns.destroy)
        netns.create(self.options.nodes)
        return netns

    def _fault_kinds(self) -> list[str]:
        """The kinds to inject. Asked-for kinds this run cannot do refuse the run; from the
        default set (every kind) they are left out, and the notes say why."""
        can_restart, netns = self.options.database_url is None, self.options.netns
        if self.options.faults_given:
            if self.options.faults:
                try:
                    check_fault_kinds(self.options.faults, can_restart=can_restart, netns=netns)
                except FaultUnavailable as exc:
                    raise ChaosUsageError(str(exc)) from None
            return list(self.options.faults)
        usable = []
        for kind in self.options.faults:
            try:
                check_fault_kinds([kind], can_restart=can_restart, netns=netns)
                usable.append(kind)
            except FaultUnavailable as exc:
                self.notes.append(f"left out {kind}: {exc}")
        return usable

    def _start_nodes(self, database: ChaosDatabase, netns: Netns | None, sysdb: SystemDatabase,
                     cleanup: contextlib.ExitStack) -> list[Node]:
        options = self.options
        app = str(builtin_spec.APP_PATH) if options.app == BUILTIN_APP else options.app
        nodes = []
        for index in range(options.nodes):
            node = Node(f"chaos{index}", app, options.workers, url=database.node_url(index), config_file=options.config,
                        env={}, workdir=self.workdir, prefix=netns.exec_prefix(index) if netns else [])  # fmt: skip
            cleanup.callback(node.kill_everything)
            node.start()
            nodes.append(node)
        self._wait_registered(sysdb, nodes)
        return nodes

    def _wait_registered(self, db: SystemDatabase, nodes: list[Node]) -> None:
        want = self.options.nodes * self.options.workers
        deadline = time.monotonic() + REGISTER_TIMEOUT_SEC
        while True:
            for node in nodes:
                if not node.alive():
                    raise ChaosSetupError(f"node {node.name} exited while starting; its log ends:\n{node.log_tail(30)}")
            up = sum(len(node.worker_pids(db)) for node in nodes)
            if up >= want:
                self.progress.message(f"{len(nodes)} nodes up, {up} workers registered")
                return
            if self._interrupted.wait(0.2):
                self._check_interrupted()
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {n.name}:\n{n.log_tail(15)}" for n in nodes)
                raise ChaosSetupError(f"only {up} of {want} workers registered in {REGISTER_TIMEOUT_SEC:g}s:\n{tails}")

    # -- the faults and the work -------------------------------------------------------------------

    def _play(self, database: ChaosDatabase, nodes: list[Node], netns: Netns | None, kinds: list[str],
              workload: Workload, waves: int, sysdb: SystemDatabase) -> WaveFeeder:  # fmt: skip
        options = self.options
        events = plan(options.seed, options.seconds, kinds, waves)
        t0 = time.monotonic()
        client = _Client(database.url)
        feeder = WaveFeeder([e.at for e in events if e.what == "wave"], t0, lambda w: workload.wave(client.get(), w),
                            lambda w, why: self.progress.message(f"wave {w} failed: {why}"))  # fmt: skip
        ticker = ProgressTicker(lambda: self._tick(sysdb, feeder, t0))
        injector = FaultInjector(database, nodes, random.Random(options.seed), netns=netns,
                                 member_timeout_sec=options.member_timeout_sec,
                                 log=lambda line: self.progress.message(f"+{time.monotonic() - t0:5.1f}s {line}"),
                                 stop=self._interrupted)  # fmt: skip
        feeder.start()
        ticker.start()
        try:
            for event in (e for e in events if e.what == "fault"):
                if self._interrupted.wait(max(0.0, t0 + event.at - time.monotonic())):
                    break
                self._inject(injector, event.kind)
            self._interrupted.wait(max(0.0, t0 + options.seconds - time.monotonic()))
            deadline = time.monotonic() + options.seconds  # the last waves may still be going in
            while not feeder.finished.wait(0.2) and not self.interrupted and time.monotonic() < deadline:
                pass
        finally:
            injector.restore_all()  # nothing stays paused or cut off, and a node killed last is back
            feeder.stop()
            ticker.stop()
            client.close()
        self._check_interrupted()
        return feeder

    def _inject(self, injector: FaultInjector, kind: str) -> None:
        try:
            record = injector.inject(kind)
        except FaultUnavailable as exc:
            self.notes.append(f"{kind}: not done: {exc}")
            self.progress.message(f"{kind}: not done: {exc}")
            return
        self.faults.append(record)
        self._last_fault = f"{record.kind} {record.target or ''}".strip()

    def _tick(self, sysdb: SystemDatabase, feeder: WaveFeeder, t0: float) -> None:
        ids = feeder.expected_ids()
        try:
            counts = ChaosProgress(sysdb).status_counts(ids) if ids else {}
        except Exception:  # the server is restarting: keep the last figures
            counts = None
        if counts is not None:
            self._done, self._started = sum(n for s, n in counts.items() if s in TERMINAL), len(ids)
        self.progress.update(time.monotonic() - t0, len(self.faults), self._done, self._started, self._last_fault)

    # -- the end -----------------------------------------------------------------------------------

    def _drain(self, sysdb: SystemDatabase, feeder: WaveFeeder) -> None:
        """Wait (bounded) until no workflow of the database is left to run: the workload's, their
        children and anything they started."""
        started = len(feeder.expected_ids())
        deadline = time.monotonic() + self.options.drain_seconds
        self.progress.message(f"faults over; draining {started} workflows and their children "
                              f"(at most {self.options.drain_seconds:g}s)")  # fmt: skip
        while True:
            try:
                counts = ChaosProgress(sysdb).all_status_counts()
            except Exception:  # the server is still coming back: look again
                counts = {"PENDING": -1}
            left = sum(n for s, n in counts.items() if s not in TERMINAL)
            if left == 0:
                return
            if time.monotonic() > deadline:
                self.notes.append(f"drain: workflows still unfinished after {self.options.drain_seconds:g}s: "
                                  + ", ".join(f"{s} {n}" for s, n in sorted(counts.items()) if s not in TERMINAL))  # fmt: skip
                return
            if self._interrupted.wait(0.5):
                self._check_interrupted()

    def _stop_nodes(self, nodes: list[Node]) -> None:
        """Stop every node (SIGTERM, then SIGKILL past the grace) before the history is read."""
        for node in nodes:
            node.stop(STOP_GRACE_SEC)

    def _check_interrupted(self) -> None:
        if self._interrupted.is_set():
            raise KeyboardInterrupt

    def _keep(self, passed: bool) -> bool:
        """Keep the database and the logs when asked, and when the run failed (the evidence); a
        run that passed or was interrupted leaves nothing behind."""
        return self.options.keep or not (passed or self._interrupted.is_set())

    def _remove_workdir(self, keep: bool) -> None:
        """A passing run leaves nothing behind, unless kept or the directory was the user's."""
        if keep or self.options.workdir is not None:
            self.kept.append(f"node logs in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _close_database(self, database: ChaosDatabase, keep: bool) -> None:
        where = database.close(keep=keep)
        if keep and where:
            self.kept.append(where)


class _Client:
    """The workload's DBOSClient, made on first use and again after it broke."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: DBOSClient | None = None

    def get(self) -> DBOSClient:
        if self._client is None:
            self._client = DBOSClient(system_database_url=self.url)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.destroy()
            self._client = None
