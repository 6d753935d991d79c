"""Every door of the system database (``SystemDatabase`` inherits their declarations and opens
them all at once with :func:`open_doors`): one door per concept (``sysdb/<concept>.py``), the
only code that names a statement."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .admin import WorkflowAdmin
from .app_versions import ApplicationVersions
from .assignments import Assignments
from .attempts import Attempts
from .chaos_history import ChaosHistory
from .claims import Claims
from .debounces import Debounces
from .events import Events
from .fleet import Fleet
from .leadership import Leadership
from .members import Members
from .messages import Messages
from .probe import Probe
from .queue_figures import QueueFiguresDoor
from .queue_rows import QueueRows
from .recovery import Recovery
from .retention import Retention
from .schedules import Schedules
from .steps import Steps
from .streams import Streams
from .takeover import Takeover
from .waits import Waits
from .workflow_schedules import WorkflowSchedules
from .workflows import Workflows

if TYPE_CHECKING:
    from .database import SystemDatabase

__all__ = ["Doors", "open_doors"]


class Doors:
    """The doors of a :class:`~sysdb.database.SystemDatabase`, as attributes (``db.workflows``...)."""

    workflows: Workflows
    recovery: Recovery
    admin: WorkflowAdmin
    steps: Steps
    messages: Messages
    events: Events
    streams: Streams
    schedules: Schedules
    waits: Waits
    workflow_schedules: WorkflowSchedules
    queue_rows: QueueRows
    queue_figures: QueueFiguresDoor
    app_versions: ApplicationVersions
    debounces: Debounces
    attempts: Attempts
    chaos_history: ChaosHistory
    members: Members
    leadership: Leadership
    claims: Claims
    assignments: Assignments
    takeover: Takeover
    fleet: Fleet
    probe: Probe
    retention: Retention


def open_doors(db: SystemDatabase) -> None:
    """Open one door per concept on ``db``."""
    # The workflow concepts.
    db.workflows = Workflows(db)
    db.recovery = Recovery(db)
    db.admin = WorkflowAdmin(db)
    db.steps = Steps(db)
    db.messages = Messages(db)
    db.events = Events(db)
    db.streams = Streams(db)
    db.schedules = Schedules(db)
    db.waits = Waits(db)
    db.workflow_schedules = WorkflowSchedules(db)
    db.queue_rows = QueueRows(db)
    db.queue_figures = QueueFiguresDoor(db)
    db.app_versions = ApplicationVersions(db)
    db.debounces = Debounces(db)
    db.attempts = Attempts(db)
    db.chaos_history = ChaosHistory(db)
    # The cluster's concepts.
    db.members = Members(db)
    db.leadership = Leadership(db)
    db.claims = Claims(db)
    db.assignments = Assignments(db)
    db.takeover = Takeover(db)
    db.fleet = Fleet(db)
    db.probe = Probe(db)
    db.retention = Retention(db)
