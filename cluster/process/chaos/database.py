"""Where a chaos run's system database lives, and the faults that hit it.

With a configured server (``--database-url`` / the config), the run creates a scratch database
``pgfleet_chaos_<seed>_<pid>`` there and migrates it: the configured database itself is never
touched, and the scratch one is dropped at the end. Without one, the run starts an embedded
server of its own in its work directory (durability on: a crash restart must not lose commits,
or a legitimate re-execution would look like a violation), which it may restart; with
``--netns`` that server runs in the database's namespace and each node reaches it over its own
veth link.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import sysdb
from sysdb import SystemDatabase, describe_url
from sysdb.chaos_admin import ChaosAdmin
from sysdb.embedded import EmbeddedPostgres
from sysdb.fleet import FleetMember

from .netns import Netns

__all__ = ["ChaosDatabase", "ChaosDatabaseError", "RUNNER_APPLICATION_NAME"]

# The runner's own sessions: not "pgfleet...", so terminate-backends never ends them.
RUNNER_APPLICATION_NAME = "chaos-runner"
_SERVER_DIR = "postgres"
# Run in the database's namespace: start the server there, so that it listens there.
_START_SERVER = "import sys; from sysdb.embedded import EmbeddedPostgres; EmbeddedPostgres(sys.argv[1]).ensure_running()"


class ChaosDatabaseError(RuntimeError):
    """The run's system database cannot be set up (the message says why and what to do)."""


