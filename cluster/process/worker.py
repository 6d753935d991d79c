"""A worker process of ``pgfleet supervise``: import the app, launch DBOS, serve until told.

The supervisor spawns this (never forks: a forked psycopg connection would be shared by two
processes) with a :class:`WorkerSpec`. The worker dies with its supervisor: Linux's
``PR_SET_PDEATHSIG`` kills it if the supervisor dies, and a thread checks the parent pid once a
second as well. SIGTERM or SIGINT drains it: it stops taking work, lets running workflows finish
for the grace period, hands the rest over to live members, and exits 0.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.current import current_process
from runtime.dbos import DBOS
from runtime.metrics import serve_metrics

__all__ = ["WorkerSpec", "run_worker", "load_app"]

# How often a worker checks that its supervisor is still its parent.
PARENT_CHECK_INTERVAL_SEC = 1.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent(supervisor_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except OSError:
            pass  # the parent-pid check below still catches it
    if os.getppid() != supervisor_pid:  # the supervisor died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            threading.Event().wait(PARENT_CHECK_INTERVAL_SEC)
            if os.getppid() != supervisor_pid:
                os._exit(1)

    threading.Thread(target=watch, name="pgfleet-parent-check", daemon=True).start()


def load_app(app: str) -> tuple[str, dict[str, Any]]:
    """Import the app (``pkg.module``, ``path/to/file.py`` or ``module:attribute``) and return
    its name and base config. The attribute, if given, is a DBOSConfig dict or a function
    returning one. Importing registers the app's workflows, steps and queues."""
    module_name, _, attribute = app.partition(":")
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name).resolve()
        if not path.is_file():
            raise SystemExit(f"pgfleet worker: app file {module_name!r} does not exist")
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        name = path.stem
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
        name = module_name.rsplit(".", 1)[-1]
    config: dict[str, Any] = {}
    if attribute:
        value = getattr(module, attribute, None)
        if value is None:
            raise SystemExit(f"pgfleet worker: {module_name!r} has no attribute {attribute!r}")
        value = value() if callable(value) else value
        if not isinstance(value, dict):
            raise SystemExit(f"pgfleet worker: {app!r} must be a DBOSConfig dict (or return one), got {type(value).__name__}")
        config = dict(value)
    return name, config


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs from its supervisor (picklable, sent at spawn)."""

    app: str
    executor_id: str
    supervisor_id: str
    supervisor_pid: int
    queues: tuple[str, ...] | None
    worker_config: dict[str, Any] = field(default_factory=dict)
    grace_sec: float = 30.0
    metrics_port: int | None = None
    ready: Any = None  # the child's end of a pipe: ("ready", pid) is sent once launched


def run_worker(spec: WorkerSpec) -> None:
    """The worker process's main function."""
    _die_with_parent(spec.supervisor_pid)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    name, base = load_app(spec.app)
    imported = current_process()
    if imported is not None and imported.launched:
        raise SystemExit(
            f"pgfleet worker: importing {spec.app!r} launched DBOS itself; guard DBOS.launch() with "
            "if __name__ == '__main__' so the supervisor can launch each worker with its own executor id"
        )
    config = {**base, **spec.worker_config}
    config.setdefault("name", name)
    config.update(executor_id=spec.executor_id, supervisor_id=spec.supervisor_id)
    if spec.queues is not None:
        config["queues"] = list(spec.queues)
    DBOS(config=config)  # type: ignore[arg-type]  # a plain dict merged from the app's DBOSConfig; DBOS() validates it
    process = current_process()
    if spec.metrics_port is not None and process is not None:
        serve_metrics(spec.metrics_port, process)  # read at each scrape: empty until launched
    DBOS.launch()
    if spec.ready is not None:
        spec.ready.send(("ready", os.getpid()))
    stop.wait()
    DBOS.destroy(workflow_completion_timeout_sec=spec.grace_sec)
    sys.exit(0)
