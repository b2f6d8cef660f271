"""`continuity doctor`'s browser checks: Chromium and chromedriver (found, matching versions),
undetected-chromedriver, a display, the browser profile's locks. The checks that are not about the browser are
watchdog/checks.py's, whose Check line (PASS / WARN / FAIL, every non-pass naming its fix) these give too."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from continuity.watchdog.checks import FAIL, PASS, WARN, Check
from continuity.watchdog.instance import HEADLESS_ENV, Config, Home

from . import hygiene
from .discovery import BrowserNotFound, Executable, env_flag, find_browser, find_driver, missing_display
from .paths import private_driver_path


def _find(kind: str, finder: Any, configured: str) -> tuple[Check, Executable | None]:
    try:
        found: Executable = finder(configured)
    except BrowserNotFound as exc:
        message = str(exc)
        detail, _, fix = message.partition("; ")
        return Check(kind, FAIL, detail, fix or message), None
    return Check(kind, PASS, f"{found.version} at {found.path}"), found


def check_versions(browser: Executable | None, driver: Executable | None) -> Check:
    if browser is None or driver is None:
        return Check("versions", FAIL, "cannot compare: Chromium or chromedriver missing", "fix the lines above")
    if browser.major == driver.major:
        return Check("versions", PASS, f"Chromium and chromedriver are both major {browser.major}")
    return Check(
        "versions",
        FAIL,
        f"Chromium {browser.version} but chromedriver {driver.version}",
        f"install chromedriver {browser.major} (Debian: apt-get install chromium chromium-driver together) "
        "or point whatsapp.driver_path at a matching one",
    )


def check_undetected(driver_choice: str) -> Check:
    try:
        importlib.import_module("undetected_chromedriver")
    except ImportError as exc:
        fix = "pip install undetected-chromedriver"
        if "distutils" in str(exc):
            fix = "pip install setuptools (Python 3.12+ has no distutils; undetected-chromedriver needs it)"
        fix += ', or set whatsapp.driver = "selenium"'
        status = FAIL if driver_choice == "undetected" else WARN
        return Check("undetected", status, f"undetected_chromedriver not importable: {exc}", fix)
    return Check("undetected", PASS, f"undetected_chromedriver importable (whatsapp.driver = {driver_choice!r})")


def check_profile_locks(home: Home, private_driver: Path) -> Check:
    profile = home.profile_dir
    if not profile.exists():
        return Check("profile", PASS, f"{profile} not created yet (first launch creates it)")
    holders = hygiene.find_profile_holders(profile, driver_exe=private_driver)
    if holders:
        pids = sorted(p.pid for p in holders)
        return Check(
            "profile",
            WARN,
            f"{len(pids)} processes hold the profile (pids {pids[:8]}): a running worker, or crash orphans",
            "`continuity stop` if a worker runs; orphans are swept before the next launch",
        )
    lock = profile / "SingletonLock"
    if os.path.lexists(lock):
        with contextlib.suppress(OSError):
            target = os.readlink(lock)
            return Check(
                "profile",
                WARN,
                f"stale SingletonLock -> {target} and no browser holds the profile",
                "nothing to do: the next launch clears it (hygiene)",
            )
    return Check("profile", PASS, f"{profile}: no locks, no holders")


def check_display(headless: bool, environ: dict[str, str] | None = None, platform: str = sys.platform) -> Check:
    if headless:
        return Check("display", PASS, "headless = true: no screen needed")
    if env_flag(HEADLESS_ENV, environ):
        return Check("display", PASS, f"{HEADLESS_ENV} is set: Chromium runs headless, no screen needed")
    reason = missing_display(environ, platform)
    if reason is None:
        return Check("display", PASS, "a display is available for the Chromium window")
    return Check(
        "display",
        WARN,
        f"headless = false but {reason}: Chromium will run headless",
        "set [whatsapp] headless = true to say so; scan the QR from `continuity whatsapp qr`",
    )


def browser_checks(home: Home, config: Config) -> list[Check]:
    """The browser's doctor checks, in display order (read-only: nothing is changed)."""
    wa = config.whatsapp
    browser_check, browser = _find("chromium", find_browser, wa.browser_path)
    driver_check, driver = _find("chromedriver", find_driver, wa.driver_path)
    checks = [browser_check, driver_check, check_versions(browser, driver), check_undetected(wa.driver)]
    checks += [check_display(wa.headless), check_profile_locks(home, private_driver_path(home))]
    return checks
