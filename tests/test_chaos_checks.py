"""The chaos run's invariant checker (tests/chaos_checks.py) catches each kind of violation.

Hand-made histories, each with one planted violation, and a clean one that must pass: a checker
that reports nothing on a broken history would make a green chaos run mean nothing. The last
test runs a real workflow on an instrumented database (tests/chaos_history.py) and checks that
the triggers log what the checks read.
"""

from __future__ import annotations

import chaos_checks as cc
from chaos_history import INSTRUMENT, load_history

T0 = 1_800_000_000.0


def own(seq, workflow, status, executor=None, epoch=None, at=0.0, queue="q"):
    return {"seq": seq, "workflow_id": workflow, "status": status, "executor_id": executor,
            "owner_epoch": epoch, "queue_name": queue, "at": T0 + at}  # fmt: skip


def led(workflow, fid, executor, epoch, started, pid=100):
    return {"workflow_id": workflow, "function_id": fid, "step": "s", "pid": pid, "executor_id": executor,
            "owner_epoch": epoch, "started_at": T0 + started, "at": T0 + started + 0.001}  # fmt: skip


def out(workflow, fid, at, seq=0):
    return {"seq": seq, "workflow_id": workflow, "function_id": fid, "function_name": "s", "at": T0 + at}


# w1: claimed by a-0@10, a-0 paused, taken over at t=5 (requeued), claimed by b-0@11, done at t=9.
OWNERSHIP = [
    own(1, "w1", "ENQUEUED", at=0.0),
    own(2, "w1", "PENDING", "a-0", 10, at=1.0),
    own(3, "w1", "ENQUEUED", at=5.0),
    own(4, "w1", "PENDING", "b-0", 11, at=5.5),
    own(5, "w1", "SUCCESS", "b-0", 11, at=9.0),
]
TAKEOVERS = [{"workflow_id": "w1", "from_executor_id": "a-0", "from_epoch": 10, "to_executor_id": None, "to_epoch": None,
              "requeued_to": "q", "by_executor_id": "c-0", "leader_term": 3, "at": T0 + 4.99}]  # fmt: skip
# Step 1 recorded by a-0 at t=2; step 2 started by a-0 at t=3 then a-0 paused (never recorded);
# b-0 replays step 1, runs step 2 at t=6 (recorded t=7).
CLEAN_LEDGER = [led("w1", 1, "a-0", 10, 1.5), led("w1", 2, "a-0", 10, 3.0), led("w1", 2, "b-0", 11, 6.0, pid=200)]
CLEAN_OUTPUTS = [out("w1", 1, 2.0, 1), out("w1", 2, 7.0, 2)]


def kinds(violations):
    return sorted(v.kind for v in violations)


def test_a_clean_history_passes_every_check():
    assert cc.check_no_rerun_after_record(CLEAN_LEDGER, CLEAN_OUTPUTS) == []
    assert cc.check_no_start_after_ownership_lost(CLEAN_LEDGER, OWNERSHIP, TAKEOVERS) == []
    assert cc.check_outputs_recorded_once(CLEAN_OUTPUTS) == []
    assert cc.check_queue_concurrency(OWNERSHIP, "q", limit=1, worker_limit=1) == []
    assert cc.format_report([]) == "no invariant violated"


def test_a_recorded_step_run_again_is_reported():
    # b-0 ran step 1 again at t=6 although its output was recorded at t=2 (a replay that re-ran).
    ledger = CLEAN_LEDGER + [led("w1", 1, "b-0", 11, 6.0, pid=200)]
    found = cc.check_no_rerun_after_record(ledger, CLEAN_OUTPUTS)
    assert kinds(found) == ["rerun-after-record"]
    assert "w1 step 1" in found[0].message and "b-0@11" in found[0].message and "4.000s after" in found[0].message
    # A losing owner's body that started before the record is not a rerun.
    assert cc.check_no_rerun_after_record([led("w1", 1, "x-0", 9, 1.9)], CLEAN_OUTPUTS) == []


def test_a_paused_owner_starting_a_body_after_its_takeover_is_reported():
    # a-0, resumed after its pause, starts step 2 again at t=5.2: 0.2 s after it was taken over.
    ledger = CLEAN_LEDGER + [led("w1", 2, "a-0", 10, 5.2)]
    found = cc.check_no_start_after_ownership_lost(ledger, OWNERSHIP, TAKEOVERS)
    assert kinds(found) == ["start-after-ownership-lost"]
    message = found[0].message
    assert "a-0@10" in message and "0.200s after" in message and "taken over by c-0 (term 3)" in message
    assert [r["seq"] for r in found[0].evidence[1:]] == [1, 2, 3, 4, 5]  # how the row changed hands
    report = cc.format_report(found)
    assert report.startswith("1 invariant violations: start-after-ownership-lost x1") and "pid=100" in report


