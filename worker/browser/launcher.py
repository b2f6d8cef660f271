"""Start Chromium for the worker, offline; the only module importing selenium / undetected_chromedriver.

Longer than ~300 lines on purpose: everything that needs selenium (launching either driver, the Browser handle and
its clean close over DevTools) stays in this one module, which the package loads only on first use, so `doctor`,
the hygiene and the watchdog's config check never pay for selenium; the selenium-free parts are the package's
other modules (discovery, hygiene, paths)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import websocket
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from urllib3.exceptions import HTTPError

from continuity.watchdog.instance import (
    HEADLESS_ENV,
    NO_SANDBOX_ENV,
    SESSION_KEY_ENV,
    EventLog,
    Home,
    WhatsAppConfig,
    read_json_or_none,
    write_json_atomic,
)

from . import hygiene
from .discovery import (
    Executable,
    env_flag,
    find_browser,
    find_driver,
    missing_display,
)
from .paths import browser_tmp_dir, private_driver_path

logger = logging.getLogger("continuity.browser")

# No network here (and none wanted): nothing that phones home, no first-run UI.
OFFLINE_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--password-store=basic",
    "--window-size=1280,900",
)


class BrowserLaunchError(RuntimeError):
    """Chromium or chromedriver could not be started (the message says why and what to do)."""


def is_root() -> bool:
    """True when running as root on POSIX (Chromium then needs --no-sandbox)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def no_sandbox() -> bool:
    """Chromium gets --no-sandbox as root, or when $CONTINUITY_NO_SANDBOX says so (a container)."""
    return is_root() or env_flag(NO_SANDBOX_ENV)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_private_driver(system_driver: Path, home: Home, *, events: EventLog | None = None) -> Path:
    """A private copy of chromedriver inside the home: undetected-chromedriver patches the file it is given,
    so the system's copy must never be handed to it. Re-copied when the system file changes (size, mtime,
    path)."""
    target = private_driver_path(home)
    hygiene.ensure_private_dir(target.parent)
    stat = system_driver.stat()
    source = {"path": str(system_driver), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamp_file = target.with_name(target.name + ".source.json")
    stamp = read_json_or_none(stamp_file)
    if target.is_file() and isinstance(stamp, dict) and {k: stamp.get(k) for k in source} == source:
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(system_driver, tmp)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)  # a running old copy keeps its inode; no "text file busy"
    write_json_atomic(stamp_file, {**source, "sha256": _sha256(system_driver)})
    logger.info("copied %s to %s", system_driver, target)
    if events is not None:
        events.emit("browser_driver_copied", source=str(system_driver), target=str(target))
    return target


