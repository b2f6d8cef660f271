"""Shared real-Chromium helpers for tests: plain Selenium, offline, one profile directory per driver.

`make_driver(profile_dir)` starts headless Chromium with the system chromedriver; `chromium` is a pytest
fixture factory that quits every driver it made.

`require_chromium()` is the one rule for tests that need Chromium; conftest.py applies it to every test marked
`browser` (the only way a test says it needs Chromium): where Chromium is missing the test skips with the reason,
except under CI (CI=true: CI installs Chromium), where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM_BINARY = "/usr/lib/chromium/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MISSING = "needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"


# The `browser` marker under the name some tests import: it means the same, and the same rule applies to it.
needs_chromium = pytest.mark.browser


def have_chromium() -> bool:
    """Chromium and chromedriver where the tests look for them (Debian's packages)."""
    return os.path.exists(CHROMIUM_BINARY) and shutil.which(CHROMEDRIVER) is not None


def under_ci() -> bool:
    """CI=true (GitHub Actions, GitLab, ... set it): the CI job installs Chromium, so its absence is a failure."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_chromium() -> None:
    """Return when Chromium is there; else skip the calling test with the reason, or fail it under CI."""
    if have_chromium():
        return
    if under_ci():
        pytest.fail(f"Chromium is missing under CI (CI=true), which must install it: {MISSING}", pytrace=False)
    pytest.skip(MISSING)


def chrome_options(profile_dir: Path, *, headless: bool = True) -> webdriver.ChromeOptions:
    """Options for an offline test Chromium on `profile_dir` (created if missing)."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM_BINARY
    for arg in (
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(arg)
    if headless:
        options.add_argument("--headless=new")
    return options


def make_driver(profile_dir: Path, *, headless: bool = True) -> WebDriver:
    """Start Chromium on `profile_dir` with the system chromedriver; Selenium Manager never runs."""
    os.environ["SE_OFFLINE"] = "true"
    service = Service(CHROMEDRIVER)
    return webdriver.Chrome(service=service, options=chrome_options(profile_dir, headless=headless))


def set_client_timeout(driver: WebDriver, seconds: float) -> None:
    """Give up on any WebDriver HTTP call after `seconds` (a hung renderer otherwise blocks calls for good)."""
    driver.command_executor.client_config.timeout = seconds


def kill_driver_tree(driver: WebDriver) -> None:
    """SIGKILL chromedriver and every process under it (Chromium and its helpers)."""
    process = getattr(driver.service, "process", None)
    if process is None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(process.pid)
        tree = [*root.children(recursive=True), root]
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(tree, timeout=5)


def quit_driver(driver: WebDriver, *, probe_s: float = 3.0) -> None:
    """Quit gracefully (Chromium flushes the profile); a hung page (no answer in `probe_s` s) is killed instead.

    selenium's quit() swallows a hung browser's errors but spends ~18 s in retries, so probe first.
    """
    set_client_timeout(driver, probe_s)
    try:
        driver.execute_script("return 1")
    except Exception:  # urllib3 ReadTimeoutError, WebDriverException (already gone), ...
        kill_driver_tree(driver)
    set_client_timeout(driver, 30)
    with contextlib.suppress(Exception):
        driver.quit()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[..., WebDriver]]:
    """A factory `chromium(name="profile", headless=True)`: a driver on tmp_path/name, quit at teardown."""
    made: list[WebDriver] = []

    def factory(name: str = "profile", *, headless: bool = True) -> WebDriver:
        driver = make_driver(tmp_path / name, headless=headless)
        made.append(driver)
        return driver

    yield factory
    for driver in made:
        quit_driver(driver)


def wait_css(driver: WebDriver, css: str, timeout: float = 10.0) -> WebElement:
    """The first element matching `css`, waiting up to `timeout` seconds for it to appear."""
    found: WebElement = WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: (d.find_elements("css selector", css) or [None])[0]
    )
    return found


def wait_gone(driver: WebDriver, css: str, timeout: float = 10.0) -> None:
    """Wait up to `timeout` seconds until nothing matches `css`."""
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: not d.find_elements("css selector", css))
