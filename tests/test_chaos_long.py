"""The long `pgfleet chaos` runs (marked ``chaos``; ``pytest -m chaos``): ten minutes of every
fault kind (partitions too, through network namespaces, when this machine can make them) on the
built-in workload, on three seeds. ``PGFLEET_CHAOS_SEEDS`` and ``PGFLEET_CHAOS_LONG_SECONDS``
(default 600) change them. Each run keeps its report under the test's tmp dir."""

from __future__ import annotations

import json
import os

import pytest

from cluster.process.chaos.model import FAULT_KINDS
from test_chaos_command import chaos, fast_config, netns_flags

pytestmark = pytest.mark.chaos

SEEDS = [int(s) for s in os.environ.get("PGFLEET_CHAOS_SEEDS", "1,2,3").split(",") if s.strip()]
SECONDS = os.environ.get("PGFLEET_CHAOS_LONG_SECONDS", "600")


@pytest.mark.parametrize("seed", SEEDS)
def test_ten_minutes_of_every_fault_kind_hold_every_invariant(tmp_path, seed):
    report = tmp_path / f"chaos-{seed}.html"
    done = chaos("--seconds", SECONDS, "--seed", str(seed), "--faults", "all" if netns_flags() else
                 ",".join(k for k in FAULT_KINDS if k != "partition"), "--config", str(fast_config(tmp_path)),
                 "--json", "--report", str(report), *netns_flags(), timeout=float(SECONDS) + 1200)  # fmt: skip
    assert done.stdout.strip(), f"no JSON on stdout (exit {done.returncode}):\n{done.stderr[-4000:]}"
    result = json.loads(done.stdout)
    failed = [i for i in result["invariants"] if i["violations"]]
    assert done.returncode == 0 and result["passed"], json.dumps(failed, indent=1)[:8000] + f"\nreport: {report}"
    assert not [i["name"] for i in result["invariants"] if i["checked"] == 0]
    assert {f["kind"] for f in result["faults"]} >= set(FAULT_KINDS) - ({"partition"} if not netns_flags() else set())