def test_a_body_under_an_epoch_the_row_never_had_is_reported():
    found = cc.check_no_start_after_ownership_lost([led("w1", 1, "a-0", 99, 1.5)], OWNERSHIP)
    assert kinds(found) == ["unknown-ownership"]


def test_an_ownership_ended_by_recovery_or_the_end_counts_too():
    # The same executor id recovers its own workflow with a new epoch at t=3 (a restart); the old
    # epoch's threads must not start a body after that, nor anyone after SUCCESS.
    log = [own(1, "d1", "PENDING", "a-1", 20, at=0.0, queue=None), own(2, "d1", "PENDING", "a-1", 21, at=3.0, queue=None),
           own(3, "d1", "SUCCESS", "a-1", 21, at=6.0, queue=None)]  # fmt: skip
    found = cc.check_no_start_after_ownership_lost([led("d1", 1, "a-1", 20, 3.5), led("d1", 2, "a-1", 21, 6.5)], log)
    assert kinds(found) == ["start-after-ownership-lost"] * 2
    assert "re-owned by a-1@21" in found[0].message and "became SUCCESS" in found[1].message


def test_an_output_inserted_twice_is_reported():
    found = cc.check_outputs_recorded_once(CLEAN_OUTPUTS + [out("w1", 2, 8.0, 3)])
    assert kinds(found) == ["output-recorded-twice"] and "inserted 2 times" in found[0].message


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
    found = cc.check_queue_concurrency(log, "q", limit=2, worker_limit=1)
    assert kinds(found) == ["queue-limit-exceeded"] * 2
    assert "queue q: 3 workflows PENDING" in found[1].message or "queue q: 3 workflows PENDING" in found[0].message
    assert any("on executor b-0: 2 workflows" in v.message for v in found)
    assert cc.queue_peaks(log, "q") == (4, 2)
    # A takeover that requeues frees the slot before the next claim: not an excursion.
    requeued = [own(1, "q1", "PENDING", "a-0", 1, at=1.0), own(2, "q1", "ENQUEUED", at=2.0),
                own(3, "q2", "PENDING", "b-0", 2, at=2.0)]  # fmt: skip
    assert cc.check_queue_concurrency(requeued, "q", limit=1) == []


def test_outcomes_and_leader_terms():
    statuses = [
        {"workflow_id": "ok", "status": "SUCCESS", "output": 3, "event": 3},
        {"workflow_id": "bad", "status": "SUCCESS", "output": 4, "event": 5},
        {"workflow_id": "stuck", "status": "PENDING", "executor_id": "a-0", "output": None, "error": None},
    ]
    found = cc.check_outcomes(statuses, {"ok": 3, "bad": 5, "gone": 1}, events={"ok": 3, "bad": 5})
    assert kinds(found) == ["missing-workflow", "not-successful", "wrong-result"]
    found = cc.check_outcomes(statuses[:2], {"ok": 3, "bad": 4}, events={"ok": 3, "bad": 4})
    assert kinds(found) == ["wrong-event"]
    logs = [{"term": 1, "executor_id": "a-0"}, {"term": 1, "executor_id": "a-0"}, {"term": 2, "executor_id": "b-0"},
            {"term": 2, "executor_id": "c-1"}]  # fmt: skip
    assert kinds(cc.check_one_leader_per_term(logs)) == ["two-leaders-in-a-term"]


def test_instrumentation_logs_a_real_run(sys_url, db):
    db.execute(INSTRUMENT)
    from runtime import DBOS

    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "chaos-checks", "system_database_url": sys_url, "executor_id": "solo"})

    @DBOS.step()
    def double(x):
        return 2 * x

    @DBOS.workflow()
    def twice(x):
        DBOS.set_event("result", double(double(x)))
        return double(double(x))

    DBOS.launch()
    try:
        assert twice(3) == 12
    finally:
        DBOS.destroy(destroy_registry=True)
    history = load_history(db)
    (status,) = history["statuses"]
    assert status["status"] == "SUCCESS" and status["output"] == 12 and status["event"] == 12
    log = history["ownership"]
    assert [r["status"] for r in log] == ["PENDING", "SUCCESS"] and log[0]["executor_id"] == "solo"
    assert log[0]["owner_epoch"] is not None and log[0]["at"] <= log[1]["at"]
    outputs = history["outputs"]
    assert sorted(o["function_id"] for o in outputs) == [1, 2, 3, 4, 5]  # 4 steps and the event
    assert all(log[0]["at"] <= o["at"] <= log[1]["at"] for o in outputs)
    owned = cc.ownerships(log)
    assert list(owned.values())[0]["end"] == log[1]["at"]
