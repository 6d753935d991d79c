"""The lost-reply proxy itself (tests/faults/proxy.py): a matched statement commits on the
server while its client sees the connection fail; other traffic passes untouched."""

from __future__ import annotations

import psycopg
import pytest

from tests.faults.proxy import PgProxy


@pytest.fixture
def proxy(sys_url):
    with PgProxy.start(sys_url) as proxy:
        yield proxy


def _count(db, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_autocommit_statement_commits_and_its_reply_is_lost(proxy, db):
    db.execute("CREATE TABLE t (x int)")
    with psycopg.connect(proxy.url, autocommit=True) as conn:
        conn.execute("INSERT INTO t VALUES (0)")  # no rule yet: passes
        rule = proxy.drop_reply("INSERT INTO t")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("INSERT INTO t VALUES (%s)", (1,))
    assert rule.fired.is_set() and "INSERT INTO t" in rule.matched_sql
    assert sorted(r[0] for r in db.execute("SELECT x FROM t")) == [0, 1]
    # The rule fired once: the next statement goes through.
    with psycopg.connect(proxy.url, autocommit=True) as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    assert _count(db, "t") == 3


def test_transaction_commits_and_the_commit_reply_is_lost(proxy, db):
    db.execute("CREATE TABLE t (x int)")
    rule = proxy.drop_reply("INSERT INTO t")
    with psycopg.connect(proxy.url, autocommit=True) as conn:
        with pytest.raises(psycopg.OperationalError):
            with conn.transaction():
                conn.execute("INSERT INTO t VALUES (1)")
                conn.execute("SELECT 1")  # replies inside the transaction still arrive
    assert rule.fired.is_set()
    assert _count(db, "t") == 1


def test_prepared_statements_are_matched_by_their_parse(proxy, db):
    db.execute("CREATE TABLE t (x int)")
    with psycopg.connect(proxy.url, autocommit=True, prepare_threshold=0) as conn:
        conn.execute("INSERT INTO t VALUES (%s)", (1,))  # prepared now; later runs send Bind only
        rule = proxy.drop_reply("INSERT INTO t")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("INSERT INTO t VALUES (%s)", (2,))
    assert rule.fired.is_set() and _count(db, "t") == 2


def test_cut_all_drops_every_link(proxy):
    conns = [psycopg.connect(proxy.url, autocommit=True) for _ in range(2)]
    assert proxy.link_count() == 2
    assert proxy.cut_all() == 2
    for conn in conns:
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()
