"""``pgfleet status`` (members, the leader, queues, recent takeovers) and ``pgfleet queue list``."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from cluster.coordination.status import FleetStatus, fleet_status
from sysdb import SystemDatabase
from sysdb.claims import QueueCounts, QueueDefinition
from sysdb.fleet import FleetMember, SupervisorRow
from sysdb.leadership import Lease
from sysdb.queue_rows import QueueRow
from sysdb.takeover import TakeoverRecord

from .database import _open_db
from .errors import EXIT_OK
from .output import _dt_time, _emit, _table


def _node_slot(executor_id: str, supervisor_id: str | None, host: str | None) -> tuple[str, str]:
    """A supervised worker's executor id is ``NODE-<slot>``; any other member is its host."""
    if supervisor_id and "-" in executor_id:
        node, slot = executor_id.rsplit("-", 1)
        if node and slot:
            return node, slot
    return str(host or executor_id), "-"


_LIMIT_COLUMNS = ("concurrency", "worker_concurrency", "rate_limit_max", "rate_limit_period_sec", "priority_enabled", "partition_queue")


def _queues(
    counts: Sequence[QueueCounts], definitions: Sequence[QueueDefinition], rows: Sequence[QueueRow] = ()
) -> list[dict[str, Any]]:
    """Per queue: waiting and running counts, and its limits with where they come from
    (``source``): declared in code by a live member (``code``; it wins, as it does when claiming)
    or registered in ``dbos.queues`` (``database``: ``DBOS.register_queue``); a queue known from
    neither has ``limits`` None (unknown here)."""
    by_name: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return by_name.setdefault(
            name, {"queue_name": name, "enqueued": 0, "delayed": 0, "running": 0, "limits": None, "source": None}
        )

    for row in counts:
        entry(row.queue_name).update(enqueued=int(row.enqueued), delayed=int(row.delayed), running=int(row.running))
    for registered in rows:
        entry(registered.name).update(limits={key: getattr(registered, key) for key in _LIMIT_COLUMNS}, source="database")
    for definition in definitions:
        entry(definition.name).update(limits={key: getattr(definition, key) for key in _LIMIT_COLUMNS}, source="code")
    return [by_name[name] for name in sorted(by_name)]


def _limits_text(limits: Mapping[str, Any] | None) -> str:
    if limits is None:
        return "-"
    parts = []
    if limits.get("concurrency") is not None:
        parts.append(f"concurrency={limits['concurrency']}")
    if limits.get("worker_concurrency") is not None:
        parts.append(f"per-worker={limits['worker_concurrency']}")
    if limits.get("rate_limit_max") is not None:
        parts.append(f"rate={limits['rate_limit_max']}/{limits.get('rate_limit_period_sec') or '?'}s")
    if limits.get("priority_enabled"):
        parts.append("priority")
    if limits.get("partition_queue"):
        parts.append("partitioned")
    return " ".join(parts) or "none"


def _queues_table(queues: Sequence[Mapping[str, Any]]) -> str:
    if not queues:
        return "(no queued or running work)"
    return _table(
        ["QUEUE", "ENQUEUED", "DELAYED", "RUNNING", "LIMITS", "FROM"],
        [[q["queue_name"], q["enqueued"], q["delayed"], q["running"], _limits_text(q["limits"]), q["source"] or "-"] for q in queues],
    )


def _read_queues(db: SystemDatabase) -> list[dict[str, Any]]:
    return _queues(db.claims.counts(), db.claims.definitions(), db.queue_rows.list(None))


def _status(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        status = fleet_status(db, takeovers=args.takeovers)
        queues = _queues(status.queues, db.claims.definitions(), db.queue_rows.list(None))
    if args.json:
        _emit(args, _status_payload(status, queues), None)
    else:
        print(_status_text(status, queues))
    return EXIT_OK


def _member_placed(member: FleetMember) -> dict[str, Any]:
    """A member's row with the node and slot it runs in (a supervised worker's, or its host)."""
    node, slot = _node_slot(member.executor_id, member.supervisor_id, member.host)
    return {**dataclasses.asdict(member), "node": node, "slot": slot}


def _status_payload(status: FleetStatus, queues: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "leader_term": status.leader_term,
        "leader": status.leader,
        "members": [_member_placed(m) for m in status.members],
        "queues": queues,
        "recent_takeovers": status.recent_takeovers,
        "supervisors": status.supervisors,
    }


def _status_text(status: FleetStatus, queues: list[dict[str, Any]]) -> str:
    lines = [_leader_line(status.leader)]
    active = sum(1 for m in status.members if m.status == "active")
    lines += ["", f"members: {len(status.members)} ({active} active)"]
    if status.members:
        lines.append(_members_table(status.members))
    if status.supervisors:
        lines += ["", f"supervisors: {len(status.supervisors)}", _supervisors_table(status.supervisors)]
    lines += ["", "queues:", _queues_table(queues)]
    lines += ["", f"recent takeovers: {len(status.recent_takeovers)}"]
    if status.recent_takeovers:
        lines.append(_takeovers_table(status.recent_takeovers))
    return "\n".join(lines)


def _leader_line(leader: Lease | None) -> str:
    if leader and leader.valid:
        return f"leader: term {leader.term}, executor {leader.executor_id} (epoch {leader.executor_epoch})"
    if leader:
        return f"leader: none (the lease of term {leader.term} held by {leader.executor_id} expired at {_dt_time(leader.expires_at)})"
    return "leader: none (no leader has been elected yet)"


def _members_table(members: Sequence[FleetMember]) -> str:
    rows = []
    for m in members:
        node, slot = _node_slot(m.executor_id, m.supervisor_id, m.host)
        heartbeat = f"{m.heartbeat_age_sec:.1f}s ago"
        rows.append([node, slot, m.executor_id, m.pid, m.host, m.status, heartbeat, m.epoch, "*" if m.is_leader else "", m.running_workflows])
    return _table(["NODE", "SLOT", "EXECUTOR", "PID", "HOST", "STATUS", "HEARTBEAT", "EPOCH", "LEADER", "RUNNING"], rows)


def _supervisors_table(supervisors: Sequence[SupervisorRow]) -> str:
    def slots_text(s: SupervisorRow) -> str:
        return " ".join(
            f"{slot['slot']}:{slot['state']}" + (f"(restarts {slot['restarts']}, last {slot['last_exit']})" if slot["restarts"] else "")
            for slot in s.slots
        )

    return _table(
        ["SUPERVISOR", "PID", "STATE", "LAST SEEN", "SLOTS"],
        [[s.supervisor_id, s.pid, s.state, f"{s.last_seen_age_sec:.1f}s ago", slots_text(s)] for s in supervisors],
    )


def _takeovers_table(takeovers: Sequence[TakeoverRecord]) -> str:
    return _table(
        ["AT", "WORKFLOW", "FROM", "TO", "BY", "TERM"],
        [
            [
                _dt_time(t.at), t.workflow_uuid, f"{t.from_executor_id}@{t.from_epoch}",
                f"{t.to_executor_id}@{t.to_epoch}" if t.to_executor_id else f"queue {t.requeued_to}",
                t.by_executor_id, t.leader_term,
            ]
            for t in takeovers
        ],
    )


def _queue_list(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        queues = _read_queues(db)
    _emit(
        args,
        queues,
        _queues_table(queues) + ("\n(limits are declared in code; shown only when recorded in dbos.queues)" if queues else ""),
    )
    return EXIT_OK
