"""Cancel, resume and fork from a step: each shown first on a confirm page of its own (GET),
done by a POST of that form (``confirm=yes``; for a fork ``start_step=N``), then redirected to
the workflow's page (a fork: to its new copy's). Each goes through the functions of
``runtime.workflows_admin`` that ``pgfleet workflow cancel|resume`` reach through
``DBOSClient`` (``cancel_workflows``, ``resume_workflows``; ``fork_workflow`` as
``DBOSClient.fork_workflow``), and each is logged with who asked.
"""

from __future__ import annotations

import urllib.parse

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from runtime.errors import DBOSException
from runtime.workflows_admin import cancel_workflows, fork_workflow, resume_workflows
from sysdb.logs import get_logger
from sysdb.workflow_rows import WorkflowRow

from .render import SECURITY_HEADERS, error_page, page
from .state import Console, console_of
from .workflow_views import FINISHED, RESUMABLE, workflow_detail

__all__ = ["action_form", "action_post", "ACTIONS"]

log = get_logger("pgfleet.console")

ACTIONS = ("cancel", "resume", "fork")
_EXPLAIN = {
    "cancel": "It becomes CANCELLED and leaves its queue; its owner, wherever it runs, stops at its next step.",
    "resume": "It goes back to work on the internal queue; an executor runs it from its first unfinished step.",
    "fork": "A copy of it starts under a new id, reusing the results of the steps before the one you choose.",
}


def _refusal(console: Console, row: WorkflowRow, action: str) -> str | None:
    """Why ``action`` cannot be done to this workflow now (None: it can)."""
    if action == "cancel" and (row.status in FINISHED or row.status == "CANCELLED"):
        return f"workflow {row.workflow_uuid!r} is {row.status}: nothing to cancel"
    if action == "resume" and row.status not in RESUMABLE:
        return f"workflow {row.workflow_uuid!r} is {row.status}: only {' and '.join(RESUMABLE)} workflows are resumed"
    return None


def _target(request: Request, console: Console) -> tuple[WorkflowRow | None, Response | None]:
    """The workflow an action names, or the response that refuses it."""
    action = request.path_params["action"]
    if action not in ACTIONS:
        return None, error_page(f"no action {action!r} (one of {', '.join(ACTIONS)})", 404)
    if console.read_only:
        return None, error_page("this console is read-only (--read-only): it cancels, resumes and forks nothing", 403)
    workflow_id = request.path_params["workflow_id"]
    row = console.db.workflows.status(workflow_id)
    if row is None:
        return None, error_page(f"no workflow {workflow_id!r}", 404)
    return row, None


def action_form(request: Request) -> Response:
    """GET /workflows/{id}/{action}: the confirm page (a tail that names no action is part of
    the workflow's id: its page is shown)."""
    console = console_of(request)
    if request.path_params["action"] not in ACTIONS:
        request.path_params["workflow_id"] += "/" + request.path_params.pop("action")
        return workflow_detail(request)
    row, refused = _target(request, console)
    if row is None:
        assert refused is not None
        return refused
    action = request.path_params["action"]
    refusal = _refusal(console, row, action)
    if refusal is not None:
        return error_page(refusal, 409)
    steps = console.db.steps.list_recorded(row.workflow_uuid) if action == "fork" else []
    next_step = (max(s.function_id for s in steps) + 1) if steps else 1
    return page("confirm.html", console.context(w=row, action=action, explanation=_EXPLAIN[action], steps=steps, next_step=next_step))


async def action_post(request: Request) -> Response:
    """POST /workflows/{id}/{action}: do it (form ``confirm=yes``), then show the workflow."""
    console = console_of(request)
    form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
    # The database work runs off the event loop, as Starlette runs the sync pages.
    return await run_in_threadpool(_do_action, request, console, {k: v[-1] for k, v in form.items()})


def _do_action(request: Request, console: Console, form: dict[str, str]) -> Response:
    row, refused = _target(request, console)
    if row is None:
        assert refused is not None
        return refused
    action = request.path_params["action"]
    if form.get("confirm") != "yes":
        return error_page(f"not confirmed: {action} needs the confirm button of its own page (confirm=yes)", 400)
    refusal = _refusal(console, row, action)
    if refusal is not None:
        return error_page(refusal, 409)
    access = console.access(request)
    start_step: int | None = None
    if action == "fork":
        text = form.get("start_step", "").strip()
        if not text.lstrip("-").isdigit():
            return error_page(f"start_step={text!r} is not a step number", 400)
        start_step = int(text)
    try:
        shown = _run(console, action, row.workflow_uuid, start_step)
    except DBOSException as exc:
        log.warning("console action failed", action=action, workflow_id=row.workflow_uuid, client=access.client,
                    with_token=access.with_token, error=str(exc))
        return error_page(f"{action} failed: {exc}", 409)
    log.info("console action", action=action, workflow_id=row.workflow_uuid, client=access.client, with_token=access.with_token,
             previous_status=row.status, start_step=start_step, result_workflow_id=shown)
    return RedirectResponse(f"/workflows/{urllib.parse.quote(shown, safe='')}", status_code=303, headers=SECURITY_HEADERS)


def _run(console: Console, action: str, workflow_id: str, start_step: int | None) -> str:
    """Do the action; the id of the workflow to show afterwards."""
    if action == "cancel":
        cancel_workflows(console.db, [workflow_id])
        return workflow_id
    if action == "resume":
        resume_workflows(console.db, [workflow_id])
        return workflow_id
    assert start_step is not None
    return fork_workflow(console.db, workflow_id, start_step)
