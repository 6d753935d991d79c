"""A real headless browser for the console's tests: Debian's ``chromium`` driven through its
``chromedriver`` by Selenium.

Nothing is downloaded here: Selenium is always given the driver's path, so its Selenium Manager
(which would fetch a driver and a browser build from the network) never runs. ``.ci/run`` installs
the two Debian packages when they are missing; when a browser still cannot be had, ``find_browser``
says why and the tests skip with that reason instead of failing CI.

``PGFLEET_CHROMIUM`` and ``PGFLEET_CHROMEDRIVER`` name other executables (a Chrome for Testing
pair, say); the driver's major version must match the browser's, or the session fails to start
with an error that does not name the mismatch, so it is checked here first.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome", "chromium-headless-shell")
DRIVERS = ("chromedriver", "/usr/lib/chromium/chromedriver")
WINDOW = (1280, 900)
INSTALL_HINT = "install Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`; .ci/run does it as root)"


@dataclass(frozen=True)
class Browser:
    """A browser executable and the chromedriver of the same major version."""

    binary: str
    driver: str
    version: str


def _which(candidates: tuple[str, ...], override: str | None) -> str | None:
    for name in ((override,) if override else candidates):
        found = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


def _version(executable: str) -> str | None:
    """The dotted version an executable prints for --version (browser or driver), or None."""
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\b(\d+)\.\d+\.\d+\.\d+\b", out)
    return match.group(0) if match else None


def find_browser() -> Browser | str:
    """The browser to drive, or the reason there is none (said as a skip reason)."""
    binary_override, driver_override = os.environ.get("PGFLEET_CHROMIUM"), os.environ.get("PGFLEET_CHROMEDRIVER")
    binary, driver = _which(BROWSERS, binary_override), _which(DRIVERS, driver_override)
    if binary is None or driver is None:
        missing = " and ".join(
            f"{what} ({override} from {variable})" if override else what
            for what, found, override, variable in (("a Chromium browser", binary, binary_override, "PGFLEET_CHROMIUM"),
                                                    ("chromedriver", driver, driver_override, "PGFLEET_CHROMEDRIVER"))
            if found is None)
        return f"{missing} not found on this machine: {INSTALL_HINT}"
    browser_version, driver_version = _version(binary), _version(driver)
    if browser_version is None or driver_version is None:
        return f"could not read the version of {binary if browser_version is None else driver} (--version): {INSTALL_HINT}"
    if browser_version.split(".")[0] != driver_version.split(".")[0]:
        return (f"chromedriver {driver_version} ({driver}) does not match the browser {browser_version} ({binary}): "
                "install both from one source (Debian's chromium and chromium-driver are released together)")
    return Browser(binary, driver, browser_version)


def start_driver(browser: Browser, log_path: Path) -> webdriver.Chrome:
    """A headless Chromium session; the driver's own log goes to ``log_path``."""
    options = webdriver.ChromeOptions()
    options.binary_location = browser.binary
    # --no-sandbox: CI runs as root, where Chromium refuses to start with its sandbox.
    # --disable-dev-shm-usage: containers often have a 64 MB /dev/shm, too small for a renderer.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(arg)
    service = Service(executable_path=browser.driver, log_output=str(log_path))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver


def launch(log_path: Path) -> webdriver.Chrome | str:
    """A started headless session, or the reason there is none: no browser, or one that does not
    start here (a missing shared library, say; the driver's log at ``log_path`` says more)."""
    from selenium.common.exceptions import WebDriverException

    found = find_browser()
    if isinstance(found, str):
        return found
    try:
        return start_driver(found, log_path)
    except WebDriverException as e:
        first = (e.msg or str(e)).strip().splitlines()[0] if (e.msg or str(e)).strip() else type(e).__name__
        return f"headless {found.binary} {found.version} did not start with {found.driver}: {first} (log: {log_path})"


def save_full_page(driver: webdriver.Chrome, path: Path) -> None:
    """A PNG of the whole page, not only the viewport (Chromium's DevTools capture beyond it)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
