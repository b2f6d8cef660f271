"""run/heartbeat.json: written by the worker's main loop, watched by the watchdog on its own monotonic clock."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._dirwatch import DirWatch
from .atomicfile import read_json_or_none, write_json_atomic

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


_NUMBER = (int, float)
_OPT_NUMBER = (int, float, type(None))
_OPT_STR = (str, type(None))
# The fields status, health and the API read, with the types they may have. Any command may write the heartbeat
# (`watchdog.worker_command`): a field of another type is dropped and named in "invalid_fields"; unknown fields
# pass through.
_TOP: dict[str, tuple[type, ...]] = {
    "pid": (int,), "seq": (int,), "ts": _NUMBER, "started_at": _NUMBER, "uptime_s": _NUMBER, "rss_bytes": (int,),
    "tokens": (dict,), "outbox": (dict,), "whatsapp": (dict,), "sending": (dict,), "jobs": (list,), "notify": (dict,),
    "inbox": (dict,),
}  # fmt: skip
_SECTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "whatsapp": {
        "state": (str,), "connected": (bool,), "quality": (str,), "reconnect_attempts": (int,),
        "recent_reconnects": (int,), "browser_restarts": (int,), "restart_failures": (int,), "last_ok": _OPT_NUMBER,
        "probe_ms": _OPT_NUMBER, "profile_mib": _OPT_NUMBER, "profile_mb": _OPT_NUMBER,
        "session_max_mb": _OPT_NUMBER, "needs_qr_scan": (bool,), "qr": _OPT_STR, "web_version": _OPT_STR,
        "fallback_roles": (dict,), "bad_selectors": (list,), "unknown_popup": (list, type(None)),
        "browser_rss_mib": _OPT_NUMBER, "browser_age_h": _OPT_NUMBER, "browser_recycles": (int,),
        "pairing_code": _OPT_STR, "pairing_state": _OPT_STR, "pairing_error": _OPT_STR,
    },
    "sending": {
        "pending": (int,), "stalled": (bool,), "failing_for_s": _OPT_NUMBER, "consecutive_failures": (int,),
        "failing_step": _OPT_STR, "failing_role": _OPT_STR, "problem": _OPT_STR, "last_sent_at": _OPT_NUMBER,
        "paced_until": _OPT_NUMBER, "paced_by": _OPT_STR,
    },
    "tokens": {"active": (int,)},
    "outbox": {"pending": (int,)},
    "inbox": {"messages": (int,), "jobs_pending": (int,), "webhook_pending": (int,), "reading": (int,),
              "webhook": (dict,), "jobs": (dict,)},
}  # fmt: skip


def _typed(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance, except that a bool is no number (JSON true is not 1 here)."""
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def clean_heartbeat(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without the known fields whose type is wrong; those are listed in "invalid_fields"."""
    out = dict(data)
    invalid: list[str] = []
    for key, types in _TOP.items():
        if key in out and not _typed(out[key], types):
            invalid.append(key)
            del out[key]
    for name, fields in _SECTIONS.items():
        section = out.get(name)
        if isinstance(section, dict):
            bad = [key for key, types in fields.items() if key in section and not _typed(section[key], types)]
            if bad:
                out[name] = {k: v for k, v in section.items() if k not in bad}
                invalid.extend(f"{name}.{key}" for key in bad)
    if isinstance(out.get("jobs"), list):
        out["jobs"] = [job for job in out["jobs"] if isinstance(job, dict)]
    if invalid:
        out["invalid_fields"] = invalid
    return out


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    """The heartbeat as written, or None when missing, truncated or not a JSON object; known fields of a wrong
    type are dropped and named in "invalid_fields" (see clean_heartbeat)."""
    data = read_json_or_none(path)
    return clean_heartbeat(data) if isinstance(data, dict) else None


def write_heartbeat(path: Path, payload: dict[str, Any]) -> None:
    """Atomically replace the heartbeat (not fsynced: losing one to a power cut is harmless)."""
    write_json_atomic(path, payload, durable=False)
