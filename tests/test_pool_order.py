"""The system database's pool hands out its most recently returned connection first
(sysdb/recent_first_pool.py, issue #14): a caller's consecutive statements stay on a warm backend,
and the connections nobody needs stay idle for the pool to close. psycopg_pool itself has no
such option: these fail if a release changes the private method the order rests on."""

from __future__ import annotations

from sysdb import SystemDatabase
from sysdb.recent_first_pool import RecentFirstPool


def _open_pool(url: str, size: int) -> RecentFirstPool:
    pool = RecentFirstPool(url, min_size=size, max_size=size, kwargs={"autocommit": True}, open=False)
    pool.open(wait=True, timeout=30)
    return pool


def test_the_last_connection_returned_is_the_next_one_handed_out(sys_url: str):
    pool = _open_pool(sys_url, 3)
    try:
        first, second, third = (pool.getconn() for _ in range(3))
        for conn in (first, second, third):
            pool.putconn(conn)
        assert pool.getconn() is third
        assert pool.getconn() is second  # then the one before it, not the oldest
        assert pool.getconn() is first
    finally:
        pool.close()


def test_one_caller_stays_on_one_backend_while_others_idle(sys_url: str):
    pool = _open_pool(sys_url, 4)
    try:
        backends = set()
        for _ in range(20):
            with pool.connection() as conn:
                backends.add(conn.info.backend_pid)
        # First in, first out would have rotated over all four.
        assert len(backends) == 1
        assert pool.get_stats()["pool_available"] == 4
    finally:
        pool.close()


def test_the_system_database_uses_it(sys_url: str):
    db = SystemDatabase(sys_url, pool_size=2, retry_timeout_sec=5)
    try:
        assert isinstance(db._pool, RecentFirstPool)
        db.open(run_migrations=False)
        seen = set()
        for _ in range(6):
            with db.pooled() as conn:
                seen.add(conn.info.backend_pid)
        assert len(seen) == 1
    finally:
        db.close()
