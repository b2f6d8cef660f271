"""One watchdog per home: a file lock held for the watchdog's life, and finding the running one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psutil

from ._errors import AlreadyRunning
from ._oslock import ExclusiveFileLock, LockHeld
from .atomicfile import read_json_or_none
from .home import Home


def running_watchdog(home: Home) -> dict[str, Any] | None:
    """The state file of the watchdog running for `home`, or None when none runs (a dead pid is not running)."""
    info = read_json_or_none(home.watchdog_state_file)
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return None
    try:
        proc = psutil.Process(info["pid"])
        alive = proc.status() != psutil.STATUS_ZOMBIE
        same = abs(proc.create_time() - float(info.get("pid_create_time", 0))) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, TypeError):
        return None
    return info if alive and same and info.get("state") not in ("stopped", "fatal") else None


@contextlib.contextmanager
def single_instance(home: Home) -> Iterator[ExclusiveFileLock]:
    """Hold run/watchdog.lock; raise AlreadyRunning (naming the holder's pid) when another watchdog has it.

    The OS releases the lock when its holder dies, so a kill -9 never leaves a home locked.
    """
    home.run_dir.mkdir(parents=True, exist_ok=True)
    lock = ExclusiveFileLock(home.watchdog_lock_file)
    try:
        lock.acquire()
    except LockHeld:
        holder = running_watchdog(home)
        pid = holder["pid"] if holder else None
        where = f"pid {pid}" if pid else "pid not known yet"
        raise AlreadyRunning(f"a watchdog is already running for {home.root} ({where})", pid=pid) from None
    try:
        yield lock
    finally:
        lock.release()
