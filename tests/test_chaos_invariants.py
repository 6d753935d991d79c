"""The checker of `pgfleet chaos` (cluster/process/chaos/checker.py) reports each kind of violation.

Hand-made histories (the rows sysdb.chaos_history loads after a run), each with one planted
violation that must be reported with the rows that show it, and clean ones that must pass: a
checker that reports nothing on a broken history would make a green chaos run mean nothing.
Pure functions over plain rows: no database, no processes.
"""

from __future__ import annotations

import dataclasses
import pickle
import sys
import types

import psycopg
import pytest

from cluster.process.chaos import checker
from cluster.process.chaos.errors_cause import infrastructure_cause
from cluster.process.chaos.model import ExpectedOutcome, FaultRecord
from cluster.process.chaos.replay import Writer, parse_writer
from runtime.errors import DBOSMaxStepRetriesExceeded, DBOSSerializationError, DBOSWorkflowFencedError
from runtime.serialization import serialize, serialize_exception
from sysdb.chaos_history import (
    ChaosHistoryRows,
    EventValue,
    FinalStatus,
    LeaderAction,
    MemberRecord,
    OwnershipChange,
    QueueLimits,
    StepStart,
    TakeoverRecord,
    WriteRecord,
)
from sysdb.errors import OwnershipLostError

T0 = 1_800_000_000.0
PIDS = {"a-0": 100, "b-0": 200, "c-0": 300, "a-1": 400}


def session(executor: str | None, pid: int | None = None, purpose: str | None = None) -> str:
    if executor is None:
        return "pgfleet-client"
    return f"pgfleet {pid or PIDS[executor]} {executor}" + (f" {purpose}" if purpose else "")


def own(seq, workflow, status, executor=None, epoch=None, at=0.0, queue="q", key=None, writer=None, limited=False, started_ms=None):
    return OwnershipChange(seq, workflow, status, executor, epoch, queue, key, limited, started_ms,
                           writer if writer is not None else session(executor), T0 + at)  # fmt: skip


def start(workflow, fid, executor, epoch, at, pid=None, id=0):
    return StepStart(id, workflow, fid, "s", executor, epoch, pid or PIDS[executor], 1, T0 + at)


def write(seq, workflow, fid, at, writer, owner=None, epoch=None, status="PENDING", kind="output", child=None):
    return WriteRecord(seq, kind, workflow, fid, "s", writer, status, owner, epoch, T0 + at, child_workflow_id=child)


def final(workflow, status="SUCCESS", output=None, error=None, parent=None, name="wf"):
    return FinalStatus(workflow, name, status, None, "b-0", output, error, None, T0, T0 + 9, parent_workflow_id=parent)


def history(**rows) -> ChaosHistoryRows:
    fields = ("ownership", "writes", "starts", "takeovers", "leader_actions", "statuses", "members", "queues", "events")
    return ChaosHistoryRows(**{f: list(rows.get(f, [])) for f in fields})


def result(results, name):
    (found,) = [r for r in results if r.name == name]
    return found


# w1: claimed by a-0@10 (pid 100), a-0 paused, taken over at t=5 (requeued) by the leader c-0,
# claimed by b-0@11 (pid 200), done at t=9. Step 1 recorded by a-0 at t=2; step 2 started by a-0
# at t=3 (never recorded: paused); b-0 replays step 1, runs step 2 at t=6, recorded at t=7.
OWNERSHIP = [
    own(1, "w1", "ENQUEUED", at=0.0),
    own(2, "w1", "PENDING", "a-0", 10, at=1.0),
    own(3, "w1", "ENQUEUED", at=5.0, writer=session("c-0", purpose="leader")),
    own(4, "w1", "PENDING", "b-0", 11, at=5.5),
    own(5, "w1", "SUCCESS", "b-0", 11, at=9.0),
]
TAKEOVERS = [TakeoverRecord("w1", "a-0", 10, None, None, "q", "c-0", 3, T0 + 4.99)]
STARTS = [start("w1", 1, "a-0", 10, 1.5, id=1), start("w1", 2, "a-0", 10, 3.0, id=2), start("w1", 2, "b-0", 11, 6.0, id=3)]
WRITES = [
    write(1, "w1", 1, 2.0, session("a-0"), "a-0", 10),
    write(2, "w1", 2, 7.0, session("b-0"), "b-0", 11),
    write(3, "w1", None, 9.0, session("b-0"), "b-0", 11, kind="finish"),
    write(4, "w1", None, 9.5, "pgfleet-client", None, None, status="SUCCESS", kind="stream"),  # not an executor: skipped
]
LEADERS = [LeaderAction(1, 3, "c-0", "sweep", T0 + 4.9), LeaderAction(2, 3, "c-0", "sweep", T0 + 6.0)]
STATUSES = [final("w1", output=serialize(42))]
EVENTS = [EventValue("w1", "result", serialize(42), None)]
QUEUES = [QueueLimits("q", 1, 1, None, None, False)]


