"""The processes an operator runs: the per-host supervisor, the worker entry point it spawns,
the settings they read and the ``pgfleet`` CLI. This layer sits above ``runtime``."""
