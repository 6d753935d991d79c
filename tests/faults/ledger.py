"""The side-effect ledger of failover tests: what step bodies really ran, not what was recorded.

A test creates ``public.side_effects`` in its database (:func:`create_ledger`, or conftest's
``ledger`` fixture); a worker app's step body calls :func:`record_step_start` first thing. Each
row says which workflow and step, on which executor and pid, under which ownership epoch, at
what database time, on a connection of its own (autocommit), so it survives the workflow's
fate: a body that ran and whose checkpoint was fenced still shows.
"""

from __future__ import annotations

import os
import threading

import psycopg

__all__ = ["create_ledger", "forget_connection", "record_step_start"]

_local = threading.local()


def create_ledger(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE public.side_effects (id bigserial, workflow_id text, function_id int, executor_id text, "
        "owner_epoch bigint, pid int, at timestamptz default clock_timestamp())"
    )


def record_step_start(url: str, executor_id: str) -> None:
    """Called at the start of a step body running in a workflow of this process."""
    from runtime.context import current_workflow

    ctx = current_workflow()
    assert ctx is not None, "record_step_start is for step bodies"
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(url, autocommit=True)
    conn.execute(
        "INSERT INTO public.side_effects (workflow_id, function_id, executor_id, owner_epoch, pid) VALUES (%s, %s, %s, %s, %s)",
        (ctx.workflow_id, ctx.step_id, executor_id, ctx.owner_epoch, os.getpid()),
    )


def forget_connection() -> None:
    """Drop this thread's ledger connection (the server closed it): the next row opens another."""
    conn = getattr(_local, "conn", None)
    _local.conn = None
    if conn is not None:
        conn.close()
