"""The offline launcher in real headless Chromium against the local WhatsApp Web simulator."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from urllib3.exceptions import ReadTimeoutError

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import Home, WhatsAppConfig, read_events
from continuity.worker.browser import (
    Browser,
    BrowserLaunchError,
    browser_tmp_dir,
    find_driver,
    find_profile_holders,
    launch,
    private_driver_path,
)
from continuity.worker.browser.hygiene import SINGLETON_NAMES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.name != "posix", reason="these tests drive Debian's Chromium with POSIX signals"),
]

QR = "div[data-ref]"
MAIN = "#pane-side"
HEADLESS = WhatsAppConfig(headless=True)

# A separate process that launches the browser, opens the page, prints its pids and waits to be killed.
LAUNCHER_CHILD = """
import json, sys, time
from pathlib import Path
from continuity.watchdog.instance import WhatsAppConfig
from continuity.watchdog.instance import Home
from continuity.worker.browser import launch
browser = launch(Home(Path(sys.argv[1])), WhatsAppConfig(headless=True))
browser.driver.get(sys.argv[2])
print(json.dumps({"browser": browser.browser_pid, "driver": browser.driver_pid}), flush=True)
time.sleep(600)
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A running simulator that notices a scan within 0.2 s."""
    with Simulator(port=0, qr_rotate_s=20.0, poll_s=0.2) as simulator:
        yield simulator


@pytest.fixture
def browsers(home: Home) -> Iterator[list[Browser]]:
    """Browsers a test launched; closed (and the profile swept) even when the test fails."""
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        browser.close()


def _open(home: Home, browsers: list[Browser], config: WhatsAppConfig = HEADLESS) -> Browser:
    browser = launch(home, config)
    browsers.append(browser)
    return browser


def _screen(browser: Browser, url: str, timeout_s: float = 20.0) -> str:
    """Load `url` and wait for the QR or the main screen; returns "qr" or "main"."""
    browser.driver.get(url)

    def shown(driver: Any) -> str | bool:
        if driver.find_elements(By.CSS_SELECTOR, MAIN):
            return "main"
        return "qr" if driver.find_elements(By.CSS_SELECTOR, QR) else False

    return str(WebDriverWait(browser.driver, timeout_s, 0.05).until(shown))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_uc_launch_loads_the_page_and_stop_is_clean(home: Home, sim: Simulator, browsers: list[Browser]) -> None:
    """uc launch shows the QR; close() leaves no process on the profile and no Singleton links."""
    browser = _open(home, browsers)
    assert browser.kind == "undetected"
    assert _screen(browser, sim.url) == "qr"
    pids = [browser.browser_pid, browser.driver_pid]
    assert browser.close() == []  # everything exited by itself after CDP Browser.close: nothing to reap
    assert all(_gone(pid) for pid in pids if pid is not None)
    assert find_profile_holders(home.profile_dir, driver_exe=private_driver_path(home)) == []
    assert [n for n in SINGLETON_NAMES if os.path.lexists(home.profile_dir / n)] == []
    prefs = json.loads((home.profile_dir / "Default" / "Preferences").read_text())
    assert prefs["profile"]["exit_type"] == "Normal"
    kinds = [e["event"] for e in read_events(home.events_file)]
    assert "browser_started" in kinds and "browser_closed" in kinds


def test_windowed_config_without_a_display_runs_headless(
    home: Home, sim: Simulator, browsers: list[Browser], monkeypatch: pytest.MonkeyPatch
) -> None:
    """headless = false on a server with no DISPLAY: Chromium starts headless at once (not a 60 s hang), once said."""
    from continuity.worker.browser import launcher

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(launcher, "_told_headless", False)
    started = time.monotonic()
    browser = _open(home, browsers, WhatsAppConfig(headless=False))
    assert time.monotonic() - started < 30
    assert _screen(browser, sim.url) == "qr"
    found = [e for e in read_events(home.events_file) if e["event"] in ("browser_headless_forced", "browser_started")]
    assert [e["event"] for e in found] == ["browser_headless_forced", "browser_started"]
    assert found[1]["headless"] is True and "DISPLAY" in found[0]["reason"]


def test_restart_on_same_profile_is_logged_in(home: Home, sim: Simulator, browsers: list[Browser]) -> None:
    """After a scan and a clean stop, a relaunch on the same profile shows the main screen and no QR."""
    first = _open(home, browsers)
    assert _screen(first, sim.url) == "qr"
    sim.scan()
    WebDriverWait(first.driver, 20, 0.05).until(lambda d: d.find_elements(By.CSS_SELECTOR, MAIN))
    first.close()
    second = _open(home, browsers)
    assert _screen(second, sim.url) == "main"
    assert second.driver.find_elements(By.CSS_SELECTOR, "#side")
    assert second.driver.find_elements(By.CSS_SELECTOR, QR) == []


def test_relaunch_after_kill9_of_the_launching_process_sweeps_orphans(
    home: Home, sim: Simulator, browsers: list[Browser]
) -> None:
    """kill -9 of the process that launched the browser orphans it; the next launch sweeps them in seconds."""
    child = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER_CHILD, str(home.root), sim.url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        pids = json.loads(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    orphans = find_profile_holders(home.profile_dir, driver_exe=private_driver_path(home))
    orphan_pids = {p.pid for p in orphans}
    assert {pids["browser"], pids["driver"]} <= orphan_pids and len(orphan_pids) >= 4
    start = time.monotonic()
    browser = _open(home, browsers)
    elapsed = time.monotonic() - start
    assert _screen(browser, sim.url) == "qr"
    assert elapsed < 20, f"relaunch took {elapsed:.1f} s (uc hangs 60 s when orphans hold the profile)"
    assert all(_gone(pid) for pid in orphan_pids)
    [swept] = [e for e in read_events(home.events_file) if e["event"] == "browser_orphans_swept"]
    # A Chromium helper may exit by itself between our listing and the sweep (all are gone, asserted above);
    # the browser and chromedriver never do: the sweep must have killed them.
    assert {pids["browser"], pids["driver"]} <= set(swept["pids"])


def test_stale_lock_naming_another_host_is_cleared_and_launch_succeeds(
    home: Home, sim: Simulator, browsers: list[Browser]
) -> None:
    """A SingletonLock from another hostname (container renamed) makes Chromium refuse; hygiene clears it."""
    home.profile_dir.mkdir(parents=True)
    os.symlink("some-other-host-4242", home.profile_dir / "SingletonLock")
    os.symlink("123456789", home.profile_dir / "SingletonCookie")
    browser = _open(home, browsers)
    assert _screen(browser, sim.url) == "qr"
    cleared = [e for e in read_events(home.events_file) if e["event"] == "profile_lock_cleared"]
    assert cleared and "some-other-host" in cleared[0]["reason"]


def test_system_chromedriver_is_unchanged_by_a_uc_launch(home: Home, sim: Simulator, browsers: list[Browser]) -> None:
    """uc patches the private copy only: the system chromedriver's sha256 is the same after a launch."""
    system = find_driver().path
    before = _sha256(system)
    browser = _open(home, browsers)
    assert browser.kind == "undetected"
    assert _screen(browser, sim.url) == "qr"
    assert _sha256(system) == before
    private = private_driver_path(home)
    assert b"undetected chromedriver" in private.read_bytes()  # the copy was the one patched
    assert private.stat().st_mode & 0o777 == 0o755


