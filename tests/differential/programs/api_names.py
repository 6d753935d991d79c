"""The public API: every name DBOS exports, and the parameters of every callable one.

Not compared transcript-for-transcript: tests/test_differential.py checks that pgfleet has each
of DBOS's names (less the documented exclusions) with the same parameters.
"""

import inspect

import dbos
from dbos import DBOS, DBOSClient, Queue, WorkflowHandle, WorkflowHandleAsync
from observe import report, see

SIMPLE_DEFAULTS = (type(None), bool, int, float, str)


def parameters(obj):
    """[name, kind, default] per parameter; defaults that are not plain values are '<object>'."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    described = []
    for p in signature.parameters.values():
        if p.default is p.empty:
            default = "<required>"
        elif isinstance(p.default, SIMPLE_DEFAULTS):
            default = p.default
        else:
            default = "<object>"
        described.append([p.name, p.kind.name, default])
    return described


def members(cls):
    """Public attributes of a class, each with its parameters when callable."""
    found = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        try:
            value = inspect.getattr_static(cls, name)
        except AttributeError:
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        found[name] = parameters(value) if callable(value) else "<attribute>"
    return found


see("module", {name: parameters(getattr(dbos, name)) if callable(getattr(dbos, name)) else "<value>" for name in dbos.__all__})
for cls in (DBOS, DBOSClient, Queue, WorkflowHandle, WorkflowHandleAsync):
    see(cls.__name__, members(cls))
# DBOS programs reach the error classes as ``dbos.error.X`` (an attribute: there is no
# importable ``dbos.error`` module) or ``from dbos import error``.
error_module = getattr(dbos, "error", None)
see("error module", sorted(n for n in dir(error_module) if n.startswith("DBOS") or n.endswith("Error")) if error_module else None)
report()
