"""A dedicated session: one connection of its own, outside the pool.

Heartbeats and the leader lock must not wait behind busy workflow threads for a pooled
connection (River saw failed re-elections from pool starvation), and a session advisory lock
lives exactly as long as its connection. A failed statement closes the connection; the next
call opens a new one. The caller's loop decides when to try again.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from .database import DictConnection, Row, SystemDatabase
from .links import dead_link_settings
from .session_names import with_purpose

__all__ = ["DedicatedSession"]


class DedicatedSession:
    """Runs named statements on a connection that belongs to one background loop."""

    def __init__(
        self,
        db: SystemDatabase,
        *,
        purpose: str,
        connect_timeout_sec: int = 5,
        dead_link_timeout_sec: float | None = None,
        **settings: Any,
    ) -> None:
        """``dead_link_timeout_sec`` sets TCP keepalives and a TCP user timeout, so a statement
        over a link that went silent fails within about that time instead of hanging in TCP
        retransmission (for heartbeats and the leader lock, whose silence has to be noticed)."""
        self._db = db
        # Named after the pool of its database plus its purpose: an executor's heartbeat session is
        # "pgfleet <pid> <executor_id> heartbeat" (see sysdb.session_names).
        name = with_purpose(db.application_name, purpose)
        self._settings = {"application_name": name, "connect_timeout": connect_timeout_sec, **settings}
        if dead_link_timeout_sec is not None:  # tighter than the pool's, for these two loops
            self._settings.update(dead_link_settings(dead_link_timeout_sec))
        self._conn: DictConnection | None = None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def _execute(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        """Run a named statement; on any connection error the session is closed and the error
        raised (whatever it held, such as an advisory lock, is gone with it)."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._db.connect(**self._settings)
            try:
                return self._conn.run_named(name, params).rows
            except psycopg.OperationalError:
                self._close_locked()
                raise

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection may fail; it is gone either way
                pass
        self._conn = None
