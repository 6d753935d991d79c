"""The browser harness itself (tests/browser.py), proven on a static page served by a tiny local
HTTP server: what the console's browser tests stand on works before the console is involved."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from browser import find_browser, launch, save_full_page

PAGE = b"""<!doctype html>
<html><head><title>harness</title></head>
<body>
<p data-test="greeting">hello from a static page</p>
<form method="post" action="/submitted"><input name="token" value=""><button data-test="confirm">go</button></form>
<script>document.body.dataset.scripted = "yes";</script>
</body></html>"""


class _Handler(http.server.BaseHTTPRequestHandler):
    posted: list[bytes] = []

    def do_GET(self) -> None:
        self._answer(PAGE)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Handler.posted.append(body)
        self._answer(b"<!doctype html><p data-test='done'>posted</p>")

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads no access log
        pass


@pytest.fixture
def static_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_headless_chromium_loads_a_page_runs_its_script_and_submits_a_form(static_site: str, tmp_path: Path) -> None:
    driver = launch(tmp_path / "chromedriver.log")
    if isinstance(driver, str):
        pytest.skip(driver)
    try:
        driver.get(static_site + "/")
        assert driver.title == "harness"
        assert driver.find_element(By.CSS_SELECTOR, '[data-test="greeting"]').text == "hello from a static page"
        # The page's own script ran: this is a real browser, not an HTML parser.
        assert driver.execute_script("return document.body.dataset.scripted") == "yes"
        driver.find_element(By.NAME, "token").send_keys("s3cret")
        driver.find_element(By.CSS_SELECTOR, '[data-test="confirm"]').click()
        # The click navigates: wait for the new page (a lookup during the navigation is aborted).
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.find_element(By.CSS_SELECTOR, '[data-test="done"]').text == "posted")
        assert _Handler.posted[-1] == b"token=s3cret"
        save_full_page(driver, tmp_path / "page.png")
        assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        driver.quit()


def test_a_missing_or_mismatched_browser_is_a_reason_not_a_crash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PGFLEET_CHROMIUM", str(tmp_path / "no-such-chromium"))
    reason = find_browser()
    assert isinstance(reason, str) and reason.startswith("a Chromium browser") and "no-such-chromium" in reason and "apt-get install" in reason
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\necho 'Chromium 1.2.3.4'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PGFLEET_CHROMIUM", str(fake))
    fake_driver = tmp_path / "fake-chromedriver"
    fake_driver.write_text("#!/bin/sh\necho 'ChromeDriver 2.0.0.1 (abc)'\n")
    fake_driver.chmod(0o755)
    monkeypatch.setenv("PGFLEET_CHROMEDRIVER", str(fake_driver))
    reason = find_browser()
    assert isinstance(reason, str) and "2.0.0.1" in reason and "1.2.3.4" in reason and "does not match" in reason


def test_a_browser_that_does_not_start_is_a_reason_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = find_browser()
    if isinstance(found, str):
        pytest.skip(found)
    # Says the real browser's version (so the driver matches) but exits at once when run.
    broken = tmp_path / "broken-chromium"
    broken.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && echo 'Chromium {found.version}' && exit 0\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PGFLEET_CHROMIUM", str(broken))
    reason = launch(tmp_path / "chromedriver.log")
    assert isinstance(reason, str), "a browser that exits at once gave a session"
    assert "did not start" in reason and "broken-chromium" in reason, reason
