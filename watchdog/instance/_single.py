"""One watchdog per home: a file lock held for the watchdog's life, and finding the running one.

The lock (run/watchdog.lock), not run/watchdog.json, decides whether a watchdog runs: the state file can be stale,
deleted or garbage, the lock cannot lie (the OS drops it when its holder dies). The holder writes its pid into the
lock file; a watchdog whose home was deleted or replaced notices (`home_lost`) and leaves.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import psutil

from ._atomicfile import read_json_or_none
from ._errors import AlreadyRunning
from ._home import Home
from ._oslock import ExclusiveFileLock, LockHeld, is_locked
from ._process import pid_alive

ACQUIRE_RETRY_S = 1.0  # a `status` or `stop` probing the lock holds it for microseconds: try again meanwhile


def _holder_pid(home: Home) -> int | None:
    """The pid the lock's holder wrote into run/watchdog.lock, when it is a live process."""
    try:
        with open(home.watchdog_lock_file, "rb") as handle:
            raw = handle.read(64)
    except OSError:  # unreadable (Windows: the locked byte), gone meanwhile
        return None
    text = raw.decode("ascii", "replace").split()
    pid = int(text[0]) if text and text[0].isdigit() else None
    return pid if pid is not None and pid_alive(pid) else None


def _state_of(info: Any, pid: int | None) -> dict[str, Any] | None:
    """run/watchdog.json when it belongs to the lock's holder (same pid, or an alive pid when the holder's is
    unknown), else None (missing, garbage, or left by an earlier watchdog)."""
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return None
    if pid is not None:
        return info if info["pid"] == pid else None
    try:  # not pid_alive: an identity check (that pid AND its start time), on one Process object
        proc = psutil.Process(info["pid"])
        alive = proc.status() != psutil.STATUS_ZOMBIE
        same = abs(proc.create_time() - float(info.get("pid_create_time", 0))) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, TypeError):
        return None
    return info if alive and same else None


def running_watchdog(home: Home) -> dict[str, Any] | None:
    """The running watchdog of `home` (its state file, or what is known of it), or None when none holds the lock."""
    if not is_locked(home.watchdog_lock_file):
        return None
    pid = _holder_pid(home)
    info = _state_of(read_json_or_none(home.watchdog_state_file), pid)
    if info is not None:
        return info
    return {"pid": pid, "state": "unknown", "reason": f"{home.watchdog_state_file} is missing or unreadable"}


@contextlib.contextmanager
def single_instance(home: Home) -> Iterator[ExclusiveFileLock]:
    """Hold run/watchdog.lock; raise AlreadyRunning (naming the holder's pid) when another watchdog has it.

    The OS releases the lock when its holder dies, so a kill -9 never leaves a home locked.
    """
    home.run_dir.mkdir(parents=True, exist_ok=True)
    lock = ExclusiveFileLock(home.watchdog_lock_file)
    deadline = time.monotonic() + ACQUIRE_RETRY_S
    while True:
        try:
            lock.acquire()
            break
        except LockHeld:
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            pid = _holder_pid(home) or (running_watchdog(home) or {}).get("pid")
            where = f"pid {pid}" if pid else "pid not known yet"
            raise AlreadyRunning(f"a watchdog is already running for {home.root} ({where})", pid=pid) from None
    lock.write_owner(f"{os.getpid()}\n")
    try:
        yield lock
    finally:
        lock.release()


def home_lost(home: Home, lock: ExclusiveFileLock) -> str | None:
    """Why the watchdog holding `lock` no longer owns `home` (deleted, moved, or replaced by another directory at
    the same path, where another watchdog could start), or None while it does. Two stat calls: cheap at each tick."""
    if lock.still_ours():
        return None
    if not home.root.is_dir():
        return f"the home {home.root} is gone (deleted or moved)"
    return (
        f"the home {home.root} was deleted or replaced: {home.watchdog_lock_file} is no longer the file this "
        "watchdog locked"
    )
