"""The web console (issue #13) through Starlette's TestClient against a real database with real
workflows run by an in-process DBOS: each page renders with its markers, filters and keyset
paging, escaping, hidden values, read-only, the token, the bind refusal, and each action
changing the row as the CLI's does (and logged). Also `pgfleet console` as a real subprocess
and the console beside `pgfleet supervise --console-port`."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import psycopg
import pytest
from starlette.testclient import TestClient

from cluster.process.cli import build_parser, main
from cluster.process.cli.console_command import supervised_console
from cluster.process.console import LOOPBACK_HOSTS, ConsoleError, check_bind, create_app, load_token
from cluster.process.console.render import HIDDEN
from conftest import REPO_ROOT, wait_until
from runtime import DBOS, DBOSClient, SetWorkflowID
from sysdb import SystemDatabase
from sysdb.workflow_pages import PageCursor, WorkflowFilter, workflow_page_query

TOKEN = "s3cret-console-token"


@pytest.fixture(autouse=True)
def no_console_token(monkeypatch):
    monkeypatch.delenv("PGFLEET_CONSOLE_TOKEN", raising=False)


@pytest.fixture
def console_db(sys_url: str) -> Iterator[SystemDatabase]:
    db = SystemDatabase(sys_url, pool_size=2, application_name="console-test")
    db.open(run_migrations=False)
    yield db
    db.close()


def client_for(db: SystemDatabase, **options) -> TestClient:
    return TestClient(create_app(db, **options), follow_redirects=False)


def rows(html: str, marker: str, attribute: str) -> list[str]:
    """The values of ``attribute`` on every element marked ``data-test=marker``, in page order."""
    found = []
    for tag in re.findall(r"<[^>]*data-test=\"" + re.escape(marker) + r"\"[^>]*>", html):
        match = re.search(attribute + r"=\"([^\"]*)\"", tag)
        assert match, f"{marker} without {attribute}: {tag}"
        found.append(match.group(1))
    return found


def park(url: str, workflow_id: str, *args) -> None:
    """Enqueue a workflow nobody can run (no executor knows its name): it waits ENQUEUED."""
    client = DBOSClient(system_database_url=url)
    try:
        client.enqueue({"workflow_name": "nobody_runs_this", "queue_name": "parked", "workflow_id": workflow_id}, *args)
    finally:
        client.destroy()


# -- pages ------------------------------------------------------------------------------------


def test_the_fleet_page_shows_members_leader_takeovers_and_the_leader_log(dbos, db, console_db):
    db.execute("INSERT INTO dbos.pgfleet_executors (executor_id, epoch, host, pid, status) VALUES ('gone-0', 77, 'h2', 4242, 'dead')")
    db.execute("INSERT INTO dbos.workflow_status (workflow_uuid, status, name) VALUES ('moved-1', 'SUCCESS', 'w')")
    db.execute(
        "INSERT INTO dbos.pgfleet_takeovers (workflow_uuid, from_executor_id, from_epoch, to_executor_id, to_epoch, by_executor_id, leader_term, "
        "at, owner_last_seen) VALUES ('moved-1', 'gone-0', 77, 'test-executor', 78, 'test-executor', 3, now(), now() - interval '6.5 seconds')"
    )
    db.execute(
        "INSERT INTO dbos.pgfleet_leader_log (term, executor_id, action, detail) "
        "VALUES (3, 'test-executor', 'declare_dead', '{\"executor_id\": \"gone-0\"}')"
    )
    page = client_for(console_db).get("/")
    assert page.status_code == 200
    members = dict(zip(rows(page.text, "member-row", "data-executor"), rows(page.text, "member-row", "data-status")))
    assert members == {"test-executor": "active", "gone-0": "dead"}
    assert rows(page.text, "takeover-row", "data-workflow") == ["moved-1"]
    assert "gone-0@77" in page.text and "test-executor@78" in page.text
    assert "6.5" in page.text  # how long the owner had been silent when its work moved
    assert "declare_dead" in page.text and 'http-equiv="refresh"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_the_queues_page_and_its_json_show_limits_and_counts(dbos, sys_url, console_db):
    DBOS.register_queue("refunds", concurrency=2, worker_concurrency=1)
    park(sys_url, "parked-a")
    park(sys_url, "parked-b")
    client = client_for(console_db)
    figures = {q["name"]: q for q in client.get("/api/queues").json()}
    assert figures["parked"]["enqueued"] == 2 and figures["parked"]["pending"] == 0
    assert figures["parked"]["oldest_enqueued_age_sec"] >= 0
    assert figures["refunds"]["concurrency"] == 2 and figures["refunds"]["worker_concurrency"] == 1
    page = client.get("/queues")
    assert page.status_code == 200
    assert {"parked", "refunds"} <= set(rows(page.text, "queue-row", "data-queue"))


def _run_some(count: int) -> list[str]:
    @DBOS.workflow(name="console_ok")
    def ok(i):
        return i

    @DBOS.workflow(name="console_bad")
    def bad(i):
        raise ValueError(f"bad {i}")

    ids = []
    for i in range(count):
        workflow_id = f"run-{i:02d}"
        with SetWorkflowID(workflow_id):
            if i % 3 == 2:
                with pytest.raises(ValueError):
                    bad(i)
            else:
                ok(i)
        ids.append(workflow_id)
    return ids


def test_the_workflow_list_filters_and_pages_by_cursor_without_overlap(dbos, console_db):
    ids = _run_some(8)
    client = client_for(console_db)
    seen: list[str] = []
    url = "/workflows?limit=3"
    pages = 0
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        got = rows(page.text, "workflow-row", "data-workflow")
        assert got and not set(got) & set(seen), f"page {pages + 1} overlaps: {got}"
        seen += got
        pages += 1
        nexts = rows(page.text, "next-page", "href")
        url = nexts[0].replace("&amp;", "&") if nexts else ""
    assert pages == 3 and sorted(seen) == sorted(ids)
    assert seen == sorted(ids, reverse=True)  # newest first (created in id order)
    errors = rows(client.get("/workflows?status=ERROR").text, "workflow-row", "data-workflow")
    assert errors == ["run-05", "run-02"]
    assert rows(client.get("/workflows?name=console_bad&status=SUCCESS").text, "workflow-row", "data-workflow") == []
    assert rows(client.get("/workflows?prefix=run-0&executor=test-executor&limit=2").text, "workflow-row", "data-workflow") == ["run-07", "run-06"]
    assert rows(client.get("/workflows?until=2000-01-01T00:00:00Z").text, "workflow-row", "data-workflow") == []
    assert len(rows(client.get("/workflows?since=2000-01-01T00:00:00").text, "workflow-row", "data-workflow")) == 8
    for bad_query, says in (("status=DONE", "unknown status DONE"), ("since=yesterday", "not an ISO 8601 time"),
                            ("after=nope", "not a page cursor"), ("limit=0", "a page holds 1 to 500")):
        refused = client.get(f"/workflows?{bad_query}")
        assert refused.status_code == 400 and 'data-test="error"' in refused.text and says in refused.text, bad_query


def test_the_workflow_page_shows_input_outcome_history_steps_events_streams_messages(dbos, db, console_db):
    @DBOS.step()
    def add(a, b):
        return a + b

    @DBOS.workflow(name="console_child")
    def child(x):
        return x * 10

    @DBOS.workflow(name="console_parent")
    def parent(a, b, label="x"):
        total = add(a, b)
        DBOS.set_event("progress", {"total": total})
        DBOS.write_stream("ticks", "tick-1")
        return child(total), label

    with SetWorkflowID("parent-1"):
        assert parent(2, 3, label="y") == (50, "y")
    DBOS.send("parent-1", "hello-there", topic="greetings")
    page = client_for(console_db).get("/workflows/parent-1")
    assert page.status_code == 200
    assert re.search(r'data-test="workflow-status">SUCCESS<', page.text)
    assert re.search(r"data-test=\"workflow-input\">2, 3, label=&#39;y&#39;<", page.text)
    assert "(50, &#39;y&#39;)" in page.text
    steps = db.execute("SELECT function_id, child_workflow_id FROM dbos.operation_outputs WHERE workflow_uuid = 'parent-1' ORDER BY 1").fetchall()
    assert rows(page.text, "step-row", "data-step") == [str(s[0]) for s in steps] and len(steps) >= 4
    children = {s[1] for s in steps if s[1]}
    assert children and all(f'href="/workflows/{c}"' in page.text for c in children)  # the child, linked
    assert "{&#39;total&#39;: 5}" in page.text and "tick-1" in page.text and "hello-there" in page.text
    assert "created, started" in page.text and "finished SUCCESS" in page.text
    assert client_for(console_db).get("/workflows/nope").status_code == 404


def test_a_script_in_an_input_is_shown_as_text(dbos, console_db):
    @DBOS.workflow(name="console_echo")
    def echo(text):
        return text

    with SetWorkflowID("xss-1"):
        echo("<script>window.pwned = 1</script>")
    page = client_for(console_db).get("/workflows/xss-1")
    assert "<script>" not in page.text
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page.text


def test_hide_values_shows_no_input_output_or_event(dbos, console_db):
    @DBOS.workflow(name="console_secret")
    def secret(card):
        DBOS.set_event("card", card)
        return card[-4:]

    with SetWorkflowID("secret-1"):
        secret("4111-1111-1111-9876")
    page = client_for(console_db, hide_values=True).get("/workflows/secret-1")
    assert page.status_code == 200
    assert "4111" not in page.text and "9876" not in page.text
    assert page.text.count(HIDDEN) >= 3  # the input, the output, the event


# -- security ---------------------------------------------------------------------------------


def test_read_only_answers_403_to_every_action_and_changes_nothing(sys_url, db, console_db):
    park(sys_url, "ro-1")
    client = client_for(console_db, read_only=True)
    assert 'data-test="cancel-action"' not in client.get("/workflows/ro-1").text
    for action in ("cancel", "resume", "fork"):
        assert client.get(f"/workflows/ro-1/{action}").status_code == 403
        refused = client.post(f"/workflows/ro-1/{action}", data={"confirm": "yes", "start_step": "1"})
        assert refused.status_code == 403 and 'data-test="error"' in refused.text
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'ro-1'").fetchone()[0] == "ENQUEUED"


def test_a_token_protected_console_refuses_without_it_and_accepts_the_header_and_the_cookie(sys_url, db, console_db):
    park(sys_url, "tok-1")
    client = client_for(console_db, token=TOKEN)
    for path in ("/", "/queues", "/workflows", "/workflows/tok-1", "/workflows/tok-1/cancel"):
        refused = client.get(path)
        assert refused.status_code == 401 and 'data-test="error"' in refused.text, path
    assert client.get("/api/queues").status_code == 401
    assert client.post("/workflows/tok-1/cancel", data={"confirm": "yes"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'tok-1'").fetchone()[0] == "ENQUEUED"
    assert client.get("/api/queues", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.post("/login", data={"token": "wrong"}).status_code == 401
    signed_in = client.post("/login", data={"token": TOKEN, "next": "/workflows"})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/workflows"
    cookie = signed_in.headers["set-cookie"]
    assert "httponly" in cookie.lower() and TOKEN not in cookie
    assert client.get("/workflows").status_code == 200  # the client kept the cookie
    assert client.get("/login?token=" + TOKEN + "&next=//evil.example").headers["location"] == "/"


def test_a_post_from_another_site_and_a_foreign_host_header_are_refused(sys_url, db, console_db):
    # Without a token, any page the operator opens could post a form to 127.0.0.1 (CSRF) or
    # reach it under its own name (DNS rebinding): both are refused.
    park(sys_url, "csrf-1")
    client = TestClient(create_app(console_db, allowed_hosts=LOOPBACK_HOSTS), base_url="http://127.0.0.1:8765", follow_redirects=False)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:8765"}):
        refused = client.post("/workflows/csrf-1/cancel", data={"confirm": "yes"}, headers=headers)
        assert refused.status_code == 403 and "another site" in refused.text, headers
    assert _row(db, "csrf-1")[0] == "ENQUEUED"
    assert client.get("/", headers={"Host": "rebound.example:8765"}).status_code == 400
    # What a browser sends for the console's own form (Origin null too under some referrer policies).
    same_site = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/workflows/csrf-1/cancel", data={"confirm": "yes"}, headers=same_site).status_code == 303
    assert _row(db, "csrf-1")[0] == "CANCELLED"


def test_a_non_loopback_bind_without_a_token_refuses_to_start(tmp_path, capsys, sys_url):
    for host in ("127.0.0.1", "::1", "localhost"):
        check_bind(host, None)
    for host in ("0.0.0.0", "10.1.2.3", "console.example"):
        with pytest.raises(ConsoleError, match="without a token"):
            check_bind(host, None)
        check_bind(host, TOKEN)
    code = main(["console", "--host", "0.0.0.0", "--database-url", sys_url])
    assert code == 2 and "refusing to serve the console on 0.0.0.0 without a token" in capsys.readouterr().err
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert load_token(str(token_file), {}) == TOKEN
    assert load_token(None, {"PGFLEET_CONSOLE_TOKEN": TOKEN}) == TOKEN
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConsoleError, match="is empty"):
        load_token(str(tmp_path / "empty"), {})
    with pytest.raises(ConsoleError, match="cannot read"):
        load_token(str(tmp_path / "missing"), {})


# -- actions ----------------------------------------------------------------------------------


def _row(db: psycopg.Connection, workflow_id: str) -> tuple:
    return db.execute(
        "SELECT status, queue_name, recovery_attempts FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)
    ).fetchone()


def test_cancel_and_resume_change_the_row_as_the_cli_does_and_are_logged(sys_url, db, console_db, caplog, capsys):
    park(sys_url, "by-console")
    park(sys_url, "by-cli")
    client = client_for(console_db)
    form = client.get("/workflows/by-console/cancel")
    assert form.status_code == 200 and 'data-test="confirm"' in form.text
    assert client.post("/workflows/by-console/cancel", data={}).status_code == 400  # not confirmed
    assert _row(db, "by-console")[0] == "ENQUEUED"
    with caplog.at_level(logging.INFO, logger="pgfleet.console"):
        done = client.post("/workflows/by-console/cancel", data={"confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/workflows/by-console"
    assert main(["workflow", "cancel", "by-cli", "--database-url", sys_url]) == 0
    assert _row(db, "by-console") == _row(db, "by-cli") and _row(db, "by-console")[0] == "CANCELLED"
    assert "action='cancel'" in caplog.text and "workflow_id='by-console'" in caplog.text
    assert "client='testclient'" in caplog.text and "with_token=False" in caplog.text
    again = client.get("/workflows/by-console/cancel")
    assert again.status_code == 409 and "nothing to cancel" in again.text

    assert 'data-test="resume-action"' in client.get("/workflows/by-console").text
    assert client.post("/workflows/by-console/resume", data={"confirm": "yes"}).status_code == 303
    assert main(["workflow", "resume", "by-cli", "--database-url", sys_url]) == 0
    assert _row(db, "by-console") == _row(db, "by-cli") and _row(db, "by-console")[0] == "ENQUEUED"
    assert "action='resume'" in caplog.text
    capsys.readouterr()


def test_fork_from_a_chosen_step_runs_a_copy_and_shows_it(dbos, db, console_db, caplog):
    calls = []

    @DBOS.step()
    def first():
        calls.append("first")
        return 1

    @DBOS.step()
    def second():
        calls.append("second")
        return 2

    @DBOS.workflow(name="console_forkable")
    def forkable():
        return first() + second()

    with SetWorkflowID("fork-me"):
        assert forkable() == 3
    calls.clear()
    client = client_for(console_db, token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    form = client.get("/workflows/fork-me/fork", headers=auth)
    assert 'name="start_step"' in form.text and 'data-test="confirm"' in form.text
    assert client.post("/workflows/fork-me/fork", data={"confirm": "yes", "start_step": "two"}, headers=auth).status_code == 400
    with caplog.at_level(logging.INFO, logger="pgfleet.console"):
        done = client.post("/workflows/fork-me/fork", data={"confirm": "yes", "start_step": "2"}, headers=auth)
    assert done.status_code == 303
    new_id = done.headers["location"].rsplit("/", 1)[1]
    assert new_id != "fork-me"
    assert db.execute("SELECT forked_from FROM dbos.workflow_status WHERE workflow_uuid = %s", (new_id,)).fetchone()[0] == "fork-me"
    assert DBOS.retrieve_workflow(new_id).get_result(timeout_seconds=20) == 3
    assert calls == ["second"]  # step 1's result was reused
    assert "action='fork'" in caplog.text and "with_token=True" in caplog.text and "start_step=2" in caplog.text
    assert 'data-test="workflow-status">SUCCESS' in client.get(done.headers["location"], headers=auth).text


# -- performance: the list's keyset queries use indexes --------------------------------------


def test_the_filtered_list_with_a_cursor_reads_an_index_not_the_table(db):
    # 30000 finished rows, filtered by what DBOS's indexes serve in created_at order. (A filter
    # on a rare name, queue or executor has no index of its own since migration 0011: their
    # cost fell on every workflow. The planner then walks created_at and filters, or on a
    # small table like this one, scans it: ops/bench/console.py measures it on 1 M rows.)
    db.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, executor_id, created_at, updated_at) "
        "SELECT 'bulk-' || i, CASE WHEN i % 50 = 0 THEN 'ERROR' ELSE 'SUCCESS' END, "
        "CASE WHEN i % 1000 = 7 THEN 'rare' ELSE 'name-' || (i % 40) END, "
        "CASE WHEN i % 1000 = 7 THEN 'rare-q' ELSE 'queue-' || (i % 7) END, "
        "CASE WHEN i % 1000 = 7 THEN 'rare-node' ELSE 'node-' || (i % 5) END, "
        "1700000000000 + i, 1700000000000 + i FROM generate_series(1, 30000) i"
    )
    db.execute("ANALYZE dbos.workflow_status")
    cursor = PageCursor(1700000020000, "bulk-20000")
    for where, index in (
        (WorkflowFilter(), None), (WorkflowFilter(statuses=("ERROR",)), None), (WorkflowFilter(names=("name-3",)), None),
        (WorkflowFilter(statuses=("SUCCESS", "ERROR")), None), (WorkflowFilter(since_ms=1700000010000, until_ms=1700000025000), None),
    ):
        query, params = workflow_page_query(where, cursor, 50)
        plan = "\n".join(r[0] for r in db.execute(psycopg.sql.SQL("EXPLAIN ") + query, params).fetchall())
        assert "Seq Scan" not in plan, f"{where}:\n{plan}"
        assert (index or "Index") in plan, f"{where}:\n{plan}"


# -- as real processes ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def test_pgfleet_console_as_a_subprocess_serves_the_fleet_page(sys_url, tmp_path):
    port = _free_port()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster.process.cli", "console", "--port", str(port), "--database-url", sys_url, "--token-file", str(token_file)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def fleet() -> str | None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Authorization": f"Bearer {TOKEN}"})
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    return str(response.read().decode())
            except OSError:
                return None

        page = wait_until(fleet, "the console to serve its fleet page", timeout=30)
        assert "<h1>Fleet</h1>" in page
        assert _get(f"http://127.0.0.1:{port}/") is None  # 401 without the token (urllib raises)
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_a_port_in_use_is_a_clear_failure(sys_url, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["console", "--port", str(port), "--database-url", sys_url]) == 1
    assert f"the console could not listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_supervisor_serves_the_console_beside_its_workers(sys_url):
    port = _free_port()
    args = build_parser().parse_args(["supervise", "app.py", "--console-port", str(port), "--console-read-only"])
    assert (args.console_port, args.console_host, args.console_token_file) == (port, "127.0.0.1", None)
    with supervised_console(args, {"system_database_url": sys_url}):
        page = wait_until(lambda: _get(f"http://127.0.0.1:{port}/queues"), "the supervisor's console")
        assert "<h1>Queues</h1>" in page and "read-only" in page
    assert _get(f"http://127.0.0.1:{port}/queues") is None  # stopped with the block


def test_pgfleet_supervise_with_console_port_serves_its_own_workers(sys_url, tmp_path):
    port = _free_port()
    config = tmp_path / "node.toml"
    config.write_text("heartbeat_interval_sec = 0.25\nmember_timeout_sec = 1.5\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PGFLEET_TEST_LEDGER": str(tmp_path / "ledger"), "PGFLEET_SYSTEM_DATABASE_URL": sys_url}
    app = str(REPO_ROOT / "tests" / "apps" / "supervised_app.py")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster.process.cli", "supervise", app, "--name", "consolenode", "--workers", "1", "--grace", "3",
         "--config", str(config), "--console-port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def worker_shown() -> str | None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            page = _get(f"http://127.0.0.1:{port}/")
            shown = page and 'data-executor="consolenode-0" data-status="active"' in page
            return page if shown and 'data-test="supervisor-row" data-supervisor="consolenode@' in page else None

        wait_until(worker_shown, "the supervisor's console to show its worker and itself", timeout=60)
        proc.send_signal(2)  # SIGINT: the supervisor drains and the console stops with it
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert _get(f"http://127.0.0.1:{port}/") is None
