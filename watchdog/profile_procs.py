"""Finding and stopping processes (those that hold a Chromium profile, a worker's tree), with psutil only.

The watchdog waits on its worker's tree and sweeps the profile with it, so this module stays light (no selenium,
no shutil/tempfile/hashlib): `continuity.worker.browser.hygiene` builds its launch-time hygiene on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from .instance import Home, pid_alive

logger = logging.getLogger("continuity.browser")

_POLL_S = 0.05


def is_gone(proc: psutil.Process) -> bool:
    """True when the process is dead or a zombie; zombies are not reaped (the parent's Popen keeps its status)."""
    return not pid_alive(proc.pid)


def _holds_profile(cmdline: list[str], profile_arg: str, profile: str) -> bool:
    for index, arg in enumerate(cmdline):
        if arg == profile_arg:
            return True
        if arg == "--user-data-dir" and index + 1 < len(cmdline) and os.path.normpath(cmdline[index + 1]) == profile:
            return True
        if arg.startswith("--user-data-dir=") and os.path.normpath(arg.split("=", 1)[1]) == profile:
            return True
    return False


def _matches(cmdline: list[str], exe: str, profile_arg: str, profile: str, driver: str | None) -> bool:
    if _holds_profile(cmdline, profile_arg, profile):
        return True
    if driver is None:
        return False
    first = os.path.normpath(cmdline[0]) if cmdline else ""
    return driver in (os.path.normpath(exe) if exe else "", first)


def _candidates_from_proc(profile_arg: str, profile: str, driver: str | None) -> list[int] | None:
    """Linux: the pids whose /proc/PID/cmdline matches, read as raw bytes (a few ms for hundreds of processes,
    and no psutil object for the ones that cannot match). None where there is no /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    needles = [b"--user-data-dir", *([os.fsencode(driver)] if driver else [])]
    pids = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                raw = handle.read()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if not any(needle in raw for needle in needles):
            continue
        cmdline = [os.fsdecode(arg) for arg in raw.rstrip(b"\0").split(b"\0")]
        if _matches(cmdline, "", profile_arg, profile, driver):
            pids.append(int(entry))
    return pids


def find_profile_holders(profile_dir: Path, *, driver_exe: Path | None = None) -> list[psutil.Process]:
    """Live processes using this profile (chromium with --user-data-dir=<profile>, the private chromedriver),
    plus their descendants; never the calling process."""
    profile = os.path.normpath(os.path.abspath(profile_dir))
    profile_arg = f"--user-data-dir={profile}"
    driver = os.path.normpath(os.path.abspath(driver_exe)) if driver_exe else None
    matched: list[psutil.Process] = []
    pids = _candidates_from_proc(profile_arg, profile, driver) if sys.platform.startswith("linux") else None
    if pids is not None:
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                matched.append(psutil.Process(pid))
    else:
        for proc in psutil.process_iter(["pid", "cmdline", "exe"]):
            if _matches(proc.info.get("cmdline") or [], proc.info.get("exe") or "", profile_arg, profile, driver):
                matched.append(proc)
        psutil.process_iter.cache_clear()  # its cache would keep an object per process of the machine
    found: dict[int, psutil.Process] = {}
    for proc in matched:
        if proc.pid == os.getpid() or is_gone(proc):
            continue
        found[proc.pid] = proc
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            for child in proc.children(recursive=True):
                if child.pid != os.getpid():
                    found.setdefault(child.pid, child)
    return list(found.values())


def wait_gone(
    procs: Sequence[psutil.Process], timeout_s: float, *, reap: bool
) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(gone, alive) after waiting up to `timeout_s` s for `procs` to exit (a zombie counts as gone).

    `reap`: also reap those that are our children (the watchdog's adopted orphans, else they stay zombies). Not in
    the worker: a process it started through Popen (uc's Chromium) would lose its exit status.
    Linux: one pidfd per process and a single poll(), so each exit is seen the moment it happens (psutil.wait_procs
    polls each process in turn with growing sleeps: ~70 ms more for a Chromium tree).
    """
    if sys.platform != "linux":  # pidfds, poll() on them and WNOHANG are Linux (POSIX) only
        return _poll_gone(procs, timeout_s, reap=reap)
    pidfd_open = getattr(os, "pidfd_open", None)  # a Python built without it
    if pidfd_open is None:
        return _poll_gone(procs, timeout_s, reap=reap)
    poller = select.poll()
    waiting: dict[int, psutil.Process] = {}
    gone: list[psutil.Process] = []
    try:
        for proc in procs:
            try:
                fd = pidfd_open(proc.pid)
            except ProcessLookupError:
                gone.append(proc)
                continue
            except OSError:  # e.g. ENOSYS on a kernel older than 5.3
                for fd in waiting:
                    os.close(fd)
                return _poll_gone(procs, timeout_s, reap=reap)
            if not proc.is_running():  # the pid was reused: the process we meant is gone
                os.close(fd)
                gone.append(proc)
                continue
            waiting[fd] = proc
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout_s
        while waiting:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            ready = poller.poll(remaining_ms)
            if not ready and remaining_ms == 0:
                break
            for fd, _mask in ready:
                poller.unregister(fd)
                os.close(fd)
                gone.append(waiting.pop(fd))
    finally:
        for fd in waiting:
            os.close(fd)
    for proc in gone if reap else ():
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(proc.pid, os.WNOHANG)
    return gone, list(waiting.values())


def _poll_gone(
    procs: Sequence[psutil.Process], timeout_s: float, *, reap: bool
) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """wait_gone without pidfds: psutil.wait_procs reaps children; without reaping, look every 50 ms."""
    if reap:
        return psutil.wait_procs(procs, timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    alive = [p for p in procs if not is_gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        alive = [p for p in alive if not is_gone(p)]
    return [p for p in procs if p not in alive], alive


def _signal_all(procs: list[psutil.Process], kill: bool) -> None:
    for proc in procs:
        try:
            proc.kill() if kill else proc.terminate()
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:
            logger.warning("no permission to signal pid %d holding the profile", proc.pid)


def kill_processes(procs: list[psutil.Process], *, timeout_s: float = 5.0, reap: bool = False) -> list[int]:
    """TERM, wait up to `timeout_s` seconds, then KILL what is left; returns the pids that were signalled.
    `reap`: as in wait_gone (the watchdog only)."""
    if not procs:
        return []
    _signal_all(procs, kill=False)
    _gone, alive = wait_gone(procs, timeout_s, reap=reap)
    if alive:
        logger.warning("%d processes ignored SIGTERM for %.1f s; sending SIGKILL", len(alive), timeout_s)
        _signal_all(alive, kill=True)
        _gone, alive = wait_gone(alive, timeout_s, reap=reap)
        for proc in alive:
            logger.error("pid %d survived SIGKILL", proc.pid)
    return sorted(p.pid for p in procs)


def sweep_profile(home: Home) -> list[int]:
    """Stop any Chromium (or private chromedriver) still holding the home's profile; returns the pids signalled."""
    holders = find_profile_holders(home.profile_dir, driver_exe=home.driver_copy_file)
    return kill_processes(holders, timeout_s=5.0, reap=True)  # the watchdog: holders may be its adopted orphans
