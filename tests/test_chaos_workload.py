"""What a chaos run makes its fleet do (cluster/process/chaos/workload.py, app_workload.py,
builtin_app.py): the built-in workload run by a real `pgfleet supervise` node to its exact
outcomes, enqueued idempotently and retried across lost replies; an app's `--workload
MODULE:FUNCTION` loaded, called with what it declares, and refused with a clear error when it
cannot run; examples/orders.py's chaos_workload."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cluster.process.chaos import builtin_spec as spec
from cluster.process.chaos.model import ExpectedOutcome
from cluster.process.chaos.nodes import Node
from cluster.process.chaos.workload import (
    FANOUTS_PER_WAVE,
    JOBS_PER_WAVE,
    AppWorkload,
    BuiltinWorkload,
    WorkloadError,
    load_workload,
)
from conftest import REPO_ROOT, wait_until
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
    """Workload modules a test imports (and the workflows and queues they register) leave with
    it; modules of pgfleet or of libraries imported meanwhile stay (a second copy would differ)."""
    modules, path = set(sys.modules), list(sys.path)
    kept = [Path(sys.prefix), Path(sys.base_prefix), *(REPO_ROOT / d for d in ("runtime", "sysdb", "cluster", "tests"))]
    yield
    for name in set(sys.modules) - modules:
        file = getattr(sys.modules[name], "__file__", None)
        if file and not any(Path(file).resolve().is_relative_to(root.resolve()) for root in kept):
            del sys.modules[name]
    sys.path[:] = path
    DBOS.destroy(destroy_registry=True)


def start_node(nodes: list[Node], name: str, app: str, url: str, tmp_path: Path, env: dict[str, str]) -> Node:
    node = Node(name, app, 2, url=url, config_file=None, env=env, workdir=tmp_path, extra_config=FAST, cwd=REPO_ROOT)
    nodes.append(node)
    node.start()
    return node


def statuses(db: psycopg.Connection, ids: list[str]) -> dict[str, str]:
    return dict(db.execute("SELECT workflow_uuid, status FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)", (ids,)).fetchall())


def wait_all_succeeded(db: psycopg.Connection, ids: list[str], node: Node, timeout: float = 90) -> None:
    def done() -> bool:
        assert node.proc is not None and node.proc.poll() is None, f"the node exited:\n{node.log_tail()}"
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
    workload = BuiltinWorkload(seed=1, waves=2, scale=0.5)
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
            expected = BuiltinWorkload(seed=1, waves=1, scale=0.25).wave(lossy, 0)
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
    # Sized to the schedule's wave interval: the limited queue's ~3.5 jobs/s for 4 s.
    assert (JOBS_PER_WAVE, FANOUTS_PER_WAVE) == (12, 2)
    assert names.count(spec.JOB) == 12 and names.count(spec.FANOUT) == 2
    assert len({i.options["workflow_id"] for i in plan}) == 14
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


# -- an app's workload: --workload MODULE:FUNCTION ------------------------------------------------

WORKLOAD_MODULE = '''
from runtime import DBOSClient

calls = []


def only_wave(wave):
    calls.append(("only_wave", wave))
    return [f"id-{wave}-a", f"id-{wave}-b", f"id-{wave}-a"]


def everything(client, wave, waves, seed):
    calls.append(("everything", isinstance(client, DBOSClient), wave, waves, seed))
    return (f"id-{seed}-{wave}-{w}" for w in range(waves))


def keywords(*args, **kwargs):
    calls.append(("keywords", args, sorted(kwargs)))
    return []


def with_default(seed, *, extra=5):
    calls.append(("with_default", seed, extra))
    return [str(seed)]


def handles(client, wave):
    return [client.enqueue({"workflow_name": "nobody_runs_this", "queue_name": "nobody", "workflow_id": f"h-{wave}-{i}"})
            for i in range(2)]


def statuses(client, wave):
    return client.list_workflows(workflow_ids=[f"h-{wave}-0", f"h-{wave}-1"])


async def coroutine(wave):
    return [f"async-{wave}"]


class Holder:
    @staticmethod
    def method(wave):
        return [f"held-{wave}"]


NOT_A_FUNCTION = 42


def needs_more(wave, limit):
    return []


def positional_only(wave, /):
    return []


def returns_none(wave):
    return None


def returns_number(wave):
    return 7


def returns_text(wave):
    return "id-1"


def returns_mapping(wave):
    return {"id-1": 1}


def returns_numbers(wave):
    return ["id-1", 2]
'''


@pytest.fixture
def workload_dir(tmp_path, monkeypatch, clean_imports) -> Path:
    """A directory, the current one, holding the module ``chaos_wl_mod`` (also as a file)."""
    (tmp_path / "chaos_wl_mod.py").write_text(WORKLOAD_MODULE)
    (tmp_path / "pkg_wl").mkdir()
    (tmp_path / "pkg_wl" / "__init__.py").write_text("")
    (tmp_path / "pkg_wl" / "inner.py").write_text(WORKLOAD_MODULE)
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "needs_dep.py").write_text("import no_such_dependency_of_pgfleet\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_dotted_module_function_gets_only_the_arguments_it_declares(workload_dir, client):
    workload = AppWorkload("chaos_wl_mod:only_wave", seed=4, waves=3)
    assert workload.name == "chaos_wl_mod:only_wave"
    # Each id once, in order, none of them exact: an app's outputs are its own.
    assert workload.wave(client, 2) == [ExpectedOutcome("id-2-a"), ExpectedOutcome("id-2-b")]
    assert AppWorkload("chaos_wl_mod:everything", seed=4, waves=3).wave(client, 1) == [
        ExpectedOutcome(f"id-4-1-{w}") for w in range(3)
    ]
    assert AppWorkload("chaos_wl_mod:keywords", seed=4, waves=3).wave(client, 0) == []
    assert AppWorkload("chaos_wl_mod:with_default", seed=9, waves=1).wave(client, 0) == [ExpectedOutcome("9")]
    assert AppWorkload("pkg_wl.inner:Holder.method").wave(client, 5) == [ExpectedOutcome("held-5")]
    calls = sys.modules["chaos_wl_mod"].calls
    assert calls == [
        ("only_wave", 2), ("everything", True, 1, 3, 4), ("keywords", (), ["client", "seed", "wave", "waves"]), ("with_default", 9, 5),
    ]  # fmt: skip


def test_a_path_function_may_return_handles_statuses_or_a_coroutine(workload_dir, client, db):
    path = str(workload_dir / "chaos_wl_mod.py")
    assert AppWorkload(f"{path}:handles").wave(client, 0) == [ExpectedOutcome("h-0-0"), ExpectedOutcome("h-0-1")]
    assert statuses(db, ["h-0-0", "h-0-1"]) == {"h-0-0": "ENQUEUED", "h-0-1": "ENQUEUED"}
    assert AppWorkload(f"{path}:statuses").wave(client, 0) == [ExpectedOutcome("h-0-0"), ExpectedOutcome("h-0-1")]
    assert AppWorkload("chaos_wl_mod.py:coroutine").wave(client, 3) == [ExpectedOutcome("async-3")]  # relative to the cwd


def test_load_workload_picks_the_builtin_or_the_app_s(workload_dir):
    builtin = load_workload(None, seed=5, waves=3, scale=0.5)
    assert isinstance(builtin, BuiltinWorkload) and (builtin.seed, builtin.waves, builtin.scale, builtin.name) == (5, 3, 0.5, "built-in")
    app = load_workload("chaos_wl_mod:everything", seed=5, waves=3)
    assert isinstance(app, AppWorkload) and (app.seed, app.waves, app.arguments) == (5, 3, ("client", "wave", "waves", "seed"))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("chaos_wl_mod", r"expected MODULE:FUNCTION"),
        ("chaos_wl_mod:", r"expected MODULE:FUNCTION"),
        (":only_wave", r"expected MODULE:FUNCTION"),
        ("chaos_wl_mod:only wave", r"expected MODULE:FUNCTION"),
        ("no_such_module_xyz:fn", r"no module named 'no_such_module_xyz' importable from .*give a path to a \.py file"),
        ("pkg_wl.missing:fn", r"no module named 'pkg_wl\.missing'"),
        ("broken:fn", r"importing 'broken' failed: RuntimeError: boom at import"),
        ("broken.py:fn", r"importing 'broken\.py' failed: RuntimeError: boom at import"),
        ("needs_dep:fn", r"importing 'needs_dep' failed: ModuleNotFoundError: No module named 'no_such_dependency_of_pgfleet'"),
        ("missing.py:fn", r"no such file 'missing\.py'"),
        ("chaos_wl_mod:nope", r"'chaos_wl_mod' has no attribute 'nope'"),
        ("chaos_wl_mod:Holder.nope", r"'Holder' has no attribute 'nope'"),
        ("chaos_wl_mod:NOT_A_FUNCTION", r"'NOT_A_FUNCTION' is 42 \(int\), not a function"),
        ("chaos_wl_mod:needs_more", r"parameter 'limit' is not one we give: .* only client, wave, waves, seed"),
        ("chaos_wl_mod:positional_only", r"parameter 'wave' is positional-only"),
    ],
)
def test_a_bad_spec_is_refused_at_load_time_saying_why(workload_dir, given, message):
    with pytest.raises(WorkloadError, match=message) as info:
        load_workload(given, seed=1, waves=1)
    assert repr(given) in str(info.value)  # every message names the spec it is about


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("returns_none", r"wave 0: the function returned None; it must return the workflows it started"),
        ("returns_number", r"returned 7 \(int, not iterable\)"),
        ("returns_text", r"returned 'id-1' \(str\), not an iterable of ids"),
        ("returns_mapping", r"returned \{'id-1': 1\} \(dict\), not an iterable of ids"),
        ("returns_numbers", r"item 1 of what it returned is 2, which is not a workflow id"),
    ],
)
def test_a_return_that_names_no_workflows_is_refused_at_the_first_wave(workload_dir, client, function, message):
    workload = AppWorkload(f"chaos_wl_mod:{function}")  # loads: only calling it can tell
    with pytest.raises(WorkloadError, match=message):
        workload.wave(client, 0)


# -- examples/orders.py ---------------------------------------------------------------------------


def test_the_orders_example_chaos_workload_runs_to_success(sys_url, db, client, nodes, tmp_path, monkeypatch, clean_imports):
    monkeypatch.chdir(REPO_ROOT)  # the spec as the RUNBOOK writes it, relative to the repository
    workload = load_workload("examples/orders.py:chaos_workload", seed=1, waves=2)
    expected = workload.wave(client, 1)
    ids = [o.workflow_id for o in expected]
    assert len(ids) == 40 and not any(o.exact for o in expected)  # ORDERS_PER_WAVE of examples/orders.py
    assert workload.wave(client, 1) == expected and row_count(db) == 40  # fixed ids: again, nothing new
    node = start_node(nodes, "orders", "examples/orders.py", sys_url, tmp_path, {"ORDERS_STEP_SECONDS": "0.01"})
    wait_all_succeeded(db, ids, node)
    assert client.retrieve_workflow(ids[0]).get_result()["order_id"] == ids[0]