def clean(**over) -> ChaosHistoryRows:
    rows = {"ownership": OWNERSHIP, "writes": WRITES, "starts": STARTS, "takeovers": TAKEOVERS, "leader_actions": LEADERS,
            "statuses": STATUSES, "queues": QUEUES, "events": EVENTS}  # fmt: skip
    rows.update(over)
    return history(**rows)


EXPECTED = [ExpectedOutcome("w1", exact=True, output=42, event_key="result", event_value=42)]


def test_a_clean_history_passes_every_invariant():
    results = checker.check_all(clean(), [], EXPECTED)
    assert [r.name for r in results] == list(checker.INVARIANTS)
    assert [(r.name, r.violations) for r in results if not r.ok] == []
    checked = {r.name: r.checked for r in results}
    assert checked == {"outcomes": 1, "no-rerun-after-record": 3, "no-start-after-takeover": 3, "no-write-by-fenced-owner": 3,
                       "outputs-recorded-once": 2, "queue-limits": 5, "rate-limits": 0, "one-leader": 2}  # fmt: skip
    assert "skipped 1 writes by sessions that are not an executor's" in result(results, "no-write-by-fenced-owner").note
    assert result(results, "rate-limits").note == "no queue had a rate limit"
    assert "peak 1 PENDING (concurrency 1)" in result(results, "queue-limits").note
    assert result(results, "one-leader").note == "1 terms (3..3), led by c-0"


def test_a_recorded_step_run_again_is_reported():
    # b-0 ran step 1 again at t=6 although its output was recorded at t=2 (a replay that re-ran).
    found = checker.check_all(clean(starts=STARTS + [start("w1", 1, "b-0", 11, 6.0, id=4)]), [], EXPECTED)
    (v,) = result(found, "no-rerun-after-record").violations
    assert "w1 step 1" in v.message and "b-0@11 pid 200" in v.message and "4.000s after" in v.message
    assert [e["row"] for e in v.evidence] == ["StepStart", "WriteRecord"]
    # A losing owner's body that started before the record is not a rerun.
    early = clean(starts=STARTS + [start("w1", 1, "a-0", 10, 1.9, id=4)])
    assert result(checker.check_all(early, [], EXPECTED), "no-rerun-after-record").ok


def test_a_paused_owner_starting_a_body_after_its_takeover_is_reported():
    # a-0, resumed after its pause, starts step 2 again at t=5.2: 0.2 s after it was taken over.
    found = result(checker.check_all(clean(starts=STARTS + [start("w1", 2, "a-0", 10, 5.2, id=4)]), [], EXPECTED), "no-start-after-takeover")
    (v,) = found.violations
    assert "a-0@10 pid 100" in v.message and "0.200s after" in v.message and "taken over by c-0 (term 3)" in v.message
    assert v.evidence[0]["row"] == "StepStart" and v.evidence[0]["at"] == T0 + 5.2
    assert [e["seq"] for e in v.evidence[1:6]] == [1, 2, 3, 4, 5]  # how the row changed hands
    assert v.evidence[-1]["row"] == "TakeoverRecord" and v.evidence[-1]["by_executor_id"] == "c-0"


def test_a_start_the_database_refused_is_no_violation_but_is_counted():
    # The same late start as above, but its ledger row says the database had given the workflow
    # away as the row was written: the body never ran (runtime/steps.py record_attempt).
    refused = dataclasses.replace(start("w1", 2, "a-0", 10, 5.2, id=4), owned=False)
    found = result(checker.check_all(clean(starts=STARTS + [refused]), [], EXPECTED), "no-start-after-takeover")
    assert found.ok and "1 starts refused by the database" in found.note
    rerun = result(checker.check_all(clean(starts=STARTS + [refused]), [], EXPECTED), "no-rerun-after-record")
    assert rerun.ok


def test_a_body_under_an_epoch_the_row_never_had_is_reported():
    found = result(checker.check_all(clean(starts=[start("w1", 1, "a-0", 99, 1.5)]), [], []), "no-start-after-takeover")
    assert len(found.violations) == 1 and "never had that owner and epoch" in found.violations[0].message


def test_an_ownership_ended_by_recovery_or_the_end_counts_too():
    # The same executor id recovers its own workflow with a new epoch at t=3 (a restart); the old
    # epoch's threads must not start a body after that, nor anyone after SUCCESS.
    log = [own(1, "d1", "PENDING", "a-1", 20, at=0.0, queue=None), own(2, "d1", "PENDING", "a-1", 21, at=3.0, queue=None, writer=session("a-1", 401)),
           own(3, "d1", "SUCCESS", "a-1", 21, at=6.0, queue=None, writer=session("a-1", 401))]  # fmt: skip
    starts = [start("d1", 1, "a-1", 20, 3.5), start("d1", 2, "a-1", 21, 6.5, pid=401)]
    found = result(checker.check_all(history(ownership=log, starts=starts), [], []), "no-start-after-takeover").violations
    assert len(found) == 2
    assert "re-owned by a-1@21" in found[0].message and "became SUCCESS" in found[1].message


