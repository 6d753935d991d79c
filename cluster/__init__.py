"""pgfleet's cluster, in two layers with ``runtime`` between them.

- :mod:`cluster.coordination`: membership and heartbeats, leader election, queue claiming,
  assignments and takeover. It knows only :mod:`sysdb`; ``runtime`` drives it.
- :mod:`cluster.process`: the processes an operator starts — the per-host supervisor, the
  worker entry point it spawns, settings and the ``pgfleet`` CLI. It sits above ``runtime``.

The layers are checked by import-linter (``[tool.importlinter]`` in ``pyproject.toml``).
"""
