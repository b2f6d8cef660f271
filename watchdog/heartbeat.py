"""run/heartbeat.json: written by the worker's main loop, watched by the watchdog on its own monotonic clock."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomicfile import read_json_or_none, write_json_atomic

Signature = tuple[int, int, int, int]


def _signature(path: Path) -> Signature | None:
    """What changes whenever the file is written or touched: inode, size, mtime and ctime (ns)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class HeartbeatMonitor:
    """Tracks when the watchdog last *saw* the heartbeat file change, on its own monotonic clock.

    The file's content and timestamps are never trusted for liveness: a worker with a wrong wall clock (or one
    that only touches the file) is alive while the file keeps changing, and a clock jump cannot fake a change.
    """

    def __init__(self, path: Path, *, timeout_s: float, grace_s: float, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self._clock = clock
        self._baseline: Signature | None = None
        self._spawned_at = clock()
        self.last_change: float | None = None

    def reset(self) -> None:
        """A new worker was spawned: forget the old one's heartbeats; the startup grace begins now."""
        self._baseline = _signature(self.path)
        self._spawned_at = self._clock()
        self.last_change = None

    def poll(self) -> None:
        """Look at the file once; record the moment a change is first seen."""
        signature = _signature(self.path)
        if signature is not None and signature != self._baseline:
            self._baseline = signature
            self.last_change = self._clock()

    def age_s(self) -> float | None:
        """Seconds since the last change was seen, or None before the first heartbeat."""
        return None if self.last_change is None else self._clock() - self.last_change

    def overdue_s(self) -> float:
        """How far past its deadline the heartbeat is (<= 0 while fresh or within the startup grace)."""
        now = self._clock()
        if self.last_change is None:
            return now - self._spawned_at - self.grace_s
        return now - self.last_change - self.timeout_s

    def is_stale(self) -> bool:
        """True when no change was seen for `timeout_s` (or no first heartbeat within `grace_s`)."""
        return self.overdue_s() > 0


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    """The heartbeat as written, or None when missing, truncated or not a JSON object."""
    data = read_json_or_none(path)
    return data if isinstance(data, dict) else None


def write_heartbeat(path: Path, payload: dict[str, Any]) -> None:
    """Atomically replace the heartbeat (not fsynced: losing one to a power cut is harmless)."""
    write_json_atomic(path, payload, durable=False)
