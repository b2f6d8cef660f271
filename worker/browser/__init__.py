"""Offline Chromium for the worker: discovery, profile hygiene and the launcher.

`hygiene`, `discovery` and `paths` import no selenium, so `doctor` and the launch-time hygiene load them cheaply
(the watchdog imports none of them: its profile sweep is watchdog/profile_procs.py); `launch`/`Browser` are loaded
on first use, so `from continuity.worker.browser import sweep_profile_holders` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .discovery import (
    BrowserNotFound,
    Executable,
    find_browser,
    find_driver,
    read_version,
    real_browser_binary,
)
from .hygiene import (
    HygieneReport,
    clear_browser_temp,
    clear_stale_singleton_locks,
    find_profile_holders,
    prepare_profile,
    repair_profile_files,
    sweep_profile_holders,
    trim_profile,
)
from .paths import browser_tmp_dir, private_driver_path

if TYPE_CHECKING:
    from .launcher import Browser, BrowserLaunchError, launch

__all__ = [
    "Browser",
    "BrowserLaunchError",
    "BrowserNotFound",
    "Executable",
    "HygieneReport",
    "browser_tmp_dir",
    "clear_browser_temp",
    "clear_stale_singleton_locks",
    "find_browser",
    "find_driver",
    "find_profile_holders",
    "launch",
    "prepare_profile",
    "private_driver_path",
    "read_version",
    "real_browser_binary",
    "repair_profile_files",
    "sweep_profile_holders",
    "trim_profile",
]

_LAUNCHER_NAMES = frozenset({"Browser", "BrowserLaunchError", "launch"})


def __getattr__(name: str) -> Any:
    if name in _LAUNCHER_NAMES:
        from . import launcher

        return getattr(launcher, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
