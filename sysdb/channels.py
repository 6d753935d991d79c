"""The LISTEN/NOTIFY channels of the system database, in one place.

The first two are DBOS's: its migrations' triggers fire them (``notifications_function`` on a
new message, ``workflow_events_function`` on an event), so DBOS's own client wakes on ours.
The queue channel is pgfleet's: an enqueue, a finished queued workflow or a handed-over one
wakes the claimers, and the leader's assignments ride on it with a payload prefix.
"""

from __future__ import annotations

__all__ = ["MESSAGES_CHANNEL", "EVENTS_CHANNEL", "QUEUE_CHANNEL", "ASSIGNMENT_PAYLOAD_PREFIX"]

# DBOS's channel for new messages (payload: "<destination_uuid>::<topic>").
MESSAGES_CHANNEL = "dbos_notifications_channel"
# DBOS's channel for events (payload: "<workflow_uuid>::<key>").
EVENTS_CHANNEL = "dbos_workflow_events_channel"
# pgfleet's channel that wakes the claimers (payload: a queue name, or an assignment).
QUEUE_CHANNEL = "pgfleet_queues"
# A QUEUE_CHANNEL payload that starts with this names a member given workflows by the leader.
ASSIGNMENT_PAYLOAD_PREFIX = "assigned:"