def test_a_body_started_after_a_cancel_is_allowed_until_someone_else_owns_the_workflow():
    # A cancel at t=2 stops c1 only at its next checkpoint: a-0's body at t=2.5 is allowed. Resumed
    # and claimed by b-0 at t=4, c1 is b-0's: a-0's body at t=4.5 is a second execution.
    log = [own(1, "c1", "PENDING", "a-0", 1, at=0.0), own(2, "c1", "CANCELLED", at=2.0, queue=None, writer="pgfleet-client"),
           own(3, "c1", "ENQUEUED", at=3.0), own(4, "c1", "PENDING", "b-0", 2, at=4.0)]  # fmt: skip
    found = result(checker.check_all(history(ownership=log, starts=[start("c1", 1, "a-0", 1, 2.5)]), [], []), "no-start-after-takeover")
    assert found.ok and found.note.startswith("1 bodies started after their workflow was cancelled")
    found = result(checker.check_all(history(ownership=log, starts=[start("c1", 1, "a-0", 1, 4.5)]), [], []), "no-start-after-takeover")
    (v,) = found.violations
    assert "row became CANCELLED" in v.message and "2.500s after" in v.message
    assert [e["row"] for e in v.evidence] == ["StepStart"] + ["OwnershipChange"] * 4


def test_an_output_inserted_twice_is_reported():
    twice = clean(writes=WRITES + [write(5, "w1", 2, 8.0, session("b-0"), "b-0", 11)])
    (v,) = result(checker.check_all(twice, [], EXPECTED), "outputs-recorded-once").violations
    assert "w1 step 2: its output row was inserted 2 times" in v.message and len(v.evidence) == 2


def test_a_write_by_a_fenced_owner_is_reported():
    # a-0 (paused at t=3, taken over at t=5) wakes up and records step 2 at t=5.3: the row was
    # ENQUEUED then; then again at t=6.5, when b-0 owned it.
    writes = WRITES + [write(5, "w1", 2, 5.3, session("a-0"), None, None, status="ENQUEUED"),
                       write(6, "w1", 2, 6.5, session("a-0"), "b-0", 11)]  # fmt: skip
    found = result(checker.check_all(clean(writes=writes), [], EXPECTED), "no-write-by-fenced-owner").violations
    assert [v.message.split(": ", 1)[1] for v in found] == [
        "the row was ENQUEUED at that commit",
        "the row was owned by b-0@11, not by the writer's executor",
    ]
    assert "w1 step 2 output written at" in found[0].message and "by a-0 pid 100" in found[0].message
    assert found[1].evidence[0]["writer_pid"] == 100 and found[1].evidence[1]["role"] == "grant of the ownership"


def test_a_write_by_a_stale_process_of_a_restarted_slot_is_reported():
    # a-1's first process (pid 400) started d1 under epoch 20; it was replaced by pid 401, which
    # recovered d1 under epoch 21. A write by pid 400 under epoch 21 is a stale process's.
    log = [own(1, "d1", "PENDING", "a-1", 20, at=0.0, queue=None), own(2, "d1", "PENDING", "a-1", 21, at=3.0, queue=None, writer=session("a-1", 401))]
    writes = [write(1, "d1", 1, 1.0, session("a-1", 400), "a-1", 20), write(2, "d1", 2, 4.0, session("a-1", 401), "a-1", 21),
              write(3, "d1", 3, 4.5, session("a-1", 400), "a-1", 21)]  # fmt: skip
    (v,) = result(checker.check_all(history(ownership=log, writes=writes), [], []), "no-write-by-fenced-owner").violations
    assert "step 3 output" in v.message and "granted to pid 401: pid 400 is a stale process" in v.message
    # An ownership a takeover assigned (granted by the leader's session) is bound to its first writer.
    log = [own(1, "d2", "PENDING", "b-0", 30, at=0.0, queue=None, writer=session("c-0", purpose="leader"))]
    writes = [write(1, "d2", 1, 1.0, session("b-0", 200), "b-0", 30), write(2, "d2", 2, 2.0, session("b-0", 201), "b-0", 30)]
    found = result(checker.check_all(history(ownership=log, writes=writes), [], []), "no-write-by-fenced-owner")
    (v,) = found.violations
    assert "first written under by pid 200: pid 201 is a stale process" in v.message
    assert "1 ownerships granted by another session" in found.note


def test_writes_not_made_as_an_owner_are_skipped_and_counted():
    writes = [write(1, "f1", 1, 0.5, session("a-0"), None, None, status="ENQUEUED"),  # a fork's copy, before any owner
              write(2, "w1", None, 9.5, session("c-0", purpose="leader"), None, None, status="CANCELLED", kind="finish"),
              write(3, "w1", None, 9.6, "psql", None, None, status="SUCCESS", kind="event")]  # fmt: skip
    found = result(checker.check_all(history(ownership=OWNERSHIP, writes=writes), [], []), "no-write-by-fenced-owner")
    assert found.ok and found.checked == 0
    assert "skipped 1 writes by sessions" in found.note and "1 by leader sessions" in found.note and "1 to rows nobody had owned yet" in found.note


