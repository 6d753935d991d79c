"""The chaos run's check of itself (cluster/process/chaos/result.py ``harness_result``): a run
whose faults did not land, hit no workflow in flight, started no work or lost a wave fails
instead of passing, each with the reason."""

from __future__ import annotations

import pytest

from cluster.process.chaos.model import ExpectedOutcome, FaultRecord, LatencyStats
from cluster.process.chaos.options import ChaosOptions, ChaosUsageError, parse_fault_kinds
from cluster.process.chaos.result import harness_result

KILL = FaultRecord("kill-node", 100.0, node="chaos0", executors=["chaos0-0"])
HIT = [LatencyStats("kill-node", 3, 1.0, 2.0, 2.0)]
MISSED = [LatencyStats("kill-node", 0, None, None, None)]
WORK = [ExpectedOutcome("w1", exact=True, output=1)]


def test_a_run_whose_faults_landed_on_work_passes():
    assert harness_result(["kill-node"], [KILL], HIT, WORK, {}).ok


@pytest.mark.parametrize("kinds, faults, latencies, expected, failed, says", [
    (["kill-node", "restart-db"], [KILL], HIT, WORK, {}, "fault restart-db was planned but never landed"),
    (["kill-node"], [KILL], MISSED, WORK, {}, "hit no workflow in flight"),
    (["kill-node"], [KILL], HIT, [], {}, "the workload started no workflow"),
    (["kill-node"], [KILL], HIT, WORK, {3: "OperationalError: server closed"}, "wave 3 of the workload failed: OperationalError"),
])  # fmt: skip
def test_a_run_that_proved_nothing_fails_saying_why(kinds, faults, latencies, expected, failed, says):
    result = harness_result(kinds, faults, latencies, expected, failed)
    assert not result.ok and any(says in v.message for v in result.violations), result.violations


def test_a_baseline_without_faults_needs_only_work():
    assert harness_result([], [], [], WORK, {}).ok


def test_fault_kinds_and_options_are_validated_with_clear_messages(tmp_path):
    assert parse_fault_kinds("kill-node, partition,kill-node") == ["kill-node", "partition"]
    assert parse_fault_kinds("none") == [] and len(parse_fault_kinds("all")) == 7
    with pytest.raises(ChaosUsageError, match="unknown fault kind"):
        parse_fault_kinds("kill-node,reboot")
    with pytest.raises(ChaosUsageError, match="--seconds must be more than 0"):
        ChaosOptions(seconds=0).validate()
    with pytest.raises(ChaosUsageError, match="--workload needs the APP"):
        ChaosOptions(workload="m:f").validate()
    with pytest.raises(ChaosUsageError, match="no such file"):
        ChaosOptions(config=tmp_path / "missing.toml").validate()
    command = ChaosOptions(app="shop.py", workload="shop.py:work", seed=7, database_url="postgresql://u:secret@h/db").repro_command()
    assert "--seed 7" in command and "secret" not in command and "shop.py:work" in command
