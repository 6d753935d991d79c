"""``SetWorkflowAttributes``: custom key-value attributes recorded on the workflows a block starts.

As in DBOS they are recorded in the status row when the workflow is created (started, started
in the background or enqueued), can be replaced later with ``update_workflow_attributes``, and
filtered on by ``list_workflows(attributes=...)``. They are not inherited: a workflow started
inside the block's workflow gets none, unless a block inside its body sets some. The block
remembers which workflow (or none) entered it, and a start applies the attributes only when its
parent is that one.
"""

from __future__ import annotations

import json
from typing import Any

from .context import StartOptions, WorkflowContext, _OptionsBlock, current_workflow, peek_start_options
from .errors import DBOSException

__all__ = ["SetWorkflowAttributes", "attributes_for_start", "validate_workflow_attributes"]

# The key of StartOptions.extra under which a block keeps (entering workflow id, attributes).
_KEY = "workflow_attributes"


def validate_workflow_attributes(attributes: Any) -> None:
    """Refuse attributes that are not a JSON-serializable dict (or None), with DBOS's texts."""
    if attributes is not None and not isinstance(attributes, dict):
        raise DBOSException(f"Invalid workflow attributes {attributes}. Attributes must be a dict.")
    if attributes is not None:
        try:
            json.dumps(attributes)
        except (TypeError, ValueError) as exc:
            raise DBOSException(f"Invalid workflow attributes {attributes}. Attributes must be JSON-serializable.") from exc


class SetWorkflowAttributes(_OptionsBlock):
    """``with SetWorkflowAttributes({"customer": "acme"}):`` records these attributes on every
    workflow started or enqueued in the block (``None`` records none)."""

    def __init__(self, attributes: dict[str, Any] | None) -> None:
        validate_workflow_attributes(attributes)
        self.attributes = attributes
        super().__init__()

    def __enter__(self) -> SetWorkflowAttributes:
        ctx = current_workflow()
        owner = ctx.workflow_id if ctx is not None else None
        # Merged into the options' extras (other blocks keep theirs), copied so nothing is shared.
        extra = {**peek_start_options().extra, _KEY: (owner, dict(self.attributes) if self.attributes is not None else None)}
        self._changes = {"extra": extra}
        super().__enter__()
        return self


def attributes_for_start(options: StartOptions, parent: WorkflowContext | None) -> dict[str, Any] | None:
    """The attributes a start records: those of the innermost ``SetWorkflowAttributes`` block
    entered by this start's own caller (the parent workflow, or no workflow)."""
    held = options.extra.get(_KEY)
    if held is None:
        return None
    owner, attributes = held
    caller = parent.workflow_id if parent is not None else None
    return attributes if owner == caller else None