def test_queue_and_worker_limits_exceeded_are_reported_once_per_excursion():
    log = [
        own(1, "q1", "PENDING", "a-0", 1, at=1.0),
        own(2, "q2", "PENDING", "b-0", 2, at=2.0),
        own(3, "q3", "PENDING", "b-0", 3, at=3.0),  # 3 running: over the queue's 2, b-0 over its 1
        own(4, "q4", "PENDING", "c-0", 4, at=3.5),  # still over: not reported again
        own(5, "q1", "SUCCESS", "a-0", 1, at=4.0),
        own(6, "q2", "SUCCESS", "b-0", 2, at=4.1),
        own(7, "x9", "PENDING", "c-0", 9, at=4.2, queue="other"),  # another queue: not counted
    ]
    found = result(checker.check_all(history(ownership=log, queues=[QueueLimits("q", 2, 1, None, None, False)]), [], []), "queue-limits")
    messages = sorted(v.message for v in found.violations)
    assert len(messages) == 2
    assert messages[0].startswith("queue q on executor b-0: 2 workflows PENDING") and "limit 1" in messages[0]
    assert messages[1].startswith("queue q: 3 workflows PENDING") and "limit 2" in messages[1] and "['q1', 'q2', 'q3']" in messages[1]
    assert found.note == "queue q: peak 4 PENDING (concurrency 2), 2 on one executor (worker_concurrency 1)"
    # A takeover that requeues frees the slot before the next claim: not an excursion.
    requeued = [own(1, "q1", "PENDING", "a-0", 1, at=1.0), own(2, "q1", "ENQUEUED", at=2.0), own(3, "q2", "PENDING", "b-0", 2, at=2.0)]
    assert result(checker.check_all(history(ownership=requeued, queues=QUEUES), [], []), "queue-limits").ok


def test_a_partitioned_queue_is_limited_per_partition():
    limits = [QueueLimits("p", 1, None, None, None, True)]
    log = [own(1, "k1a", "PENDING", "a-0", 1, at=1.0, queue="p", key="k1"), own(2, "k2a", "PENDING", "b-0", 2, at=1.5, queue="p", key="k2")]
    within = result(checker.check_all(history(ownership=log, queues=limits), [], []), "queue-limits")
    assert within.ok and "queue p partition k1: peak 1 PENDING" in within.note  # two running, one per partition
    over = log + [own(3, "k1b", "PENDING", "c-0", 3, at=2.0, queue="p", key="k1")]
    (v,) = result(checker.check_all(history(ownership=over, queues=limits), [], []), "queue-limits").violations
    assert v.message.startswith("queue p partition k1: 2 workflows PENDING") and "['k1a', 'k1b']" in v.message


def ms(at: float) -> int:
    return int((T0 + at) * 1000)


def test_a_rate_limit_exceeded_is_reported():
    limits = [QueueLimits("r", None, None, 2, 10.0, False)]

    def claim(seq, wf, at):
        return own(seq, wf, "PENDING", "a-0", seq, at=at + 0.01, queue="r", limited=True, started_ms=ms(at))

    log = [own(1, "r1", "ENQUEUED", queue="r"), claim(2, "r1", 1.0), own(3, "r1", "SUCCESS", "a-0", 2, at=1.5, queue="r", limited=True, started_ms=ms(1.0)),
           claim(4, "r2", 2.0), claim(5, "r3", 3.0),  # 3 starts within 10 s: over the limit of 2
           claim(6, "r4", 12.5)]  # r1 and r2 started more than 10 s ago: r3 and r4 only  # fmt: skip
    found = result(checker.check_all(history(ownership=log, queues=limits), [], []), "rate-limits")
    (v,) = found.violations
    assert "queue r: 3 workflows started within 10s before the claim of r3" in v.message and "limit 2" in v.message
    assert [e.get("workflow_uuid") for e in v.evidence[1:]] == ["r1", "r2", "r3"]
    assert found.checked == 4 and found.note == "queue r: peak 3 starts in 10s (limit 2)"
    # A requeue clears the start time (as the takeover's SQL does): that row no longer counts.
    requeued = log[:4] + [own(7, "r2", "ENQUEUED", at=2.5, queue="r", limited=True, started_ms=None), claim(8, "r3", 3.0)]
    assert result(checker.check_all(history(ownership=requeued, queues=limits), [], []), "rate-limits").ok


def test_two_leaders_in_a_term_and_terms_out_of_order_are_reported():
    actions = [LeaderAction(1, 1, "a-0", "sweep", T0 + 1), LeaderAction(2, 2, "b-0", "sweep", T0 + 2),
               LeaderAction(3, 2, "c-0", "sweep", T0 + 3),  # a second leader in term 2
               LeaderAction(4, 1, "a-0", "sweep", T0 + 4)]  # term 1 acts after term 2 began  # fmt: skip
    found = result(checker.check_all(history(leader_actions=actions), [], []), "one-leader")
    messages = [v.message for v in found.violations]
    assert messages[0] == "term 2: actions logged by 2 executors, ['b-0', 'c-0']"
    assert messages[1].startswith("term 1 (a-0) acted at") and "after term 2 (b-0) began" in messages[1]
    assert len(messages) == 2 and found.note == "2 terms (1..2), led by a-0, b-0, c-0"
    assert [e["id"] for e in found.violations[1].evidence] == [2, 4]


