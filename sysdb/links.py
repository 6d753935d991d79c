"""How long a connection may hang on a dead link, or a session hold locks: one place for both.

A client paused or cut off inside a transaction keeps its locks until the server notices, and a
client whose link went silent blocks in ``recv()`` until TCP gives up (about two hours with the
kernel's default keepalive). Every pgfleet connection (pooled, LISTEN, dedicated) therefore gets

- TCP keepalives and a TCP user timeout (:func:`dead_link_settings`), so a statement over a
  silent link fails within about the dead-link timeout instead of hanging;
- a server-side ``statement_timeout`` and ``idle_in_transaction_session_timeout``
  (:class:`SessionTimeouts`), so a statement stuck behind a lock ends, and a session that sits
  idle inside a transaction (a paused or partitioned client) is ended by the server, releasing
  its locks. pgfleet's own transactions never sit idle: they are a few statements sent back to
  back. ``@DBOS.transaction`` bodies run user code between statements, so they get limits of
  their own (:meth:`SessionTimeouts.for_user_transactions`), none for statements by default.

The timeouts are sent as one ``set_config`` statement when a connection is opened, not as a
startup ``options`` parameter, which PgBouncer refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["dead_link_settings", "SessionTimeouts"]


def dead_link_settings(timeout_sec: float) -> dict[str, Any]:
    """libpq connection parameters that make a silent link fail within about ``timeout_sec``.

    Keepalive probes start after one idle second, so an idle connection (a LISTEN, a pooled one
    between statements) notices too; ``tcp_user_timeout`` bounds both unacknowledged data and,
    with keepalives on, the probes (Linux). A slow but live server still acknowledges at the TCP
    level, so a long statement is never cut by these.
    """
    return {
        "keepalives": 1,
        "keepalives_idle": 1,
        "keepalives_interval": 1,
        "keepalives_count": 2,
        "tcp_user_timeout": max(500, int(timeout_sec * 1000)),
    }


def _ms(seconds: float | None) -> str:
    # 0 disables a Postgres timeout.
    return str(int(seconds * 1000)) if seconds else "0"


@dataclass(frozen=True)
class SessionTimeouts:
    """Server-side limits of a session, in seconds (``None`` or 0: no limit)."""

    statement_timeout_sec: float | None = None
    idle_in_transaction_timeout_sec: float | None = None
    # @DBOS.transaction bodies: their statements, and their idle time between statements.
    user_statement_timeout_sec: float | None = None
    user_idle_in_transaction_timeout_sec: float | None = None

    def params(self) -> dict[str, str | bool]:
        """Parameters of ``sysdb/sql/set_session_timeouts.sql`` for pgfleet's own statements."""
        return {
            "statement_timeout": _ms(self.statement_timeout_sec),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction_timeout_sec),
            "is_local": False,
        }

    def for_user_transactions(self) -> dict[str, str | bool] | None:
        """Parameters that set a user transaction's own limits (for that transaction only), or
        ``None`` when they equal the session's and nothing needs sending."""
        if (self.user_statement_timeout_sec or 0) == (self.statement_timeout_sec or 0) and (
            self.user_idle_in_transaction_timeout_sec or 0
        ) == (self.idle_in_transaction_timeout_sec or 0):
            return None
        return {
            "statement_timeout": _ms(self.user_statement_timeout_sec),
            "idle_in_transaction_session_timeout": _ms(self.user_idle_in_transaction_timeout_sec),
            "is_local": True,
        }

    def enabled(self) -> bool:
        return bool(self.statement_timeout_sec or self.idle_in_transaction_timeout_sec)
