"""``pgfleet chaos``: kill, pause and partition the nodes of a real fleet serving an app, then
prove from the system database that nothing was lost, no completed step ran again and no stale
owner acted. See ops/RUNBOOK.md, "Failover testing"."""