class ChaosDatabase:
    """The system database of one chaos run (see the module docstring). Build it with
    :meth:`prepare`; :meth:`close` removes what it made."""

    def __init__(self, *, admin_url: str, dbname: str, server: EmbeddedPostgres | None, netns: Netns | None,
                 port: int | None) -> None:  # fmt: skip
        self.dbname = dbname
        self.server = server
        self.netns = netns
        self._admin_url = admin_url
        self._port = port
        self.url = make_conninfo(admin_url, dbname=dbname)  # the runner's: a socket with netns
        self._db = SystemDatabase(self.url, pool_size=2, application_name=RUNNER_APPLICATION_NAME, retry_timeout_sec=60)
        self._admin = ChaosAdmin(self._db)
        self._closed = False
        self._created = False  # close() drops only a database this run created

    # -- setting up --------------------------------------------------------------------------

    @classmethod
    def prepare(cls, *, configured_url: str | None, netns: Netns | None, workdir: Path, seed: int) -> ChaosDatabase:
        """A migrated scratch database on the configured server, or on an embedded server of
        the run's own under ``workdir`` (inside ``netns``'s database namespace when given: the
        namespaces must already be created). Raises :class:`ChaosDatabaseError`."""
        dbname = f"pgfleet_chaos_{seed}_{os.getpid()}".replace("-", "m")
        if configured_url is not None:
            if netns is not None:
                raise ChaosDatabaseError(
                    "--netns needs the embedded server (it runs in the database's namespace); "
                    "leave the system database URL unset to use it")  # fmt: skip
            db = cls(admin_url=configured_url, dbname=dbname, server=None, netns=None, port=None)
        else:
            db = cls._embedded(Path(workdir) / _SERVER_DIR, dbname, netns)
        try:
            db._create_and_migrate()
        except BaseException:
            with contextlib.suppress(Exception):  # best effort: the first error is the news
                db.close()
            raise
        return db

    @classmethod
    def _embedded(cls, base: Path, dbname: str, netns: Netns | None) -> ChaosDatabase:
        server = EmbeddedPostgres(base, durability=True)
        if netns is None:
            server.ensure_running()
            return cls(admin_url=server.url("postgres"), dbname=dbname, server=server, netns=None, port=server.status().port)
        if netns.nodes < 1:
            raise ChaosDatabaseError("the network namespaces must be created (Netns.create) before the database")
        db: ChaosDatabase | None = None
        try:
            _start_in(netns, base)
            port = server.status().port
            assert port is not None
            # The runner stays in the root namespace: it reaches the server by its unix socket.
            admin_url = make_conninfo("", host=str(server.run_dir), port=port, user="postgres", dbname="postgres")
            db = cls(admin_url=admin_url, dbname=dbname, server=server, netns=netns, port=port)
            db._listen_on_links()
            return db
        except BaseException:
            with contextlib.suppress(Exception):  # best effort: the first error is the news
                if db is None:
                    server.stop(mode="immediate")
                    shutil.rmtree(base, ignore_errors=True)
                else:
                    db.close()
            raise

    def _listen_on_links(self) -> None:
        """Listen on the database end of every veth link too, and trust the links (the
        server's own pgfleet.conf says loopback only; ALTER SYSTEM outranks it)."""
        assert self.server is not None and self.netns is not None
        ChaosAdmin(self._maintenance()).listen_on(["127.0.0.1", *self.netns.db_addresses()])
        with open(self.server.data_dir / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.netns.db_ip(0).rsplit('.', 2)[0]}.0.0/16 trust  # pgfleet chaos --netns\n")
        self.server.stop(mode="fast")
        _start_in(self.netns, self.server.base_dir)

    def _maintenance(self) -> SystemDatabase:
        """A handle on the server's database the run connects to for CREATE/DROP DATABASE
        (the configured one, or the embedded server's ``postgres``): never migrated, no pool."""
        return SystemDatabase(self._admin_url, pool_size=1, application_name=RUNNER_APPLICATION_NAME)

    def _create_and_migrate(self) -> None:
        admin = ChaosAdmin(self._maintenance())
        try:
            admin.create_database(self.dbname)
            self._created = True
        except psycopg.errors.DuplicateDatabase:
            # Never dropped here: it may be another run's (same seed, same pid, another host).
            raise ChaosDatabaseError(
                f"the scratch database {self.dbname} already exists on {describe_url(self._admin_url)} "
                f"(left by an earlier run?); drop it (DROP DATABASE {self.dbname}) or pick another --seed"
            ) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            user = conninfo_to_dict(self._admin_url).get("user") or "(the connecting role)"
            raise ChaosDatabaseError(
                f"cannot create the scratch database {self.dbname} on {describe_url(self._admin_url)}: "
                f"role {user} may not create databases ({exc.diag.message_primary}). Grant it "
                f"(ALTER ROLE {user} CREATEDB), or run without a configured URL to use an embedded server"
            ) from None
        except psycopg.OperationalError as exc:
            raise ChaosDatabaseError(f"cannot reach the server at {describe_url(self._admin_url)}: {exc}") from None
        self._db.open()  # migrates the new database

    # -- what the run uses -------------------------------------------------------------------

    def node_url(self, index: int) -> str:
        """The URL node ``index`` connects to: over its own veth link with netns."""
        if self.netns is None:
            return self.url
        return f"postgresql://postgres@{self.netns.db_ip(index)}:{self._port}/{self.dbname}"

    def describe(self) -> str:
        """Where the run's system database is, for the operator (no password)."""
        if self.server is None:
            return f"scratch database {self.dbname} on {describe_url(self._admin_url)}"
        where = f" in network namespace {self.netns.db_ns}" if self.netns is not None else ""
        return f"database {self.dbname} on an embedded server of the run's own{where} (data in {self.server.data_dir})"

    @property
    def sysdb(self) -> SystemDatabase:
        """The runner's own (open) handle on the scratch database."""
        return self._db

    def members(self) -> list[FleetMember]:
        """Every member row of the fleet, with how many workflows each runs now."""
        return self._db.fleet.members()

    def clock_offset(self) -> float:
        """Seconds the database clock is ahead of this host's ``time.time()``."""
        self._db.sync_clock()
        offset_ms = self._db.clock.offset_ms()
        return 0.0 if offset_ms is None else offset_ms / 1000.0

    # -- faults ------------------------------------------------------------------------------

    @property
    def can_restart(self) -> bool:
        """Only a server of the run's own may be restarted."""
        return self.server is not None

    def restart(self, mode: str, downtime_sec: float) -> dict[str, Any]:
        """Stop the embedded server (``fast``: clean; ``immediate``: a crash and WAL recovery),
        stay down ``downtime_sec``, start it again on the same port; what it did."""
        if self.server is None:
            raise ChaosDatabaseError("restart-db needs the embedded server; this run uses a configured one")
        old = self.server.status().pid
        started = time.monotonic()
        self.server.stop(mode=mode)
        time.sleep(downtime_sec)
        self.ensure_server_running()
        return {"mode": mode, "old_postmaster": old, "new_postmaster": self.server.status().pid,
                "down_sec": round(time.monotonic() - started, 2)}  # fmt: skip

    def ensure_server_running(self) -> bool:
        """Start the embedded server again if it is down (a restart that was interrupted);
        True if it had to be started. A configured server is not ours: False."""
        if self.server is None or self.server.status().running:
            return False
        if self.netns is not None:
            _start_in(self.netns, self.server.base_dir)
        else:
            self.server.ensure_running()
        return True

    def terminate_backends(self, rng: random.Random, fraction: float = 0.5, prefix: str = "pgfleet") -> dict[str, Any]:
        """``pg_terminate_backend`` a random ``fraction`` (at least one) of the sessions pgfleet
        opened on the scratch database (pools, heartbeats, leader, listeners: application_name
        ``pgfleet*``); what it ended, with the client pids and executors that the names
        (``pgfleet <pid> <executor>``) tell."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        backends = self._admin.backends(prefix)
        chosen = rng.sample(backends, max(1, int(len(backends) * fraction))) if backends else []
        ended = set(self._admin.terminate([b.pid for b in chosen]))
        names: dict[str, int] = {}
        for b in chosen:
            names[b.application_name] = names.get(b.application_name, 0) + 1
        return {"terminated": len(ended), "of": len(backends), "backend_pids": sorted(ended), "by_application": names}

    # -- the end -----------------------------------------------------------------------------

    def close(self, keep: bool = False) -> str:
        """Drop the scratch database, or stop and remove the embedded server; with ``keep``
        leave the database (an embedded server is stopped, its data kept). Returns what it did
        (where the data is, when kept). Idempotent."""
        if self._closed:
            return "already closed"
        self._closed = True
        self._db.close()
        if keep:
            if self.server is not None:
                # Stopped, its data kept: a server left running (in a namespace that goes with
                # the run, or after every failed run in a test suite) would be a leak.
                self.server.stop(mode="fast")
                return f"kept the embedded server's data in {self.server.data_dir} (stopped; start it with: " \
                       f"pgfleet db start --data-dir {self.server.base_dir})"  # fmt: skip
            return f"kept the scratch database {self.dbname} on {describe_url(self._admin_url)}"
        if self.server is not None:
            self.server.stop(mode="immediate")
            run_dir = self.server.run_dir
            shutil.rmtree(self.server.base_dir, ignore_errors=True)
            if not run_dir.is_relative_to(self.server.base_dir):
                shutil.rmtree(run_dir, ignore_errors=True)  # a short socket dir in /tmp
            return f"stopped and removed the embedded server in {self.server.base_dir}"
        if not self._created:
            return f"left {self.dbname} alone: this run did not create it"
        ChaosAdmin(self._maintenance()).drop_database(self.dbname)
        return f"dropped the scratch database {self.dbname} on {describe_url(self._admin_url)}"


def _start_in(netns: Netns, base: Path) -> None:
    """Start (or restart) the embedded server under ``base`` inside the database's namespace."""
    package_root = str(Path(sysdb.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    result = subprocess.run([*netns.db_prefix(), sys.executable, "-c", _START_SERVER, str(base)], capture_output=True,
                            text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)  # fmt: skip
    if result.returncode != 0:
        raise ChaosDatabaseError(f"the embedded server did not start in namespace {netns.db_ns}: {result.stderr[-3000:]}")
