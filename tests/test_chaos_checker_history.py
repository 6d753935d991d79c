"""The chaos checker (cluster/process/chaos/checker.py) over a real history (sysdb.chaos_history):
a real run passes every invariant that had something to look at, and a write planted by a session
that names an executor which does not own the row is reported, from the rows the triggers logged.
The checker's own cases, one per invariant, are hand-made histories in tests/test_chaos_invariants.py."""

from __future__ import annotations

import psycopg

from cluster.process.chaos import checker
from cluster.process.chaos.model import ExpectedOutcome
from cluster.process.chaos.replay import parse_writer
from sysdb.chaos_history import parse_writer as sysdb_parse_writer
from sysdb.session_names import executor_session_name
from test_chaos_history import configured, history_db, run_the_small_workflow  # noqa: F401 (fixtures)


def test_a_real_run_holds_every_invariant_and_a_planted_stale_write_is_caught(configured, history_db, db, sys_url):  # noqa: F811
    run_the_small_workflow()
    expected = [ExpectedOutcome("parent-1", exact=True, output=6, event_key="doubled", event_value=2), ExpectedOutcome("parent-1")]
    results = {r.name: r for r in checker.check_all(history_db.chaos_history.load(), [], expected)}
    assert {n: r.violations for n, r in results.items() if not r.ok} == {}
    assert results["outcomes"].checked == 2 * 3  # parent-1 and its two children (found from the history), twice
    assert results["no-write-by-fenced-owner"].checked > 10 and results["rate-limits"].checked == 1

    # A process of another executor id records a step of the finished parent-1.
    with psycopg.connect(sys_url, application_name=executor_session_name(4242, "intruder"), autocommit=True) as conn:
        conn.execute("INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, function_name) VALUES ('parent-1', 99, 's')")
    results = {r.name: r for r in checker.check_all(history_db.chaos_history.load(), [], expected)}
    (v,) = results["no-write-by-fenced-owner"].violations
    assert "parent-1 step 99 output" in v.message and "by intruder pid 4242: the row was SUCCESS at that commit" in v.message


def test_the_checker_reads_session_names_as_sysdb_does():
    names = ["pgfleet 123 exec-1", "pgfleet 123 exec-1 heartbeat", "pgfleet 123 exec-1 leader", "pgfleet 123 exec-1 app",
             "pgfleet 123 my executor", "pgfleet-client", "pgfleet:old-style", "pgfleet 12x exec", "psql", "",
             executor_session_name(4194304, "node-" + "x" * 80, "heartbeat")]  # fmt: skip
    for name in names:
        ours = parse_writer(name)
        assert (None if ours is None else (ours.pid, ours.executor_id)) == sysdb_parse_writer(name), name
