"""The chaos run's own instrumentation of its database, and the loader that turns it into the plain
rows tests/chaos_checks.py checks.

``INSTRUMENT`` creates, in the test's database only (never part of pgfleet's schema):

- ``public.chaos_ledger``: the side-effect ledger tests/apps/chaos_app.py writes from every step
  body (on its own autocommit connection) before it does its effect;
- ``public.chaos_ownership_log``: every commit that changes a workflow row's ``(status,
  executor_id, owner_epoch)``, from deferred constraint triggers, so ``at`` is read as the
  transaction commits (after every statement of it, just before it becomes visible);
- ``public.chaos_output_log``: every insert into ``dbos.operation_outputs``, the same way.
"""

from __future__ import annotations

from typing import Any

from runtime.serialization import deserialize

INSTRUMENT = """
CREATE TABLE public.chaos_ledger (
    id bigserial PRIMARY KEY,
    workflow_id text NOT NULL,
    function_id int NOT NULL,
    step text NOT NULL,
    pid int NOT NULL,
    executor_id text NOT NULL,
    owner_epoch bigint NOT NULL,
    started_at timestamptz NOT NULL,          -- the body was entered (worker clock = host clock)
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE public.chaos_ownership_log (
    seq bigserial PRIMARY KEY,
    workflow_id text NOT NULL,
    status text,
    executor_id text,
    owner_epoch bigint,
    queue_name text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE public.chaos_output_log (
    seq bigserial PRIMARY KEY,
    workflow_id text NOT NULL,
    function_id int NOT NULL,
    function_name text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION public.chaos_log_ownership() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.chaos_ownership_log (workflow_id, status, executor_id, owner_epoch, queue_name)
    VALUES (NEW.workflow_uuid, NEW.status, NEW.executor_id, NEW.owner_epoch, NEW.queue_name);
    RETURN NULL;
END $$;
CREATE FUNCTION public.chaos_log_output() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.chaos_output_log (workflow_id, function_id, function_name)
    VALUES (NEW.workflow_uuid, NEW.function_id, NEW.function_name);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER chaos_ownership_insert AFTER INSERT ON dbos.workflow_status
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.chaos_log_ownership();
CREATE CONSTRAINT TRIGGER chaos_ownership_update AFTER UPDATE ON dbos.workflow_status
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN ((OLD.status, OLD.executor_id, OLD.owner_epoch) IS DISTINCT FROM (NEW.status, NEW.executor_id, NEW.owner_epoch))
    EXECUTE FUNCTION public.chaos_log_ownership();
CREATE CONSTRAINT TRIGGER chaos_output_insert AFTER INSERT ON dbos.operation_outputs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.chaos_log_output();
"""


def _rows(conn: Any, query: str, params: tuple = ()) -> list[dict[str, Any]]:
    cur = conn.execute(query, params)
    names = [d.name for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def load_history(conn: Any) -> dict[str, list[dict[str, Any]]]:
    """Everything the checks read, with times as unix seconds."""
    epoch = "extract(epoch FROM {})::float8"
    statuses = _rows(conn, (
        "SELECT w.workflow_uuid AS workflow_id, w.status, w.executor_id, w.output, w.error, w.serialization, "
        "w.queue_name, e.value AS event, e.serialization AS event_serialization "
        "FROM dbos.workflow_status w LEFT JOIN dbos.workflow_events e ON e.workflow_uuid = w.workflow_uuid AND e.key = 'result'"
    ))
    for s in statuses:
        s["output"] = deserialize(s["output"], s.pop("serialization"))
        s["error"] = repr(deserialize(s["error"])) if s["error"] else None
        s["event"] = deserialize(s["event"], s.pop("event_serialization"))
    return {
        "statuses": statuses,
        "ledger": _rows(conn, (
            f"SELECT workflow_id, function_id, step, pid, executor_id, owner_epoch, {epoch.format('started_at')} AS started_at, "
            f"{epoch.format('at')} AS at FROM public.chaos_ledger ORDER BY id"
        )),
        "ownership": _rows(conn, (
            f"SELECT seq, workflow_id, status, executor_id, owner_epoch, queue_name, {epoch.format('at')} AS at "
            "FROM public.chaos_ownership_log ORDER BY seq"
        )),
        "outputs": _rows(conn, (
            f"SELECT seq, workflow_id, function_id, function_name, {epoch.format('at')} AS at FROM public.chaos_output_log ORDER BY seq"
        )),
        "takeovers": _rows(conn, (
            "SELECT workflow_uuid AS workflow_id, from_executor_id, from_epoch, to_executor_id, to_epoch, requeued_to, "
            f"by_executor_id, leader_term, {epoch.format('at')} AS at FROM dbos.pgfleet_takeovers ORDER BY id"
        )),
        "leader_log": _rows(conn, "SELECT term, executor_id, action FROM dbos.pgfleet_leader_log"),
    }