def test_exact_outcomes_missing_failed_wrong_output_and_wrong_event():
    statuses = [final("ok", output=serialize(3)), final("bad", output=serialize(4)),
                final("stuck", status="PENDING"), final("failed", status="ERROR", error=serialize_exception(ValueError("boom")))]  # fmt: skip
    events = [EventValue("ok", "result", serialize(3), None), EventValue("bad", "result", serialize(5), None)]
    expected = [ExpectedOutcome(w, exact=True, output=3, event_key="result", event_value=3) for w in ("ok", "bad", "stuck", "failed", "gone")]
    found = result(checker.check_all(history(statuses=statuses, events=events), [], expected), "outcomes")
    assert [v.message for v in found.violations] == [
        "bad returned 4, expected 3",
        "bad event 'result' is 5, expected 3",
        "stuck ended PENDING on b-0, expected SUCCESS: None",
        "failed ended ERROR on b-0, expected SUCCESS: ValueError('boom')",
        "gone has no workflow row",
    ]
    assert found.checked == 5
    # An exact workflow's descendants must end too (its output may not depend on them).
    statuses = [final("ok", output=serialize(3)), final("ok-2", status="ENQUEUED", parent="ok")]
    found = result(checker.check_all(history(statuses=statuses, events=events), [], expected[:1]), "outcomes")
    assert [v.message for v in found.violations] == ["ok-2 (a descendant of ok) never ended: it is ENQUEUED on b-0"]


class _AppError(Exception):
    pass


def _unimportable_app_error() -> str:
    """An error of an app module the checker's process cannot import."""
    module = types.ModuleType("chaos_fake_app")
    cls = type("InsufficientFunds", (Exception,), {"__module__": "chaos_fake_app"})
    module.InsufficientFunds = cls  # type: ignore[attr-defined]
    sys.modules["chaos_fake_app"] = module
    try:
        return serialize_exception(cls("no money"))
    finally:
        del sys.modules["chaos_fake_app"]


def test_infrastructure_errors_are_told_from_the_apps_own():
    infra = {
        "lost connection": psycopg.OperationalError("server closed the connection unexpectedly"),
        "fenced": DBOSWorkflowFencedError("w", "taken over"),
        "sysdb": OwnershipLostError("w", "a-0", 1, "PENDING", "b-0", 2),
        "retries of a lost connection": DBOSMaxStepRetriesExceeded("s", 3, [psycopg.OperationalError("gone")]),
        "deserialization": DBOSSerializationError("cannot deserialize the recorded output: bad pickle"),
    }
    for what, exc in infra.items():
        assert infrastructure_cause(serialize_exception(exc), None) is not None, what
    assert "psycopg" in (infrastructure_cause(serialize_exception(infra["lost connection"]), None) or "")
    assert "cannot be read" in (infrastructure_cause("not base64 at all!", None) or "")
    for app in (ValueError("bad input"), _AppError("x"), DBOSMaxStepRetriesExceeded("s", 3, [ValueError("v")]),
                DBOSSerializationError("cannot serialize value of type Lock")):  # fmt: skip
        assert infrastructure_cause(serialize_exception(app), None) is None, app
    assert infrastructure_cause(_unimportable_app_error(), None) is None  # read without unpickling
    portable = serialize({"name": "OperationalError", "message": "gone"}, fmt="portable_json")
    assert infrastructure_cause(portable, "portable_json") == "OperationalError (portable)"


def test_an_apps_workflows_and_descendants_must_end_and_not_from_infrastructure():
    statuses = [
        final("app1"), final("app1-1", parent="app1"), final("app1-1-2", status="ENQUEUED", parent="app1-1"),  # a grandchild left queued
        final("app2", status="ERROR", error=serialize_exception(ValueError("declined"))),  # the app's own error: allowed
        final("app3", status="ERROR", error=serialize_exception(psycopg.OperationalError("terminating connection"))),
        final("app4", status="MAX_RECOVERY_ATTEMPTS_EXCEEDED"), final("app5", status="CANCELLED"),
        final("app6", status="ERROR", error=_unimportable_app_error()),
    ]
    writes = [write(1, "app1", 1, 1.0, session("a-0"), "a-0", 1, child="app1-1"),
              write(2, "app1", 2, 1.0, session("a-0"), "a-0", 1, child="app1-2"),  # app1-2 never got a row
              WriteRecord(3, "output", "app1", 3, "DBOS.getResult", session("a-0"), "PENDING", "a-0", 1, T0 + 1, child_workflow_id="other")]  # fmt: skip
    expected = [ExpectedOutcome(w) for w in ("app1", "app2", "app3", "app4", "app5", "app6")]
    found = result(checker.check_all(history(statuses=statuses, writes=writes), [], expected), "outcomes")
    messages = [v.message for v in found.violations]
    assert messages[0] == "app1-2 (a descendant of app1, recorded as started) has no workflow row"
    assert messages[1] == "app1-1-2 (a descendant of app1) never ended: it is ENQUEUED on b-0"
    assert messages[2].startswith("app3 ended ERROR from an infrastructure cause, psycopg.") and "OperationalError" in messages[2]
    assert messages[3].startswith("app4 was dead-lettered")
    assert len(messages) == 4 and found.checked == 9
    assert found.note.startswith("0 with an exact result (SUCCESS, output, event), 6 the app's; 2 ended ERROR from the app's own exceptions")
    assert "infrastructure causes: psycopg" in found.note
    assert found.violations[2].evidence[0]["error_repr"].startswith("OperationalError(")


