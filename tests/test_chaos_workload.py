"""What a chaos run makes its fleet do (cluster/process/chaos/workload.py, app_workload.py,
builtin_app.py): the built-in workload run by a real `pgfleet supervise` node to its exact
outcomes, enqueued idempotently and retried across lost replies; an app's `--workload
MODULE:FUNCTION` loaded, called with what it declares, and refused with a clear error when it
cannot run; examples/orders.py's chaos_workload."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cluster.process.chaos import builtin_spec as spec
from cluster.process.chaos.model import ExpectedOutcome
from cluster.process.chaos.workload import AppWorkload, BuiltinWorkload, WorkloadError, load_workload
from conftest import REPO_ROOT, wait_until
from faults.fleet import Node
from faults.proxy import PgProxy
from runtime import DBOS, DBOSClient

FAST = {"heartbeat_interval_sec": 0.25, "member_timeout_sec": 1.5}
# Short steps and sleeps keep the test fast; the limits differ from the defaults to show they are
# read from the environment.
APP_ENV = {
    "PGFLEET_CHAOS_STEP_SECONDS": "0.02", "PGFLEET_CHAOS_SLEEP_SECONDS": "0.2", "PGFLEET_CHAOS_CONCURRENCY": "4",
    "PGFLEET_CHAOS_WORKER_CONCURRENCY": "2", "PGFLEET_CHAOS_RATE_LIMIT": "10", "PGFLEET_CHAOS_RATE_PERIOD": "1.5",
}  # fmt: skip


@pytest.fixture
def client(sys_url: str) -> Iterator[DBOSClient]:
    c = DBOSClient(system_database_url=sys_url)
    yield c
    c.destroy()


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        node.kill()


@pytest.fixture
def clean_imports() -> Iterator[None]:
    """Workload modules a test imports (and the workflows and queues they register) leave with it."""
    modules, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path
    DBOS.destroy(destroy_registry=True)


def start_node(nodes: list[Node], name: str, app: str, url: str, tmp_path: Path, env: dict[str, str]) -> Node:
    node = Node(name, app, 2, FAST, {"PGFLEET_SYSTEM_DATABASE_URL": url, **env}, tmp_path, REPO_ROOT)
    nodes.append(node)
    node.start()
    return node


def statuses(db: psycopg.Connection, ids: list[str]) -> dict[str, str]:
    return dict(db.execute("SELECT workflow_uuid, status FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)", (ids,)).fetchall())


def wait_all_succeeded(db: psycopg.Connection, ids: list[str], node: Node, timeout: float = 90) -> None:
    def done() -> bool:
        now = statuses(db, ids)
        failed = {i: s for i, s in now.items() if s not in ("SUCCESS", "PENDING", "ENQUEUED", "DELAYED")}
        assert not failed, f"workflows that failed: {failed}\n{node.log_tail()}"
        return len(now) == len(ids) and set(now.values()) == {"SUCCESS"}

    try:
        wait_until(done, f"{len(ids)} workflows to succeed", timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{node.log_tail()}") from None


def row_count(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()[0]


# -- the built-in workload ------------------------------------------------------------------------


def test_builtin_wave_runs_to_its_exact_outcomes_under_a_supervised_node(sys_url, db, client, nodes, tmp_path):
    workload = BuiltinWorkload(seed=1, waves=2, scale=0.2)
    plan = workload.plan(1)
    delayed = {item.options["workflow_id"] for item in plan if "delay_seconds" in item.options}
    assert delayed, "seed 1's wave 1 delays a job (the test relies on it)"

    expected = workload.wave(client, 1)
    enqueued = [item.options["workflow_id"] for item in plan]
    assert len(enqueued) == 7 and row_count(db) == 7  # 6 jobs and 1 fan-out; children come later
    assert {i for i, s in statuses(db, enqueued).items() if s == "DELAYED"} == delayed
    assert workload.wave(client, 1) == expected and row_count(db) == 7  # enqueued again: nothing new

    node = start_node(nodes, "wl", str(spec.APP_PATH), sys_url, tmp_path, APP_ENV)
    ids = [o.workflow_id for o in expected]
    wait_all_succeeded(db, ids, node)
    assert row_count(db) == len(ids)  # every workflow the app ran was expected, children included

    for outcome in expected:
        assert outcome.exact
        assert client.retrieve_workflow(outcome.workflow_id).get_result() == outcome.output, outcome.workflow_id
        if outcome.event_key is not None:
            assert client.get_event(outcome.workflow_id, outcome.event_key, timeout_seconds=0) == outcome.event_value
    fanout = next(item for item in plan if item.options["workflow_name"] == spec.FANOUT)
    fan_id, (n, width) = fanout.options["workflow_id"], fanout.args
    rows = dict(db.execute(
        "SELECT workflow_uuid, coalesce(queue_name, '-') FROM dbos.workflow_status WHERE parent_workflow_id = %s", (fan_id,)
    ).fetchall())  # fmt: skip
    assert rows == {**{spec.direct_job_id(fan_id, i): "-" for i in range(width)}, spec.queued_job_id(fan_id): spec.LIMITED_QUEUE}
    assert client.retrieve_workflow(fan_id).get_result() == spec.fanout_output(n, width)

    limits = [r[0] for r in db.execute("SELECT queue_limits FROM dbos.pgfleet_executors WHERE executor_id LIKE 'wl-%'")]
    assert len(limits) == 2
    for declared in limits:
        assert declared[spec.LIMITED_QUEUE] == {
            "concurrency": 4, "worker_concurrency": 2, "rate_limit": [10, 1.5], "partitioned": False, "priority_enabled": False,
        }  # fmt: skip
        assert declared[spec.PLAIN_QUEUE]["concurrency"] is None and declared[spec.PLAIN_QUEUE]["rate_limit"] is None

    assert workload.wave(client, 1) == expected  # a wave enqueued again after it ran adds nothing
    assert row_count(db) == len(ids) and set(statuses(db, ids).values()) == {"SUCCESS"}


def test_a_wave_retries_an_enqueue_whose_reply_was_lost_and_enqueues_it_once(sys_url, db):
    with PgProxy.start(sys_url) as proxy:
        # No retries of the client's own: the second lost reply reaches the workload's retry.
        lossy = DBOSClient(system_database_url=proxy.url, retry_connection_errors=False)
        try:
            rules = [proxy.drop_reply("-- Put a workflow on a queue") for _ in range(2)]
            expected = BuiltinWorkload(seed=1, waves=1, scale=0.1).wave(lossy, 0)
        finally:
            lossy.destroy()
    assert all(rule.fired.is_set() for rule in rules)  # committed, and the reply lost: twice
    assert row_count(db) == 4  # 3 jobs and 1 fan-out, each once
    assert set(statuses(db, [o.workflow_id for o in expected]).values()) <= {"ENQUEUED", "DELAYED"}


def test_the_builtin_plan_is_fixed_by_seed_and_wave_and_sized_by_scale():
    a, b = BuiltinWorkload(seed=7, waves=4), BuiltinWorkload(seed=8, waves=4)
    plan = a.plan(2)
    assert [(i.options, i.args) for i in plan] == [(i.options, i.args) for i in BuiltinWorkload(seed=7, waves=4).plan(2)]
    assert [(i.options, i.args) for i in plan] != [(i.options, i.args) for i in b.plan(2)]
    names = [i.options["workflow_name"] for i in plan]
    assert names.count(spec.JOB) == 30 and names.count(spec.FANOUT) == 4
    assert len({i.options["workflow_id"] for i in plan}) == 34
    outcomes = [o for i in plan for o in i.outcomes]
    assert len({o.workflow_id for o in outcomes}) == len(outcomes) and all(o.exact for o in outcomes)
    small = [i.options["workflow_name"] for i in BuiltinWorkload(seed=7, waves=4, scale=0.01).plan(0)]
    assert sorted(small) == [spec.FANOUT, spec.JOB]  # every kind of work, even scaled right down


@pytest.mark.parametrize(
    ("kwargs", "wave", "message"),
    [
        ({"waves": 0}, 0, "at least one wave"),
        ({"waves": 2, "scale": 0}, 0, "scale must be a positive number"),
        ({"waves": 2, "scale": -1.5}, 0, "scale must be a positive number"),
        ({"waves": 2}, 2, r"wave 2 is out of range: this workload has waves 0\.\.1"),
        ({"waves": 2}, -1, "wave -1 is out of range"),
    ],
)
def test_bad_builtin_settings_are_refused(kwargs, wave, message):
    with pytest.raises(WorkloadError, match=message):
        BuiltinWorkload(seed=1, **kwargs).plan(wave)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PGFLEET_CHAOS_STEP_SECONDS": "fast"}, "PGFLEET_CHAOS_STEP_SECONDS must be a number, got 'fast'"),
        ({"PGFLEET_CHAOS_CONCURRENCY": "2.5"}, "PGFLEET_CHAOS_CONCURRENCY must be an integer"),
        ({"PGFLEET_CHAOS_RATE_LIMIT": "0"}, "PGFLEET_CHAOS_RATE_LIMIT must be at least 1"),
        ({"PGFLEET_CHAOS_CONCURRENCY": "2", "PGFLEET_CHAOS_WORKER_CONCURRENCY": "3"}, "must not exceed PGFLEET_CHAOS_CONCURRENCY"),
    ],
)
def test_bad_app_settings_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        spec.AppSettings.from_env(env)
    assert spec.AppSettings.from_env({}) == spec.AppSettings()
