"""Profile hygiene before every launch: orphan sweep, stale Singleton locks, cache trim, corrupt-file repair
(the last two live in profile_files and are re-exported here).

psutil only (no selenium): the watchdog imports this module to sweep a dead worker's browser.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from continuity.watchdog.events import EventLog

from .profile_files import (
    CACHE_DIRS,
    PROTECTED_NAMES,
    clear_browser_temp,
    directory_size,
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


def is_gone(proc: psutil.Process) -> bool:
    """True when the process is dead or a zombie (psutil.pid_exists is True for zombies).

    Zombies are not reaped here: the parent's Popen would lose the exit status."""
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _holds_profile(cmdline: list[str], profile_arg: str, profile: str) -> bool:
    for index, arg in enumerate(cmdline):
        if arg == profile_arg:
            return True
        if arg == "--user-data-dir" and index + 1 < len(cmdline) and os.path.normpath(cmdline[index + 1]) == profile:
            return True
        if arg.startswith("--user-data-dir=") and os.path.normpath(arg.split("=", 1)[1]) == profile:
            return True
    return False


def find_profile_holders(profile_dir: Path, *, driver_exe: Path | None = None) -> list[psutil.Process]:
    """Live processes using this profile (chromium with --user-data-dir=<profile>, the private chromedriver),
    plus their descendants; never the calling process."""
    profile = os.path.normpath(os.path.abspath(profile_dir))
    profile_arg = f"--user-data-dir={profile}"
    driver = os.path.normpath(os.path.abspath(driver_exe)) if driver_exe else None
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "exe"]):
        if proc.pid == os.getpid():
            continue
        cmdline = proc.info.get("cmdline") or []
        exe = proc.info.get("exe") or ""
        match = _holds_profile(cmdline, profile_arg, profile)
        if driver and not match:
            first = os.path.normpath(cmdline[0]) if cmdline else ""
            match = driver in (os.path.normpath(exe) if exe else "", first)
        if match and not is_gone(proc):
            found[proc.pid] = proc
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                for child in proc.children(recursive=True):
                    if child.pid != os.getpid():
                        found.setdefault(child.pid, child)
    return list(found.values())


def _wait_gone(procs: list[psutil.Process], timeout_s: float, clock: Callable[[], float]) -> list[psutil.Process]:
    deadline = clock() + timeout_s
    alive = [p for p in procs if not is_gone(p)]
    while alive and clock() < deadline:
        time.sleep(_POLL_S)
        alive = [p for p in alive if not is_gone(p)]
    return alive


def _signal_all(procs: list[psutil.Process], kill: bool) -> None:
    for proc in procs:
        try:
            proc.kill() if kill else proc.terminate()
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:
            logger.warning("no permission to signal pid %d holding the profile", proc.pid)


def kill_processes(
    procs: list[psutil.Process], *, timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic
) -> list[int]:
    """TERM, wait up to `timeout_s` seconds, then KILL what is left; returns the pids that were signalled."""
    if not procs:
        return []
    _signal_all(procs, kill=False)
    alive = _wait_gone(procs, timeout_s, clock)
    if alive:
        logger.warning("%d processes ignored SIGTERM for %.1f s; sending SIGKILL", len(alive), timeout_s)
        _signal_all(alive, kill=True)
        alive = _wait_gone(alive, timeout_s, clock)
        for proc in alive:
            logger.error("pid %d survived SIGKILL", proc.pid)
    return sorted(p.pid for p in procs)


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
