"""Deterministic fault tools for tests: each puts a test exactly inside the window it means to hit.

- ``proxy``: a TCP proxy in front of Postgres that lets a statement commit and then drops its
  reply, or cuts a link on demand.
- ``locks``: a second session that holds a row or advisory lock, so a statement waits at a
  chosen point (found in ``pg_locks``).
- ``clock``: runs a process with its wall clock shifted.

Real Postgres, real processes, no mocks: these only change what the network, the locks and the
clock do.
"""
