"""DBOS.run_step and DBOS.step_status: steps run by call, their names and retries, and what a
step sees of itself."""

from dbos import DBOS, SetWorkflowID, StepOptions
from observe import attempt, database_url, report, see

DBOS(config={"name": "differential-run-step", "system_database_url": database_url()})

calls = []


def status_now():
    status = DBOS.step_status
    return None if status is None else [status.step_id, status.current_attempt, status.max_attempts]


def plain(x, y=1):
    calls.append(x)
    return [x + y, status_now(), DBOS.step_id]


def flaky(fail_times):
    calls.append("flaky")
    seen = status_now()
    if seen[1] < fail_times:
        raise ValueError(f"attempt {seen[1]} failed")
    return seen


def failing():
    raise KeyError("always")


@DBOS.step()
def decorated():
    return [status_now(), DBOS.run_step(None, plain, 100)]


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0)
def decorated_flaky():
    seen = status_now()
    if seen[1] == 0:
        raise ValueError("first attempt")
    return seen


@DBOS.workflow()
def runs_steps():
    options: StepOptions = {"name": "custom_plain"}
    out = [
        DBOS.run_step(None, plain, 1, y=2),
        DBOS.run_step(options, plain, 2),
        DBOS.run_step({"retries_allowed": True, "max_attempts": 4, "interval_seconds": 0}, flaky, 2),
        decorated(),
        decorated_flaky(),
        status_now(),
    ]
    try:
        DBOS.run_step({"name": "named_failure"}, failing)
    except KeyError as exc:
        out.append(f"caught {exc!r}")
    try:
        DBOS.run_step({"retries_allowed": True, "max_attempts": 2, "interval_seconds": 0}, failing)
    except Exception as exc:
        out.append(f"caught {type(exc).__name__}: {exc}")
    return out


if __name__ == "__main__":
    DBOS.launch()
    see("outside a workflow", DBOS.run_step(None, plain, 5))
    see("step_status outside", DBOS.step_status)
    with SetWorkflowID("steps-1"):
        see("in a workflow", runs_steps())
    bodies = len(calls)
    with SetWorkflowID("steps-1"):
        see("replayed", runs_steps())
    see("bodies ran again on replay", len(calls) - bodies)
    see("steps", [[s["function_id"], s["function_name"], s["output"], type(s["error"]).__name__] for s in DBOS.list_workflow_steps("steps-1")])
    attempt("preemptible sync step", lambda: DBOS.step(preemptible=True)(plain))
    DBOS.destroy()
    report()
