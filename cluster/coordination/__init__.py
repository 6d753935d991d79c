"""Cluster coordination: membership, leader election, claiming, assignments and takeover.

Everything here speaks to the fleet through :mod:`sysdb` only; it knows nothing of workflows
as Python functions (``runtime`` drives it through :class:`runtime.services.ClusterServices`).
"""
