"""The pooled connections' kept cursor (sysdb/connection.py) and the bare checkout
(sysdb/checkout.py), issue #14's hot-path cuts: a failed statement leaves the connection
usable, each statement's rows are its own, and a connection broken under its user is replaced."""

from __future__ import annotations

import psycopg
import pytest


def test_a_failed_statement_leaves_the_kept_cursor_usable(sysdb_one):
    with sysdb_one.pooled() as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.run("SELECT * FROM no_such_table")
        first = conn.run("SELECT generate_series(1, 3) AS n").fetchall()
        second = conn.run("SELECT 'x' AS s").fetchall()
    assert first == [{"n": 1}, {"n": 2}, {"n": 3}] and second == [{"s": "x"}]
    with sysdb_one.pooled() as conn:  # the same (only) connection, its next user
        assert conn.run("SELECT 2 AS two").fetchall() == [{"two": 2}]


def test_a_connection_broken_under_its_user_is_replaced(sysdb_one, db):
    with sysdb_one.pooled() as conn:
        pid = conn.info.backend_pid
        db.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            conn.run("SELECT 1")
    # The statement helpers retry on a fresh connection; the broken one never comes back.
    rows = sysdb_one._execute("database_clock")
    with sysdb_one.pooled() as conn:
        assert conn.info.backend_pid != pid and not conn.broken
    assert rows and "now_ms" in rows[0]