@contextlib.contextmanager
def _browser_environment(tmp_dir: Path) -> Iterator[None]:
    """Environment chromedriver and Chromium inherit at start: private TMPDIR, Selenium Manager off."""
    os.environ["SE_OFFLINE"] = "true"  # guard: Selenium Manager must never try the network
    saved = {key: os.environ.get(key) for key in ("TMPDIR", "SE_CHROMEDRIVER", SESSION_KEY_ENV)}
    os.environ["TMPDIR"] = str(tmp_dir)
    os.environ.pop("SE_CHROMEDRIVER", None)  # would replace our private driver path in selenium's Service
    os.environ.pop(SESSION_KEY_ENV, None)  # the backup passphrase is not the browser's business
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Browser:
    """A running Chromium session. Call `close()` to stop it cleanly (never rely on garbage collection)."""

    driver: Any  # selenium WebDriver (uc.Chrome subclasses it)
    browser_pid: int | None
    driver_pid: int | None
    kind: str  # "undetected" or "selenium"
    profile_dir: Path
    driver_exe: Path
    browser: Executable
    events: EventLog | None = None
    started_s: float = 0.0  # seconds the launch took (hygiene included)
    closed: bool = field(default=False, init=False)

    def close(self, *, timeout_s: float = 10.0) -> list[int]:
        """Clean stop: CDP Browser.close (Chromium writes its profile and removes its Singleton links), then
        driver.quit(), then reap anything still holding the profile (TERM, KILL after `timeout_s` seconds).
        Safe when the browser is already dead and when called twice. Returns the pids reaped by force."""
        if self.closed:
            return []
        self.closed = True
        started = time.monotonic()
        graceful = self._cdp_browser_close(timeout_s)
        with contextlib.suppress(WebDriverException, OSError, HTTPError):
            self.driver.quit()
        self._wait_driver_exit(timeout_s)
        if self.kind == "undetected":
            self.driver.browser_pid = None  # uc's __del__ would SIGTERM this pid later, maybe reused by then
        reaped = hygiene.sweep_profile_holders(self.profile_dir, driver_exe=self.driver_exe, timeout_s=timeout_s)
        if sys.platform != "win32":
            # uc spawns Chromium and chromedriver from this process; when the browser died first nothing waits
            # for them: reap them now, or each browser restart leaves a zombie behind.
            for pid in (self.browser_pid, self.driver_pid):
                if pid is not None:
                    with contextlib.suppress(ChildProcessError, OSError):
                        os.waitpid(pid, os.WNOHANG)
        seconds = round(time.monotonic() - started, 3)
        logger.info("browser closed (graceful=%s, reaped=%s) in %.2f s", graceful, reaped, seconds)
        if self.events is not None:
            self.events.emit("browser_closed", graceful=graceful, reaped=reaped, seconds=seconds)
        return reaped

    def _cdp_browser_close(self, timeout_s: float) -> bool:
        """Ask Chromium to close itself; True when every process of the profile exited within `timeout_s`.

        CDP Browser.close goes straight to the browser's DevTools socket (a frozen page cannot block it, as it
        blocks chromedriver); through chromedriver only when the DevTools address is unknown. If Chromium is
        still up after that, SIGTERM to the browser process alone lets it shut its children down itself."""
        deadline = time.monotonic() + timeout_s
        address = (getattr(self.driver, "capabilities", None) or {}).get("goog:chromeOptions", {})
        address = address.get("debuggerAddress") if isinstance(address, dict) else None
        if not (address and _devtools_browser_close(str(address), timeout_s)):
            caller = threading.Thread(target=self._driver_browser_close, name="cdp-browser-close", daemon=True)
            caller.start()
            caller.join(timeout_s)
        if self._wait_released(min(deadline, time.monotonic() + timeout_s / 2)):
            return True
        for proc in hygiene.find_profile_holders(self.profile_dir):
            if proc.pid == self.browser_pid:  # checked by cmdline: never a reused pid
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    proc.terminate()
        self._wait_released(max(deadline, time.monotonic() + 1.0))
        return False

    def _driver_browser_close(self) -> None:
        try:
            self.driver.execute_cdp_cmd("Browser.close", {})
        except (WebDriverException, OSError, HTTPError) as exc:
            # Usually "target frame detached": the browser went away while chromedriver waited for it.
            logger.debug("CDP Browser.close answered: %s", str(exc).splitlines()[0] if str(exc) else exc)

    def _wait_driver_exit(self, timeout_s: float) -> None:
        """uc's quit() SIGKILLs chromedriver without waiting: wait (and reap) here, or the sweep that follows
        finds it still dying and counts it as an orphan."""
        process = getattr(getattr(self.driver, "service", None), "process", None)
        if isinstance(process, subprocess.Popen):
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                process.wait(timeout_s)

    def _wait_released(self, until: float) -> bool:
        while True:
            if not hygiene.find_profile_holders(self.profile_dir):
                return True
            if time.monotonic() >= until:
                return False
            time.sleep(0.05)