def test_without_parent_ids_children_follow_dbos_default_ids():
    statuses = [final("top"), final("top-3", status="PENDING"), final("other")]
    found = result(checker.check_all(history(statuses=statuses), [], [ExpectedOutcome("top")]), "outcomes")
    assert [v.message for v in found.violations] == ["top-3 (a descendant of top) never ended: it is PENDING on b-0"]


# Latency: a-0 (pid 100) is killed at t=10 holding l1 (since t=1) and l2 (since t=2); l3 was done
# before. l1's first step under its new owner starts at t=12, l2's at t=14 (a-0's own steps do not
# count: l2's at t=9, before the fault, nor l1's at t=10.5, which is no takeover's). The database restarts from t=20 to t=21; the next step is at 21.5.
LAT_LOG = [own(1, "l1", "PENDING", "a-0", 1, at=1.0), own(2, "l2", "PENDING", "a-0", 2, at=2.0), own(3, "l3", "PENDING", "a-0", 3, at=0.5),
           own(4, "l3", "SUCCESS", "a-0", 3, at=3.0), own(5, "l1", "ENQUEUED", at=11.0), own(6, "l1", "PENDING", "b-0", 6, at=11.5),
           own(7, "l2", "PENDING", "b-0", 7, at=11.0, writer=session("c-0")), own(8, "l1", "SUCCESS", "b-0", 6, at=13.0),
           own(9, "l2", "ERROR", "b-0", 7, at=15.5)]  # fmt: skip
LAT_STARTS = [start("l1", 1, "a-0", 1, 1.2), start("l2", 1, "a-0", 2, 9.0), start("l1", 2, "a-0", 1, 10.5), start("l1", 2, "b-0", 6, 12.0),
              start("l2", 2, "b-0", 7, 14.0), start("l2", 3, "b-0", 7, 21.5)]  # fmt: skip
LAT_FAULTS = [FaultRecord("kill-node", T0 + 10, node="a", pids=[100], executors=["a-0"]),
              FaultRecord("restart-db", T0 + 20, ended_at=T0 + 21), FaultRecord("pause-worker", T0 + 30, executors=["b-0"])]  # fmt: skip


def test_takeover_latency_per_fault_kind():
    stats = checker.takeover_latencies(history(ownership=LAT_LOG, starts=LAT_STARTS), LAT_FAULTS)
    by_kind = {s.kind: s for s in stats}
    assert [s.kind for s in stats] == ["kill-node", "pause-worker", "restart-db"]  # FAULT_KINDS order
    kill = by_kind["kill-node"]
    assert kill.count == 2 and kill.p50 == pytest.approx(3.0) and kill.p99 == pytest.approx(3.98) and kill.max == pytest.approx(4.0)
    assert by_kind["restart-db"].count == 1 and by_kind["restart-db"].max == pytest.approx(0.5)
    assert by_kind["pause-worker"].count == 0 and by_kind["pause-worker"].p50 is None  # nothing PENDING on b-0 at t=30


def test_throughput_counts_finished_workflows_per_bucket():
    points = checker.throughput(history(ownership=LAT_LOG), T0, T0 + 16, bucket_sec=5)
    assert [(p.at - T0, p.seconds, p.finished) for p in points] == [(0, 5, 1), (5, 5, 0), (10, 5, 1), (15, 5, 1)]
    assert sum(p.finished for p in checker.throughput(history(ownership=LAT_LOG), T0, T0 + 16)) == 3
    with pytest.raises(ValueError, match="bucket_sec must be positive"):
        checker.throughput(history(), T0, T0 + 1, bucket_sec=0)
    with pytest.raises(ValueError, match="is before start"):
        checker.throughput(history(), T0 + 1, T0)


def test_lanes_and_takeover_arrows():
    members = [MemberRecord("b-0", 200, "h", "active", 5, T0 + 25), MemberRecord("a-0", 101, "h", "active", 9, T0 + 24)]
    found = checker.lanes(history(ownership=LAT_LOG, starts=LAT_STARTS, members=members), LAT_FAULTS, end=T0 + 40)
    lanes = {(lane.executor_id, lane.pid): lane for lane in found}
    assert set(lanes) == {("a-0", 100), ("b-0", 200), ("c-0", 300), ("a-0", 101)}
    assert lanes[("a-0", 100)].node == "a" and lanes[("a-0", 100)].start == T0 + 0.5 and lanes[("a-0", 100)].end == T0 + 10  # killed
    assert lanes[("b-0", 200)].node == "b" and lanes[("b-0", 200)].end is None  # alive at the end
    assert lanes[("c-0", 300)].end == T0 + 11.0  # seen once, gone unseen
    takeovers = [TakeoverRecord("l1", "a-0", 1, None, None, "q", "c-0", 4, T0 + 11), TakeoverRecord("l2", "a-0", 2, "b-0", 7, None, "c-0", 4, T0 + 11),
                 TakeoverRecord("l2", "b-0", 7, None, None, "q", "c-0", 5, T0 + 15)]  # b-0@7 was c-0's grant: its pid is from its bodies  # fmt: skip
    arrows = checker.takeover_arrows(history(ownership=LAT_LOG, starts=LAT_STARTS, takeovers=takeovers))
    assert [(a["workflow"], a["from_pid"], a["to_executor_id"], a["to_epoch"], a["to_pid"], a["resumed_at"]) for a in arrows] == [
        ("l1", 100, "b-0", 6, 200, T0 + 12.0), ("l2", 100, "b-0", 7, 200, T0 + 14.0), ("l2", 200, None, None, None, None)]  # fmt: skip


