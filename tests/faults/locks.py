"""Lock holders and lock-wait detection: put a test exactly where a statement blocks.

A :class:`LockHolder` is a second session (its own psycopg connection, never pgfleet's pool)
that opens a transaction, takes a lock and then sits idle in that transaction until released,
exactly like a worker paused (SIGSTOP) or cut off inside a transaction::

    with LockHolder(url) as holder:
        holder.hold_rows("SELECT 1 FROM dbos.notifications WHERE destination_uuid = %s", (wf,))
        ...                      # every writer of those rows now waits (or skips them)
        holder.release()         # commit (or holder.rollback()) and the waiters go on

    with LockHolder(url) as holder:
        holder.hold_advisory_xact(key1, key2)     # pg_advisory_xact_lock(key1, key2)
        holder.hold_advisory_xact_hashed("pgfleet.queue", "orders/")  # hashtext() of each

:func:`wait_for_lock_wait` polls ``pg_stat_activity`` / ``pg_locks`` until a backend (chosen by
``application_name`` or pid) is waiting on a lock, so a test acts at the instant a statement
blocks instead of sleeping; :func:`backend_pids` and :func:`holders_of_advisory_lock` find the
backends to act on (for example to SIGSTOP the process that holds a lock, or to terminate it).

The holder's connection is a plain one: settings of the server (``idle_in_transaction_session_
timeout`` set by the code under test on *its* sessions) do not apply to it unless the test sets
them with :meth:`LockHolder.set`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg

__all__ = [
    "LockHolder",
    "wait_for_lock_wait",
    "lock_waiters",
    "backend_pids",
    "holders_of_advisory_lock",
    "advisory_key",
]


class LockHolder:
    """A session that takes locks inside an open transaction and holds them while idle.

    Every ``hold_*`` call opens the transaction if none is open yet, so several locks can be
    held at once. ``release()`` commits, ``rollback()`` rolls back, ``close()`` ends the session
    (any lock still held goes with it). ``pid`` is the backend's pid (``pg_backend_pid()``),
    for :func:`wait_for_lock_wait` or ``pg_terminate_backend``.
    """

    def __init__(self, url: str, application_name: str = "pgfleet-test-lock-holder") -> None:
        self.conn = psycopg.connect(url, autocommit=True, application_name=application_name)
        self.pid: int = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self._in_transaction = False

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _begin(self) -> None:
        if not self._in_transaction:
            self.conn.execute("BEGIN")
            self._in_transaction = True

    def set(self, setting: str, value: str) -> None:
        """``SET`` a setting on the holder's session (e.g. its own lock_timeout)."""
        self.conn.execute("SELECT set_config(%s, %s, false)", (setting, value))

    def hold_rows(self, select_sql: str, params: Sequence[Any] | dict[str, Any] | None = None, *, mode: str = "UPDATE") -> int:
        """Lock the rows a SELECT returns (``FOR UPDATE`` by default; ``mode`` may be ``SHARE``,
        ``NO KEY UPDATE`` or ``KEY SHARE``) and keep them locked. Returns how many were locked."""
        self._begin()
        return len(self.conn.execute(f"{select_sql} FOR {mode}", params).fetchall())

    def hold_advisory_xact(self, key1: int, key2: int | None = None) -> None:
        """Take a transaction-scoped advisory lock (one bigint key, or two int keys)."""
        self._begin()
        if key2 is None:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (key1,))
        else:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (key1, key2))

    def hold_advisory_xact_hashed(self, space: str, key: str) -> None:
        """``pg_advisory_xact_lock(hashtext(space), hashtext(key))``: the form pgfleet's
        queue-claim lock uses (space ``pgfleet.queue``, key ``<queue>/<partition or ''>``)."""
        self._begin()
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (space, key))

    def hold_advisory_session(self, key1: int) -> None:
        """Take a session-scoped advisory lock: held outside any transaction, until close()."""
        self.conn.execute("SELECT pg_advisory_lock(%s)", (key1,))

    def open_idle_transaction(self, statement: str = "SELECT txid_current()") -> None:
        """Open a transaction (that has an xid, so it holds back vacuum and shows in locks)
        and leave it idle."""
        self._begin()
        self.conn.execute(statement)

    def release(self) -> None:
        """Commit the open transaction: its locks go, its writes (if any) become visible."""
        if self._in_transaction:
            self.conn.execute("COMMIT")
            self._in_transaction = False

    def rollback(self) -> None:
        if self._in_transaction:
            self.conn.execute("ROLLBACK")
            self._in_transaction = False

    def is_alive(self) -> bool:
        """False once the server ended this session (for example an idle-in-transaction timeout)."""
        try:
            self.conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # a session the server ended may fail to close cleanly
            pass


