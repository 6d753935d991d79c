"""Serving the console with uvicorn: in the foreground (``pgfleet console``) or on a thread of
another process (``pgfleet supervise --console-port N``)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from sysdb.logs import get_logger

from .security import check_bind

__all__ = ["ConsoleServer", "serve", "start_in_thread"]

log = get_logger("pgfleet.console")


def _config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    # access_log off: uvicorn's access lines would duplicate the action log, which says who asked.
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")


def serve(app: Starlette, *, host: str, port: int, token: str | None) -> None:
    """Serve ``app`` until SIGTERM or SIGINT (Ctrl-C), then stop gracefully and return (the
    command exits 0). Refuses a non-loopback ``host`` without a ``token`` (:class:`ConsoleError`)."""
    # uvicorn re-raises a signal it caught once it has shut down (the process dies of it), so
    # the server runs on a thread and this thread owns the signals.
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda _signum, _frame: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = start_in_thread(app, host=host, port=port, token=token)
        while server.thread.is_alive() and not stop.wait(0.5):
            pass
        server.stop()
        log.info("console stopped")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass
class ConsoleServer:
    """A console served on a daemon thread; :meth:`stop` ends it."""

    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout_sec: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_sec)


def start_in_thread(app: Starlette, *, host: str, port: int, token: str | None, ready_timeout_sec: float = 10.0) -> ConsoleServer:
    """Serve ``app`` on a daemon thread of this process (uvicorn installs no signal handler off
    the main thread, so the host process keeps its own); returns once it listens. Refuses a
    non-loopback ``host`` without a ``token``; raises OSError when the port cannot be bound."""
    check_bind(host, token)
    # Bound here, not by uvicorn: a taken port is an OSError in the caller, said in one line,
    # instead of uvicorn exiting its thread.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise OSError(f"the console could not listen on {host}:{port}: {exc.strerror or exc}") from None
    server = uvicorn.Server(_config(app, host, port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="pgfleet-console", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout_sec
    # A bounded wait for uvicorn's own "started" flag.
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        sock.close()
        raise OSError(f"the console could not start on {host}:{port} (see the log above)")
    log.info("console serving", url=f"http://{host}:{port}/", token=token is not None)
    return ConsoleServer(server, thread)
