"""The fleet page (members, supervisors, the leader and its log, recent takeovers), the queues
page and its JSON twin ``/api/queues``."""

from __future__ import annotations

import dataclasses
import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cluster.coordination.status import fleet_status

from ..cli.status_commands import _node_slot
from .render import SECURITY_HEADERS, page
from .state import console_of, queue_figures

__all__ = ["fleet_page", "queues_page", "queues_api"]

# How many takeovers and leader actions the fleet page shows.
RECENT = 20


def fleet_page(request: Request) -> Response:
    """GET /: the fleet as ``pgfleet status`` reads it, refreshing itself."""
    console = console_of(request)
    status = fleet_status(console.db, takeovers=0)
    members = []
    for member in status.members:
        node, slot = _node_slot(member.executor_id, member.supervisor_id, member.host)
        members.append({**dataclasses.asdict(member), "node": node, "slot": slot})
    return page("fleet.html", console.context(
        leader=status.leader,
        members=members,
        active=sum(1 for m in status.members if m.status == "active"),
        supervisors=status.supervisors,
        takeovers=console.reads.recent_takeovers(RECENT),
        leader_log=console.reads.leader_log(RECENT),
        refresh_sec=console.refresh_sec,
        now=datetime.datetime.now(datetime.timezone.utc),
    ))


def queues_page(request: Request) -> Response:
    """GET /queues: per queue its limits, counts, oldest wait and recent starts."""
    console = console_of(request)
    return page("queues.html", console.context(queues=queue_figures(console.db)))


def queues_api(request: Request) -> Response:
    """GET /api/queues: the same figures as a JSON list of objects (QueueFigures' fields)."""
    console = console_of(request)
    return JSONResponse([dataclasses.asdict(f) for f in queue_figures(console.db)], headers=SECURITY_HEADERS)