def test_corrupt_preferences_is_repaired_and_launch_succeeds(
    home: Home, sim: Simulator, browsers: list[Browser]
) -> None:
    """A truncated Default/Preferences is moved aside; Chromium starts and writes a fresh one."""
    prefs = home.profile_dir / "Default" / "Preferences"
    prefs.parent.mkdir(parents=True)
    prefs.write_text('{"profile": {"exit_type": "Cras')
    browser = _open(home, browsers)
    assert _screen(browser, sim.url) == "qr"
    browser.close()
    assert list(prefs.parent.glob("Preferences.corrupt-*"))
    assert isinstance(json.loads(prefs.read_text()), dict)


def test_selenium_driver_launches_and_keeps_temp_inside_the_home(sim: Simulator, browsers: list[Browser]) -> None:
    """driver = "selenium" works too, and Chromium's org.chromium.Chromium.* temp folders land in the home."""
    short = Home(Path(tempfile.mkdtemp(prefix="ct-", dir="/tmp")))  # short enough for the socket path limit
    try:
        browser = _open(short, browsers, WhatsAppConfig(headless=True, driver="selenium"))
        assert browser.kind == "selenium" and browser.browser_pid is not None
        assert _screen(browser, sim.url) == "qr"
        assert browser_tmp_dir(short) == short.session_dir / "tmp"
        assert any(p.name.startswith("org.chromium.Chromium.") for p in browser_tmp_dir(short).iterdir())
        cmdline = psutil.Process(browser.browser_pid).cmdline()
        assert ("--no-sandbox" in cmdline) == (os.geteuid() == 0)
        assert "--disable-background-networking" in cmdline
        browser.close()
    finally:
        shutil.rmtree(short.root, ignore_errors=True)