def lock_waiters(
    url: str, *, application_name: str | None = None, pid: int | None = None, application_name_like: str | None = None
) -> list[dict[str, Any]]:
    """Backends that wait on a lock now (``pg_stat_activity.wait_event_type = 'Lock'`` and an
    ungranted ``pg_locks`` row), optionally filtered. Each row has ``pid``,
    ``application_name``, ``locktype``, ``mode``, ``query`` and ``blocked_by`` (pids)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """
            SELECT a.pid, a.application_name, l.locktype, l.mode, a.query, pg_blocking_pids(a.pid) AS blocked_by
            FROM pg_stat_activity a
            JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
            WHERE a.wait_event_type = 'Lock'
              AND (%(name)s::text IS NULL OR a.application_name = %(name)s)
              AND (%(like)s::text IS NULL OR a.application_name LIKE %(like)s)
              AND (%(pid)s::int IS NULL OR a.pid = %(pid)s)
            """,
            {"name": application_name, "like": application_name_like, "pid": pid},
        ).fetchall()
    cols = ("pid", "application_name", "locktype", "mode", "query", "blocked_by")
    return [dict(zip(cols, row)) for row in rows]


def wait_for_lock_wait(
    url: str,
    *,
    application_name: str | None = None,
    pid: int | None = None,
    application_name_like: str | None = None,
    timeout: float = 30.0,
    interval: float = 0.01,
) -> dict[str, Any]:
    """Block until a backend matching the filters waits on a lock, and return its row (see
    :func:`lock_waiters`). Raises ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        rows = lock_waiters(url, application_name=application_name, pid=pid, application_name_like=application_name_like)
        if rows:
            return rows[0]
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"no backend (application_name={application_name!r}, like={application_name_like!r}, pid={pid}) "
                f"waited on a lock within {timeout}s"
            )
        time.sleep(interval)


def backend_pids(url: str, application_name_like: str) -> list[int]:
    """Pids of the backends whose application_name matches a LIKE pattern."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s AND pid <> pg_backend_pid()",
            (application_name_like,),
        ).fetchall()]


def advisory_key(space: str, key: str, url: str) -> tuple[int, int]:
    """The two int keys ``(hashtext(space), hashtext(key))`` as the server computes them."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT hashtext(%s), hashtext(%s)", (space, key)).fetchone()
    return int(row[0]), int(row[1])


def holders_of_advisory_lock(url: str, space: str, key: str) -> list[dict[str, Any]]:
    """Backends holding the two-key advisory lock ``(hashtext(space), hashtext(key))`` now:
    ``pid``, ``application_name`` and ``state`` (e.g. ``idle in transaction``)."""
    k1, k2 = advisory_key(space, key, url)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """
            SELECT a.pid, a.application_name, a.state
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
              AND l.classid = (%(k1)s::int)::oid AND l.objid = (%(k2)s::int)::oid
            """,
            {"k1": k1, "k2": k2},
        ).fetchall()
    return [dict(zip(("pid", "application_name", "state"), row)) for row in rows]