def _devtools_browser_close(address: str, timeout_s: float) -> bool:
    """Send CDP Browser.close over the browser-level DevTools WebSocket at `address` (127.0.0.1:port)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        with opener.open(f"http://{address}/json/version", timeout=timeout_s) as answer:
            url = json.loads(answer.read())["webSocketDebuggerUrl"]
        conn = websocket.create_connection(
            url, timeout=timeout_s, suppress_origin=True, http_no_proxy=["127.0.0.1", "localhost"]
        )
    except (OSError, ValueError, KeyError, websocket.WebSocketException) as exc:
        logger.debug("DevTools at %s unreachable: %s", address, exc)
        return False
    try:
        conn.send(json.dumps({"id": 1, "method": "Browser.close"}))
        with contextlib.suppress(OSError, websocket.WebSocketException):
            conn.recv()  # the answer, or the connection closing under us
    except (OSError, websocket.WebSocketException) as exc:
        logger.debug("DevTools Browser.close failed: %s", exc)
        return False
    finally:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            conn.close()
    return True


def _selenium_options(browser: Executable, profile: Path, headless: bool) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(browser.path)
    for arg in (*OFFLINE_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    if headless:
        options.add_argument("--headless=new")
    if no_sandbox():
        options.add_argument("--no-sandbox")
    return options


def _launch_selenium(
    browser: Executable, driver_exe: Path, profile: Path, headless: bool
) -> tuple[Any, int | None, int | None]:
    service = Service(executable_path=str(driver_exe))
    driver = webdriver.Chrome(options=_selenium_options(browser, profile, headless), service=service)
    driver_pid = service.process.pid if service.process else None
    browser_pid = None
    if driver_pid is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(driver_pid).children():
                cmdline = child.cmdline()
                if not any(a.startswith("--type=") for a in cmdline):
                    browser_pid = child.pid
    return driver, browser_pid, driver_pid


def _launch_undetected(
    uc: Any, browser: Executable, driver_exe: Path, profile: Path, headless: bool
) -> tuple[Any, int | None, int | None]:
    root = no_sandbox()

    class _Options(uc.ChromeOptions):  # type: ignore[misc]
        def handle_prefs(self, user_data_dir: str) -> None:
            super().handle_prefs(user_data_dir)
            # uc adds --no-sandbox unconditionally; keep it only when asked. Runs just before the spawn.
            if not root:
                self.arguments[:] = [a for a in self.arguments if a not in ("--no-sandbox", "--test-type")]

    options = _Options()
    for arg in OFFLINE_ARGS:
        options.add_argument(arg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # uc 3.5.5 calls locale.getdefaultlocale
        driver = uc.Chrome(
            options=options,
            user_data_dir=str(profile),
            driver_executable_path=str(driver_exe),
            browser_executable_path=str(browser.path),
            version_main=browser.major,
            headless=headless,  # uc sets --headless=new itself and hides headless tells
            use_subprocess=True,  # with False, uc's detached spawn hangs 60 s on some setups
            no_sandbox=root,
        )
    return driver, driver.browser_pid, driver.service.process.pid


def _import_uc(events: EventLog) -> Any | None:
    try:
        import undetected_chromedriver as uc
    except ImportError as exc:
        hint = " (Python 3.12+: pip install setuptools)" if "distutils" in str(exc) else ""
        logger.warning("undetected-chromedriver unusable (%s)%s; falling back to plain selenium", exc, hint)
        events.emit("browser_driver_fallback", reason=str(exc))
        return None
    return uc


_told_headless = False


def _headless(configured: bool, events: EventLog) -> bool:
    """`headless = false` where there is no display would hang 60 s per launch and fail: run headless, say so once."""
    global _told_headless
    if env_flag(HEADLESS_ENV):
        return True
    reason = None if configured else missing_display()
    if reason is None:
        return configured
    if not _told_headless:
        _told_headless = True
        logger.warning("%s: running Chromium headless; show the QR with `continuity whatsapp qr`", reason)
        events.emit("browser_headless_forced", reason=reason)
    return True


def launch(
    home: Home,
    whatsapp_config: WhatsAppConfig,
    *,
    events: EventLog | None = None,
    page_load_timeout_s: float = 60.0,
    script_timeout_s: float = 30.0,
    implicit_wait_s: float = 0.0,
) -> Browser:
    """Hygiene, then start Chromium on `home.profile_dir` with the configured driver. Raises BrowserNotFound
    when Chromium or chromedriver is missing, BrowserLaunchError when they fail to start."""
    events = events or EventLog(home.events_file, source="worker")
    started = time.monotonic()
    browser = find_browser(whatsapp_config.browser_path)
    system_driver = find_driver(whatsapp_config.driver_path)
    if browser.major != system_driver.major:
        raise BrowserLaunchError(
            f"chromedriver {system_driver.version} ({system_driver.path}) does not match "
            f"Chromium {browser.version} ({browser.path}); "
            "install the matching chromedriver or fix whatsapp.driver_path"
        )
    driver_exe = private_driver_path(home)
    tmp_dir = browser_tmp_dir(home)
    profile = home.profile_dir
    report = hygiene.prepare_profile(
        profile, max_mb=whatsapp_config.session_max_mb, driver_exe=driver_exe, tmp_dir=tmp_dir, events=events
    )
    hygiene.ensure_private_dir(tmp_dir)
    ensure_private_driver(system_driver.path, home, events=events)
    headless = _headless(whatsapp_config.headless, events)
    kind = whatsapp_config.driver
    uc = _import_uc(events) if kind == "undetected" else None
    if uc is None:
        kind = "selenium"
    try:
        with _browser_environment(tmp_dir):
            if uc is not None:
                driver, browser_pid, driver_pid = _launch_undetected(uc, browser, driver_exe, profile, headless)
            else:
                driver, browser_pid, driver_pid = _launch_selenium(browser, driver_exe, profile, headless)
    except (WebDriverException, OSError, HTTPError) as exc:
        hygiene.sweep_profile_holders(profile, driver_exe=driver_exe, events=events)
        events.emit("browser_launch_failed", driver=kind, error=str(exc)[:500])
        raise BrowserLaunchError(f"{kind} could not start Chromium {browser.version}: {exc}") from exc
    driver.set_page_load_timeout(page_load_timeout_s)
    driver.set_script_timeout(script_timeout_s)
    driver.implicitly_wait(implicit_wait_s)
    seconds = round(time.monotonic() - started, 3)
    logger.info("browser started (%s, pid %s) in %.2f s", kind, browser_pid, seconds)
    events.emit(
        "browser_started",
        driver=kind,
        browser_pid=browser_pid,
        driver_pid=driver_pid,
        version=browser.version,
        headless=headless,
        seconds=seconds,
        hygiene_seconds=round(report.seconds, 3),
    )
    return Browser(driver, browser_pid, driver_pid, kind, profile, driver_exe, browser, events, seconds)