def test_browser_tmp_dir_falls_back_when_the_home_path_is_too_long(tmp_path: Path) -> None:
    """A home too deep for a Unix socket path (108 bytes) gets a short per-home TMPDIR instead."""
    deep = Home(tmp_path / ("x" * 80))
    fallback = browser_tmp_dir(deep)
    assert len(str(fallback) + "/org.chromium.Chromium.XXXXXX/SingletonSocket") <= 107
    assert fallback == browser_tmp_dir(Home(tmp_path / ("x" * 80)))  # stable per home
    assert fallback != browser_tmp_dir(Home(tmp_path / ("y" * 80)))


def test_close_is_safe_when_the_browser_already_died(home: Home, sim: Simulator, browsers: list[Browser]) -> None:
    """close() after Chromium was killed -9 still reaps chromedriver and returns without hanging."""
    browser = _open(home, browsers)
    assert browser.browser_pid is not None
    os.kill(browser.browser_pid, signal.SIGKILL)
    start = time.monotonic()
    browser.close(timeout_s=3.0)
    assert time.monotonic() - start < 15
    assert find_profile_holders(home.profile_dir, driver_exe=private_driver_path(home)) == []
    assert browser.close() == []  # a second close is a no-op


def test_uc_import_failure_falls_back_to_selenium(
    home: Home, sim: Simulator, browsers: list[Browser], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When undetected_chromedriver cannot be imported, launch falls back to plain selenium and says so."""
    monkeypatch.setitem(sys.modules, "undetected_chromedriver", None)  # makes the import raise ImportError
    browser = _open(home, browsers)
    assert browser.kind == "selenium"
    assert _screen(browser, sim.url) == "qr"
    assert [e["event"] for e in read_events(home.events_file)].count("browser_driver_fallback") == 1


def test_mismatched_driver_path_is_refused_with_the_fix(home: Home, tmp_path: Path) -> None:
    """whatsapp.driver_path naming a chromedriver of another major is refused before any start."""
    fake = tmp_path / "chromedriver"
    fake.write_text("#!/bin/sh\necho 'ChromeDriver 99.0.1.2 (abc)'\n")
    fake.chmod(0o755)
    with pytest.raises(BrowserLaunchError, match=r"does not match Chromium .*whatsapp.driver_path"):
        launch(home, WhatsAppConfig(headless=True, driver_path=str(fake)))
    assert not home.profile_dir.exists()


def test_close_is_graceful_even_when_the_page_is_frozen(home: Home, sim: Simulator, browsers: list[Browser]) -> None:
    """A page stuck in a JS busy loop blocks chromedriver, not the DevTools Browser.close: the stop stays clean."""
    browser = _open(home, browsers)
    assert _screen(browser, sim.url) == "qr"
    assert browser.driver.execute_script("return 1") == 1
    sim.set_mode("frozen")
    # The page freezes on its next poll (every 0.2 s): it stops polling the simulator, and chromedriver, which runs
    # scripts inside the page, no longer answers (only the client's own HTTP timeout ends a call).
    deadline = time.monotonic() + 10
    while not all(page["seen_s_ago"] > 1.0 for page in sim.state()["pages"]):
        assert time.monotonic() < deadline, f"the page kept polling: {sim.state()['pages']}"
        time.sleep(0.1)
    executor = browser.driver.command_executor
    client_timeout = executor.client_config.timeout
    executor.client_config.timeout = 2.0
    started = time.monotonic()
    with pytest.raises((TimeoutException, WebDriverException, ReadTimeoutError, TimeoutError)):
        browser.driver.execute_script("return 1")
    assert time.monotonic() - started >= 1.5  # it hung until the client gave up: the page is frozen
    executor.client_config.timeout = client_timeout
    start = time.monotonic()
    assert browser.close(timeout_s=5.0) == []  # nothing had to be killed
    assert time.monotonic() - start < 4
    assert [n for n in SINGLETON_NAMES if os.path.lexists(home.profile_dir / n)] == []