def test_executor_sessions_are_parsed_from_their_application_name():
    assert parse_writer("pgfleet 4242 node1-0") == Writer(4242, "node1-0", None, False)
    w = parse_writer("pgfleet 4242 node1-0 heartbeat")
    assert w is not None and (w.pid, w.executor_id, w.purpose, w.truncated) == (4242, "node1-0", "heartbeat", False)
    w = parse_writer("pgfleet 9 node 1 leader")  # an executor id with a space, as sysdb's parser allows
    assert w is not None and (w.executor_id, w.purpose) == ("node 1", "leader")
    for other in ("pgfleet", "pgfleet-client", "psql", "", None, "pgfleet x node1-0", "pgfleet 12 "):
        assert parse_writer(other) is None
    long_id = "n" * 80
    cut = parse_writer(f"pgfleet 7 {long_id}"[:63])
    assert cut is not None and cut.truncated and cut.is_executor(long_id) and not cut.is_executor("m" * 80)
    assert pickle.loads(pickle.dumps(cut)) == cut


class _Fleet:
    """A correct fleet, simulated: executors claim queued workflows under the claim's own limits
    (concurrency, worker concurrency, rate limit), run their steps under their ownership, and get
    killed; the leader requeues a dead member's workflows, and the slot restarts with a new pid.
    Its history must pass every invariant, whatever the seed: the checker never trips on a
    correct run."""

    LIMITS = QueueLimits("q", 3, 2, 4, 1.0, False)

    def __init__(self, seed: int, workflows: int = 40) -> None:
        import random

        self.rng = random.Random(seed)
        self.rows = {f: [] for f in ("ownership", "writes", "starts", "takeovers", "leader_actions", "statuses", "queues", "events")}
        self.seq = 0
        self.epoch = 0
        self.pids = {"a-0": 100, "b-0": 200, "c-0": 300}
        self.dead: dict[str, float] = {}  # executor → when it was killed
        self.state = {f"f{i}": {"status": "ENQUEUED", "owner": None, "epoch": None, "step": 0, "started_ms": None} for i in range(workflows)}
        for w in self.state:
            self.log(w, 0.0, "pgfleet-client")

    def log(self, w: str, now: float, writer: str) -> None:
        s = self.state[w]
        self.seq += 1
        self.rows["ownership"].append(OwnershipChange(self.seq, w, s["status"], s["owner"], s["epoch"], "q", None, s["started_ms"] is not None,
                                                      s["started_ms"], writer, T0 + now))  # fmt: skip

    def claim(self, e: str, now: float) -> None:
        now_ms = ms(now)
        rows = self.state.values()
        running = sum(r["status"] == "PENDING" for r in rows)
        here = sum(r["status"] == "PENDING" and r["owner"] == e for r in rows)
        window = sum(r["started_ms"] is not None and r["started_ms"] > now_ms - 1000 for r in rows)
        budget = min(3 - running, 2 - here, 4 - window, self.rng.randint(1, 3))
        for w in [w for w, r in self.state.items() if r["status"] == "ENQUEUED"][: max(0, budget)]:
            self.epoch += 1
            self.state[w].update(status="PENDING", owner=e, epoch=self.epoch, started_ms=now_ms)
            self.log(w, now + 0.001, session(e, self.pids[e]))

    def step(self, w: str, now: float) -> None:
        s, e = self.state[w], self.state[w]["owner"]
        pid, fid = self.pids[e], s["step"] + 1
        self.seq += 1
        self.rows["starts"].append(StepStart(self.seq, w, fid, "s", e, s["epoch"], pid, 1, T0 + now))
        self.rows["writes"].append(WriteRecord(self.seq, "output", w, fid, "s", session(e, pid), "PENDING", e, s["epoch"], T0 + now + 0.002))
        s["step"] = fid
        if fid == 3:
            self.rows["writes"].append(WriteRecord(self.seq, "finish", w, None, None, session(e, pid), "PENDING", e, s["epoch"], T0 + now + 0.003))
            s["status"] = "SUCCESS"
            self.log(w, now + 0.003, session(e, pid))

    def sweep(self, e: str, now: float) -> None:
        """The leader declares the killed ``e`` dead and requeues its workflows (a new term each time)."""
        term = len(self.rows["leader_actions"]) + 1
        leader = "c-0" if e != "c-0" else "a-0"
        self.rows["leader_actions"].append(LeaderAction(term, term, leader, "sweep", T0 + now))
        for w, s in self.state.items():
            if s["status"] == "PENDING" and s["owner"] == e:
                self.rows["takeovers"].append(TakeoverRecord(w, e, s["epoch"], None, None, "q", leader, term, T0 + now))
                s.update(status="ENQUEUED", owner=None, epoch=None, started_ms=None)
                self.log(w, now + 0.001, session(leader, self.pids[leader], purpose="leader"))

    def run(self) -> ChaosHistoryRows:
        now = 0.0
        while any(s["status"] != "SUCCESS" for s in self.state.values()) and now < 60:
            now += 0.01
            for e, killed in list(self.dead.items()):
                if killed + 0.3 <= now < killed + 0.31:
                    self.sweep(e, now)
                elif killed + 0.5 <= now:  # the supervisor's new process for the slot
                    del self.dead[e]
                    self.pids[e] += 1
            live = [e for e in self.pids if e not in self.dead]
            if live and self.rng.random() < 0.3:
                self.claim(self.rng.choice(live), now)
            for w, s in self.state.items():
                if s["status"] == "PENDING" and s["owner"] in live and self.rng.random() < 0.05:
                    self.step(w, now)
            if len(live) == 3 and self.rng.random() < 0.01:
                self.dead[self.rng.choice(live)] = now
        self.rows["queues"] = [self.LIMITS]
        self.rows["statuses"] = [final(w, status=s["status"], output=serialize(w)) for w, s in self.state.items()]
        return history(**self.rows)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_simulated_correct_fleet_passes_every_invariant(seed):
    fleet = _Fleet(seed)
    rows = fleet.run()
    expected = [ExpectedOutcome(w, exact=True, output=w) for w in fleet.state]
    results = checker.check_all(rows, [], expected)
    assert [(r.name, r.violations[:2]) for r in results if not r.ok] == []
    assert {r.name: r.checked > 0 for r in results} == dict.fromkeys(checker.INVARIANTS, True)
    assert "peak 3 PENDING (concurrency 3), 2 on one executor" in result(results, "queue-limits").note  # the limits were reached
    assert rows.takeovers, "the simulation should have killed an executor holding work"


