"""Profile hygiene before every launch: orphan sweep, stale Singleton locks, cache trim, corrupt-file repair
(the last two live in profile_files and are re-exported here).

psutil only (no selenium). The process search and kill are watchdog/profile_procs.py, which the watchdog uses to
sweep a dead worker's browser; the watchdog never imports this module.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from continuity.watchdog.instance import EventLog, directory_size
from continuity.watchdog.profile_procs import (
    _holds_profile,
    find_profile_holders,
    is_gone,
    kill_processes,
)

from .profile_files import (
    CACHE_DIRS,
    PROTECTED_NAMES,
    clear_browser_temp,
    ensure_private_dir,
    record,
    repair_profile_files,
    trim_profile,
)

logger = logging.getLogger("continuity.browser")

SINGLETON_NAMES = ("SingletonLock", "SingletonSocket", "SingletonCookie")
__all__ = [
    "CACHE_DIRS",
    "PROTECTED_NAMES",
    "SINGLETON_NAMES",
    "HygieneReport",
    "clear_browser_temp",
    "clear_stale_singleton_locks",
    "directory_size",
    "ensure_private_dir",
    "find_profile_holders",
    "is_gone",
    "kill_processes",
    "prepare_profile",
    "repair_profile_files",
    "sweep_profile_holders",
    "trim_profile",
]
_POLL_S = 0.05


@dataclass
class HygieneReport:
    """What prepare_profile did (for events, logs and the benchmark)."""

    swept_pids: list[int] = field(default_factory=list)
    removed_locks: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    repaired_files: list[str] = field(default_factory=list)
    removed_temp_dirs: int = 0
    seconds: float = 0.0


# --- orphan sweep


def sweep_profile_holders(
    profile_dir: Path,
    *,
    driver_exe: Path | None = None,
    timeout_s: float = 5.0,
    events: EventLog | None = None,
) -> list[int]:
    """Kill (TERM, wait `timeout_s` seconds, KILL) every process holding the profile; returns their pids."""
    start = time.monotonic()
    procs = find_profile_holders(profile_dir, driver_exe=driver_exe)
    pids = kill_processes(procs, timeout_s=timeout_s)
    if pids:
        record(
            events,
            "browser_orphans_swept",
            pids=pids,
            count=len(pids),
            seconds=round(time.monotonic() - start, 3),
        )
    return pids


# --- Singleton locks


def _lock_owner(profile_dir: Path) -> tuple[str, int] | None:
    try:
        target = os.readlink(profile_dir / "SingletonLock")
    except (FileNotFoundError, OSError):
        return None
    host, _, pid = target.rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() else ("", -1)


def _pid_is_live_chromium(pid: int, profile_dir: Path) -> bool:
    try:
        proc = psutil.Process(pid)
        if is_gone(proc):
            return False
        name = proc.name().lower()
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    profile = os.path.normpath(os.path.abspath(profile_dir))
    return "chrom" in name or _holds_profile(cmdline, f"--user-data-dir={profile}", profile)


def clear_stale_singleton_locks(
    profile_dir: Path, *, events: EventLog | None = None, hostname: str | None = None
) -> list[str]:
    """Remove Singleton{Lock,Socket,Cookie} links of a dead browser or of another host (renamed container).

    Kept when a live chromium on this host holds the lock. Returns the names removed.
    """
    names = [n for n in SINGLETON_NAMES if os.path.lexists(profile_dir / n)]
    if not names:
        return []
    owner = _lock_owner(profile_dir)
    this_host = hostname if hostname is not None else socket.gethostname()
    if owner is None:
        reason = "no SingletonLock"
    elif owner[0] != this_host:
        reason = f"lock names another host {owner[0]!r} (pid {owner[1]})"
    elif _pid_is_live_chromium(owner[1], profile_dir):
        logger.info("profile lock held by live chromium pid %d; kept", owner[1])
        return []
    else:
        reason = f"lock holder pid {owner[1]} is dead"
    removed = []
    for name in names:
        try:
            (profile_dir / name).unlink()
            removed.append(name)
        except FileNotFoundError:
            pass
    if removed:
        record(events, "profile_lock_cleared", removed=removed, reason=reason)
    return removed


def prepare_profile(
    profile_dir: Path,
    *,
    max_mb: float,
    driver_exe: Path | None = None,
    tmp_dir: Path | None = None,
    events: EventLog | None = None,
    timeout_s: float = 5.0,
) -> HygieneReport:
    """All hygiene steps in order: sweep holders, clear stale locks, repair files, trim caches, clear temp."""
    start = time.monotonic()
    ensure_private_dir(profile_dir)
    report = HygieneReport()
    report.swept_pids = sweep_profile_holders(profile_dir, driver_exe=driver_exe, timeout_s=timeout_s, events=events)
    report.removed_locks = clear_stale_singleton_locks(profile_dir, events=events)
    report.repaired_files = repair_profile_files(profile_dir, events=events)
    report.freed_bytes = trim_profile(profile_dir, max_mb, events=events)
    if tmp_dir is not None:
        report.removed_temp_dirs = clear_browser_temp(tmp_dir, events=events)
    report.seconds = time.monotonic() - start
    return report
