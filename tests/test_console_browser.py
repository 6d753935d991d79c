"""`pgfleet console` in a real browser (issue #13): headless Chromium, driven by Selenium, loads the
console's pages against a real fleet (`pgfleet supervise` nodes of tests/apps/console_app.py on a
database of this module) and checks what a person sees, and the database, after they act.

The pages are found by the console's test markers (``data-test=...``, see the issue's URL
contract). The fleet, the console and the browser are started once for the module: every test
makes workflows of its own id prefix, so none depends on another's rows.
With ``PGFLEET_CONSOLE_SCREENSHOTS=1`` the tests also save the main pages under ops/console/.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from browser import launch, save_full_page
from conftest import REPO_ROOT, TEMPLATE_DB, _create_database, wait_until
from runtime import DBOSClient

APP = "tests/apps/console_app.py"  # relative to the nodes' working directory, REPO_ROOT (as shown on the pages)
SCREENSHOTS = REPO_ROOT / "ops" / "console"
TOKEN = "browser-test-token-7f3a"
PAGE_WAIT_SEC = 30  # bounded: a page that never shows what is awaited fails the test
FLEET_CONFIG = "heartbeat_interval_sec = 0.25\nmember_timeout_sec = 1.5\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A real subprocess of the pgfleet CLI, its output in files (a full pipe would block it)."""

    def __init__(self, name: str, args: list[str], url: str, logs: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.out = name, logs / f"{name}.log"
        # An inherited console token would protect every console of the module: only `env` sets one.
        inherited = {k: v for k, v in os.environ.items() if k != "PGFLEET_CONSOLE_TOKEN"}
        full_env = {**inherited, "PYTHONPATH": str(REPO_ROOT), "PGFLEET_SYSTEM_DATABASE_URL": url, **(env or {})}
        with open(self.out, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "cluster.process.cli", *args], cwd=REPO_ROOT, env=full_env,
                                         stdout=out, stderr=subprocess.STDOUT, text=True)

    def log(self) -> str:
        return self.out.read_text()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Console(Proc):
    """`pgfleet console` on a free loopback port, answering HTTP before it is handed out."""

    def __init__(self, name: str, url: str, logs: Path, *flags: str, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        super().__init__(name, ["console", "--host", "127.0.0.1", "--port", str(self.port), *flags], url, logs, env)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_until(self._answers, f"{name} to answer HTTP on port {self.port}", 30, interval=0.1)

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
        try:
            self.request("GET", "/")
        except OSError:
            return False
        return True

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        """One plain HTTP request, redirects NOT followed (a refusal must not hide behind one). A
        form is posted with the Origin a page of this console sends, so a refusal is not the
        console's cross-site check but the one under test."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            body = urllib.parse.urlencode(form) if form is not None else None
            as_a_form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": self.base, "Sec-Fetch-Site": "same-origin"}
            all_headers = {**(as_a_form if form is not None else {}), **(headers or {})}
            conn.request(method, path, body=body, headers=all_headers)
            answer = conn.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read().decode(errors="replace")
        finally:
            conn.close()


class Fleet:
    """The module's system database, its nodes and its open console."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url, self.logs = url, logs
        self.db = psycopg.connect(url, autocommit=True)
        self.config = logs / "fleet.toml"
        self.config.write_text(FLEET_CONFIG)
        self.procs: list[Proc] = []
        self.web: Console | None = None  # the module's open console (no token, not read-only)
        self.client = DBOSClient(system_database_url=url)

    def node(self, name: str, *flags: str) -> Proc:
        node = Proc(name, ["supervise", APP, "--name", name, "--grace", "2", "--config", str(self.config), *flags], self.url, self.logs)
        self.procs.append(node)
        return node

    def console(self, name: str, *flags: str, env: dict[str, str] | None = None) -> Console:
        console = Console(name, self.url, self.logs, *flags, env=env)
        self.procs.append(console)
        return console

    def active(self, prefix: str) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT executor_id, pid FROM dbos.pgfleet_executors WHERE status = 'active' AND executor_id LIKE %s", (prefix + "-%",))}

    def status(self, workflow_id: str) -> str | None:
        row = self.db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()
        return row[0] if row else None

    def enqueue(self, workflow: str, workflow_id: str, arg: str, queue: str = "console_jobs") -> None:
        self.client.enqueue({"workflow_name": workflow, "queue_name": queue, "workflow_id": workflow_id}, arg)

    def wait_status(self, workflow_id: str, status: str, timeout: float = 30) -> None:
        wait_until(lambda: self.status(workflow_id) == status, f"{workflow_id} to be {status} (is {self.status(workflow_id)})", timeout)

    def close(self) -> None:
        for proc in self.procs:  # all asked at once, so their graceful stops overlap
            if proc.proc.poll() is None:
                proc.proc.terminate()
        for proc in reversed(self.procs):
            proc.stop()
        self.client.destroy()
        self.db.close()


@pytest.fixture(scope="module")
def _driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """The module's browser, started first: without one every test skips, saying why, before a fleet starts."""
    driver = launch(tmp_path_factory.mktemp("chromedriver") / "chromedriver.log")
    if isinstance(driver, str):
        pytest.skip(driver)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def fleet(_driver: WebDriver, pg_server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    name = f"pgfleet_console_browser_{os.getpid()}"
    fleet = Fleet(_create_database(pg_server_url, name, TEMPLATE_DB), tmp_path_factory.mktemp("console-fleet"))
    try:
        fleet.node("nodea", "--workers", "2", "--queues", "console_jobs")
        wait_until(lambda: len(fleet.active("nodea")) == 2, "nodea's two workers to join", 60)
        fleet.web = fleet.console("console")
        yield fleet
    finally:
        logs = "\n".join(f"--- {p.name}:\n{p.log()}" for p in fleet.procs)
        fleet.close()
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        print(logs)  # shown by pytest only when a test of the module failed


@pytest.fixture
def driver(_driver: WebDriver) -> WebDriver:
    """The module's browser, with no cookie left by an earlier test (each logs in itself)."""
    _driver.delete_all_cookies()
    return _driver


def _css(marker: str, **attrs: str) -> str:
    return f'[data-test="{marker}"]' + "".join(f'[data-{k}="{v}"]' for k, v in attrs.items())


def _wait_for(driver: WebDriver, css: str, what: str, timeout: float = PAGE_WAIT_SEC) -> list[WebElement]:
    """The elements matching ``css`` once there is one (the page may reload meanwhile)."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, css) or None)
    except TimeoutException as e:  # it says only "Message:": say what was awaited, and on what page
        raise AssertionError(f"{what}: no {css} on {driver.current_url} after {timeout}s; page text:\n"
                             f"{driver.find_element(By.TAG_NAME, 'body').text[:2000]}") from e


def _wait_url(driver: WebDriver, suffix: str, timeout: float = PAGE_WAIT_SEC) -> None:
    """Until the browser is on a page whose path ends with ``suffix`` (a redirect is followed)."""
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: urllib.parse.urlparse(d.current_url).path.rstrip("/").endswith(suffix))
    except TimeoutException as e:
        raise AssertionError(f"the browser is on {driver.current_url}, not on .../{suffix.lstrip('/')}, after {timeout}s") from e


def _acted(fleet: Fleet, driver: WebDriver, workflow_id: str, statuses: tuple[str, ...], what: str) -> None:
    """Until the row has one of ``statuses`` after an action in the browser; else fail showing the page it is on."""
    try:
        wait_until(lambda: fleet.status(workflow_id) in statuses, f"{what}: {workflow_id} to be {'/'.join(statuses)}", 15)
    except AssertionError as e:
        page = driver.find_element(By.TAG_NAME, "body").text[:2000]
        raise AssertionError(f"{e} (is {fleet.status(workflow_id)}); the browser is on {driver.current_url}:\n{page}") from None


def _ids(driver: WebDriver, marker: str) -> set[str]:
    return {e.get_attribute("data-workflow") for e in driver.find_elements(By.CSS_SELECTOR, _css(marker))}


def _snap(driver: WebDriver, name: str) -> None:
    if os.environ.get("PGFLEET_CONSOLE_SCREENSHOTS") == "1":
        save_full_page(driver, SCREENSHOTS / f"{name}.png")


def _text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def _web(fleet: Fleet) -> Console:
    assert fleet.web is not None
    return fleet.web


def test_the_fleet_page_lists_the_members(fleet: Fleet, driver: WebDriver) -> None:
    driver.get(_web(fleet).base + "/")
    for executor in sorted(fleet.active("nodea")):
        _wait_for(driver, _css("member-row", executor=executor, status="active"), f"{executor} listed as active")
    shown = {e.get_attribute("data-executor") for e in driver.find_elements(By.CSS_SELECTOR, _css("member-row"))}
    known = {r[0] for r in fleet.db.execute("SELECT executor_id FROM dbos.pgfleet_executors")}
    assert shown == known, f"the page shows {shown}, the database has {known}"


def test_a_killed_worker_shows_dead_and_its_takeover_appears_without_a_reload(fleet: Fleet, driver: WebDriver) -> None:
    # Node B serves only console_kill, so the workflow enqueued there is its worker's.
    node_b = fleet.node("nodeb", "--workers", "1", "--queues", "console_kill")
    worker = wait_until(lambda: fleet.active("nodeb"), "nodeb's worker to join", 60)
    fleet.enqueue("console_wait", "kill-1", "owned by nodeb", queue="console_kill")
    fleet.wait_status("kill-1", "PENDING")
    assert fleet.db.execute("SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid = 'kill-1'").fetchone()[0] == "nodeb-0"
    driver.get(_web(fleet).base + "/")
    _wait_for(driver, _css("member-row", executor="nodeb-0", status="active"), "nodeb-0 listed as active")
    # SIGKILL the supervisor first, so nothing replaces or fences the worker; then the worker.
    os.kill(node_b.proc.pid, signal.SIGKILL)
    node_b.proc.wait(10)
    try:
        os.kill(worker["nodeb-0"], signal.SIGKILL)
    except ProcessLookupError:
        pass  # it already died with its supervisor, as workers do
    # No reload from here on: the page refreshes itself.
    _wait_for(driver, _css("member-row", executor="nodeb-0", status="dead"), "the killed worker shown as dead")
    _wait_for(driver, _css("takeover-row", workflow="kill-1"), "the takeover of kill-1 shown")
    assert fleet.db.execute("SELECT count(*) FROM dbos.pgfleet_takeovers WHERE workflow_uuid = 'kill-1'").fetchone()[0] >= 1
    assert "nodeb-0" in _text(driver, _css("takeover-row", workflow="kill-1")), "the takeover row names who died"
    _snap(driver, "fleet")


def test_the_workflows_list_filters_by_status(fleet: Fleet, driver: WebDriver) -> None:
    expected = {"SUCCESS": {"flt-ok-1", "flt-ok-2"}, "ERROR": {"flt-bad-1"}, "PENDING": {"flt-wait-1"}}
    for workflow_id in sorted(expected["SUCCESS"]):
        fleet.enqueue("console_echo", workflow_id, workflow_id)
    fleet.enqueue("console_fail", "flt-bad-1", "flt-bad-1")
    fleet.enqueue("console_wait", "flt-wait-1", "flt-wait-1")
    for status, ids in expected.items():
        for workflow_id in ids:
            fleet.wait_status(workflow_id, status)
    base = _web(fleet).base
    driver.get(base + "/workflows?prefix=flt-")
    _wait_for(driver, _css("workflow-row"), "the workflows list")
    assert _ids(driver, "workflow-row") == set().union(*expected.values())
    _snap(driver, "workflows")
    for status, ids in expected.items():
        driver.get(f"{base}/workflows?status={status}&prefix=flt-")
        _wait_for(driver, _css("workflow-row"), f"the {status} workflows")
        assert _ids(driver, "workflow-row") == ids, f"status={status}"
    # As a person does it: the list's own filter form (its fields are the query parameters).
    driver.get(base + "/workflows")
    status_field = _wait_for(driver, '[name="status"]', "the status filter")[0]
    if status_field.tag_name == "select":
        Select(status_field).select_by_value("ERROR")
    else:
        status_field.send_keys("ERROR")
    prefix_field = driver.find_element(By.CSS_SELECTOR, '[name="prefix"]')
    prefix_field.clear()
    prefix_field.send_keys("flt-")
    prefix_field.submit()
    _wait_url(driver, "/workflows")
    wait_until(lambda: _ids(driver, "workflow-row") == expected["ERROR"], f"the form's ERROR filter (shows {_ids(driver, 'workflow-row')})", 10)


def test_the_workflows_list_pages_through_every_row_once(fleet: Fleet, driver: WebDriver) -> None:
    made = {f"pg-{i}" for i in range(5)}
    for workflow_id in sorted(made):
        fleet.enqueue("console_echo", workflow_id, workflow_id)
    for workflow_id in made:
        fleet.wait_status(workflow_id, "SUCCESS")
    driver.get(_web(fleet).base + "/workflows?prefix=pg-&limit=2")
    pages: list[set[str]] = []
    while True:
        _wait_for(driver, _css("workflow-row"), f"page {len(pages) + 1} of pg-*")
        pages.append(_ids(driver, "workflow-row"))
        older = driver.find_elements(By.CSS_SELECTOR, '[data-test="next-page"]')  # the console's marker for the next page
        if not older or len(pages) > len(made):
            break
        here = driver.current_url
        older[0].click()
        WebDriverWait(driver, PAGE_WAIT_SEC, poll_frequency=0.1).until(lambda d: d.current_url != here)  # on the next page
    assert [len(p) for p in pages] == [2, 2, 1], pages
    assert set().union(*pages) == made, "every workflow shown once, none twice"


def test_a_cancel_from_the_page_cancels_the_workflow(fleet: Fleet, driver: WebDriver) -> None:
    fleet.enqueue("console_wait", "cxl-1", "to be cancelled")
    fleet.wait_status("cxl-1", "PENDING")
    wait_until(lambda: fleet.db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'cxl-1'").fetchone()[0],
               "cxl-1's first step recorded")
    driver.get(_web(fleet).base + "/workflows/cxl-1")
    assert "PENDING" in _wait_for(driver, _css("workflow-status"), "cxl-1's status")[0].text
    assert driver.find_elements(By.CSS_SELECTOR, _css("step-row")), "cxl-1's recorded step is listed"
    _snap(driver, "workflow")
    driver.find_element(By.CSS_SELECTOR, _css("cancel-action")).click()
    _wait_for(driver, _css("confirm"), "the cancel confirmation page")
    assert fleet.status("cxl-1") == "PENDING", "nothing is done before the confirmation"
    driver.find_element(By.CSS_SELECTOR, _css("confirm")).click()
    _acted(fleet, driver, "cxl-1", ("CANCELLED",), "the confirmed cancel")
    # Redirected back to the workflow's page, which now says so.
    _wait_url(driver, "/workflows/cxl-1")
    assert "CANCELLED" in _wait_for(driver, _css("workflow-status"), "the workflow page after the cancel")[0].text


def test_a_script_in_an_input_shows_as_text_and_never_runs(fleet: Fleet, driver: WebDriver) -> None:
    # No double quotes in it: a console may show inputs as JSON, which would escape them.
    payload = "<script>window.pwned = 1</script><img src=x onerror=window.pwned=2>"
    fleet.enqueue("console_echo", "xss-1", payload)
    fleet.wait_status("xss-1", "SUCCESS")
    driver.get(_web(fleet).base + "/workflows/xss-1")
    shown = _wait_for(driver, _css("workflow-input"), "xss-1's input")[0].text
    assert "<script>window.pwned = 1</script>" in shown, f"the input is shown as text: {shown!r}"
    assert "<img src=x onerror=window.pwned=2>" in shown
    assert driver.execute_script("return typeof window.pwned") == "undefined", "a script of the input ran"
    assert not driver.find_elements(By.CSS_SELECTOR, 'img[src="x"]'), "the input's markup became an element"


def _login(driver: WebDriver, base: str, token: str) -> None:
    """Submit the login form and wait for the console's answer: ``submit()`` returns before it,
    and a cookie read at once can find none yet (seen in CI)."""
    driver.get(base + "/login")
    field = _wait_for(driver, 'input[name="token"]', "the login form")[0]
    field.send_keys(token)
    field.submit()
    try:
        WebDriverWait(driver, PAGE_WAIT_SEC, poll_frequency=0.05).until(expected_conditions.staleness_of(field))
    except TimeoutException as e:
        raise AssertionError(f"the login form's page was not replaced after {PAGE_WAIT_SEC}s ({driver.current_url})") from e


def test_a_token_console_refuses_an_action_without_the_token_and_the_login_form_works(fleet: Fleet, driver: WebDriver) -> None:
    token_file = fleet.logs / "console.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    guarded = fleet.console("guarded-console", "--token-file", str(token_file))
    fleet.enqueue("console_wait", "tok-1", "guarded")
    fleet.wait_status("tok-1", "PENDING")

    status, headers, _ = guarded.request("POST", "/workflows/tok-1/cancel", form={"confirm": "yes"})
    refused = status in (401, 403) or (status in (302, 303, 307) and "/login" in headers.get("location", ""))
    assert refused, f"a POST without the token answered {status} {headers.get('location', '')}"
    assert guarded.request("GET", "/", headers={"Authorization": "Bearer " + TOKEN})[0] == 200, "the bearer header is a token"
    assert guarded.request("GET", "/", headers={"Authorization": "Bearer wrong"})[0] != 200

    driver.get(guarded.base + "/workflows/tok-1/cancel")
    assert not driver.find_elements(By.CSS_SELECTOR, _css("confirm")), "the confirmation page was shown without the token"
    _login(driver, guarded.base, "not-the-token")
    _wait_for(driver, _css("error"), "a wrong token refused")

    _login(driver, guarded.base, TOKEN)
    cookies = driver.get_cookies()
    assert any(c.get("httpOnly") for c in cookies), f"the login set no HttpOnly cookie: {cookies}"
    assert TOKEN not in (driver.execute_script("return document.cookie") or ""), "page scripts can read the token"
    driver.get(guarded.base + "/workflows/tok-1")
    driver.find_element(By.CSS_SELECTOR, _css("cancel-action")).click()
    _wait_for(driver, _css("confirm"), "the confirmation page once logged in")
    driver.delete_all_cookies()  # the same click, now without the token
    driver.find_element(By.CSS_SELECTOR, _css("confirm")).click()
    # Wait for the console's answer (a refusal or its login form) before reading the row.
    _wait_for(driver, f'{_css("error")}, input[name="token"]', "the console's refusal of a confirm without the token")
    assert fleet.status("tok-1") == "PENDING", "a confirm without the token cancelled the workflow"

    _login(driver, guarded.base, TOKEN)
    driver.get(guarded.base + "/workflows/tok-1/cancel")
    _wait_for(driver, _css("confirm"), "the confirmation page after logging in again")[0].click()
    _acted(fleet, driver, "tok-1", ("CANCELLED",), "the cancel confirmed once logged in")


def test_a_read_only_console_answers_403_to_actions(fleet: Fleet) -> None:
    read_only = fleet.console("read-only-console", "--read-only")
    fleet.enqueue("console_wait", "ro-1", "read only")
    fleet.wait_status("ro-1", "PENDING")
    assert read_only.request("GET", "/workflows/ro-1")[0] == 200
    for action, form in (("cancel", {"confirm": "yes"}), ("resume", {"confirm": "yes"}), ("fork", {"confirm": "yes", "start_step": "1"})):
        status = read_only.request("POST", f"/workflows/ro-1/{action}", form=form)[0]
        assert status == 403, f"{action} on a read-only console answered {status}"
    assert fleet.status("ro-1") == "PENDING"
    assert not _forks(fleet, "ro-1")
    # The same POST to the open console does cancel: the 403s above are the read-only refusal.
    status, headers, _ = _web(fleet).request("POST", "/workflows/ro-1/cancel", form={"confirm": "yes"})
    assert status in (302, 303) and headers.get("location", "").rstrip("/").endswith("/workflows/ro-1"), (status, headers)
    assert fleet.status("ro-1") == "CANCELLED"


def test_the_queues_page_and_its_json_show_each_queue(fleet: Fleet, driver: WebDriver) -> None:
    fleet.enqueue("console_wait", "q-1", "keeps console_jobs busy")
    fleet.wait_status("q-1", "PENDING")
    web = _web(fleet)
    status, headers, body = web.request("GET", "/api/queues")
    assert status == 200 and headers.get("content-type", "").startswith("application/json"), (status, headers)
    figures = {q["name"]: q for q in json.loads(body)}
    assert "console_jobs" in figures, figures
    assert figures["console_jobs"]["pending"] >= 1 and figures["console_jobs"]["worker_concurrency"] == 8
    driver.get(web.base + "/queues")
    row = _wait_for(driver, _css("queue-row", queue="console_jobs"), "console_jobs on the queues page")[0]
    assert "console_jobs" in row.text
    _snap(driver, "queues")


def test_resume_and_fork_from_the_page(fleet: Fleet, driver: WebDriver) -> None:
    base = _web(fleet).base
    fleet.enqueue("console_wait", "rsm-1", "to resume")
    fleet.wait_status("rsm-1", "PENDING")
    fleet.client.cancel_workflow("rsm-1")
    fleet.wait_status("rsm-1", "CANCELLED")
    driver.get(base + "/workflows/rsm-1")
    _wait_for(driver, _css("resume-action"), "rsm-1's resume action")[0].click()
    _wait_for(driver, _css("confirm"), "the resume confirmation page")[0].click()
    _acted(fleet, driver, "rsm-1", ("ENQUEUED", "PENDING"), "the confirmed resume")

    fleet.enqueue("console_echo", "frk-1", "to fork")
    fleet.wait_status("frk-1", "SUCCESS")
    driver.get(base + "/workflows/frk-1")
    _wait_for(driver, _css("fork-action"), "frk-1's fork action")[0].click()
    field = _wait_for(driver, '[name="start_step"]', "the fork form's step")[0]
    if field.tag_name == "select":
        Select(field).select_by_index(0)  # the first recorded step, whatever the numbering
    else:
        field.clear()
        field.send_keys("1")
    assert not _forks(fleet, "frk-1"), "nothing is forked before the confirmation"
    driver.find_element(By.CSS_SELECTOR, _css("confirm")).click()
    wait_until(lambda: _forks(fleet, "frk-1"), "a fork of frk-1 recorded", 30)


def _forks(fleet: Fleet, workflow_id: str) -> list[str]:
    return [r[0] for r in fleet.db.execute("SELECT workflow_uuid FROM dbos.workflow_status WHERE forked_from = %s", (workflow_id,))]


def test_hidden_values_stay_off_the_page(fleet: Fleet, driver: WebDriver) -> None:
    hiding = fleet.console("hiding-console", "--hide-values")
    secret = "card-4111-1111-1111-1111"
    fleet.enqueue("console_echo", "hid-1", secret)
    fleet.wait_status("hid-1", "SUCCESS")
    driver.get(_web(fleet).base + "/workflows/hid-1")
    _wait_for(driver, _css("workflow-status"), "hid-1's page on the open console")
    assert secret in driver.page_source, "the open console shows the input (so its absence below means something)"
    driver.get(hiding.base + "/workflows/hid-1")
    assert "SUCCESS" in _wait_for(driver, _css("workflow-status"), "hid-1's page with --hide-values")[0].text
    assert secret not in driver.page_source, "--hide-values showed the input or output"
