"""The watchdog's look at run/heartbeat.json: when it last *saw* the file change, on its own monotonic clock.

The file's format (what the worker writes, what status, health and the API read) is the instance contract:
`continuity.watchdog.instance` (read_heartbeat, write_heartbeat)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ._dirwatch import DirWatch

logger = logging.getLogger("continuity.watchdog")

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
    With `watch()` (Linux), the kernel reports each write: a change is seen the moment it happens and nobody
    has to look every `check_interval` (thread-safe: the watch thread polls). Elsewhere the caller polls.
    """

    def __init__(self, path: Path, *, timeout_s: float, grace_s: float, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self._clock = clock
        self._lock = threading.Lock()
        self._baseline: Signature | None = None
        self._spawned_at = clock()
        self.last_change: float | None = None
        self._watch: DirWatch | None = None

    def watch(self, on_other: Callable[[set[str] | None], None]) -> bool:
        """Have the kernel report changes in the heartbeat's directory; other entries' names go to `on_other`
        (None: cannot tell which). False where this system cannot: then poll every check_interval."""

        def changed(names: set[str] | None) -> None:
            if names is None or self.path.name in names:
                self.poll()
            if names is None:
                on_other(None)
            elif others := names - {self.path.name}:
                on_other(others)

        self._watch = DirWatch.start(self.path.parent, changed)
        return self._watch is not None

    @property
    def watching(self) -> bool:
        """True while the kernel reports changes (lost when the directory is replaced or a change went unseen)."""
        return self._watch is not None and not self._watch.lost

    def close(self) -> None:
        """Stop watching."""
        if self._watch is not None:
            self._watch.close()

    def check(self) -> None:
        """The loop's own look (at a deadline): a change the kernel did not report means the watch cannot be
        trusted (e.g. a worker rewriting the open file without closing it): poll from now on."""
        if self.poll() and self.watching:
            assert self._watch is not None
            self._watch.lost = True
            logger.warning("%s changed unreported; looking at it every check_interval from now", self.path)

    def reset(self) -> None:
        """A new worker was spawned: forget the old one's heartbeats; the startup grace begins now."""
        with self._lock:
            self._baseline = _signature(self.path)
            self._spawned_at = self._clock()
            self.last_change = None

    def start_grace(self) -> None:
        """The new worker is running (and its spawn recorded): the startup grace counts from now."""
        with self._lock:
            self._spawned_at = self._clock()

    def poll(self) -> bool:
        """Look at the file once; record the moment a change is first seen. True when it had changed."""
        with self._lock:
            signature = _signature(self.path)
            if signature is None or signature == self._baseline:
                return False
            self._baseline = signature
            self.last_change = self._clock()
            return True

    def age_s(self) -> float | None:
        """Seconds since the last change was seen, or None before the first heartbeat."""
        return None if self.last_change is None else self._clock() - self.last_change

    def overdue_s(self) -> float:
        """How far past its deadline the heartbeat is (<= 0 while fresh or within the startup grace)."""
        with self._lock:
            now = self._clock()
            if self.last_change is None:
                return now - self._spawned_at - self.grace_s
            return now - self.last_change - self.timeout_s

    def is_stale(self) -> bool:
        """True when no change was seen for `timeout_s` (or no first heartbeat within `grace_s`)."""
        return self.overdue_s() > 0