def test_odd_histories_are_checked_without_crashing():
    # Rows with every optional field empty, unknown statuses, and rows that refer to nothing.
    import random

    rng = random.Random(7)
    pick = rng.choice
    ownership = [own(i, pick(["x", "y"]), pick(["PENDING", "ENQUEUED", "SUCCESS", "WEIRD"]), pick([None, "a-0"]), pick([None, 1, 2]),
                     at=rng.random(), queue=pick([None, "q", "r"]), key=pick([None, "k"]), writer=pick(["", "pgfleet 1 a-0", "x"]),
                     limited=pick([True, False]), started_ms=pick([None, ms(0.5)])) for i in range(60)]  # fmt: skip
    writes = [write(i, pick(["x", "z"]), pick([None, 1]), rng.random(), pick(["", "pgfleet 1 a-0", "pgfleet 2 a-0 leader"]), pick([None, "a-0"]),
                    pick([None, 1]), status=pick([None, "PENDING", "ENQUEUED"]), kind=pick(["output", "finish", "event", "other"]))
              for i in range(40)]  # fmt: skip
    statuses = [final("x", status="ERROR", error="garbage"), final("y", status="SUCCESS", output="garbage")]
    rows = history(ownership=ownership, writes=writes, starts=[start("x", 1, "a-0", 2, 0.7)], statuses=statuses,
                   queues=[QueueLimits("q", 0, 0, 0, 0.0, True), QueueLimits("r", None, None, 1, 0.5, False)],
                   takeovers=[TakeoverRecord("x", None, None, None, None, None, "c-0", None, T0)])  # fmt: skip
    faults = [FaultRecord(k, T0 + 0.5, executors=["a-0"], pids=[1]) for k in ("kill-node", "partition", "terminate-backends", "unknown-kind")]
    expected = [ExpectedOutcome("x"), ExpectedOutcome("y", exact=True, output=1, event_key="k")]
    results = checker.check_all(rows, faults, expected)
    assert len(results) == len(checker.INVARIANTS) and not result(results, "outcomes").ok
    assert "cannot be read" in result(results, "outcomes").violations[1].message
    assert checker.takeover_latencies(rows, faults)[-1].kind == "unknown-kind"
    assert checker.lanes(rows, faults, T0 + 1) and checker.takeover_arrows(rows) and checker.throughput(rows, T0, T0 + 1)


def test_evidence_shows_how_the_row_changed_hands_around_the_moment():
    from cluster.process.chaos.replay import around

    changes = [own(i, "long", "PENDING", "a-0", i, at=float(i)) for i in range(20)]
    assert [c.seq for c in around(changes, T0 + 10.5)] == [5, 6, 7, 8, 9, 10, 11, 12]
    assert [c.seq for c in around(changes, T0 - 1.0)] == [0, 1] and [c.seq for c in around(changes, T0 + 99.0)] == [14, 15, 16, 17, 18, 19]
