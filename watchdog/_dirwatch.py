"""Changes to the entries of one directory, as the kernel reports them (Linux inotify through ctypes).

The watchdog uses this on `run/` so that it sleeps until something happens instead of looking at the heartbeat
every `check_interval`: one wakeup per heartbeat the worker writes, and a stop request is seen at once.
Where inotify is missing (Windows, macOS) or refused (the per-user instance limit), `DirWatch.start` returns None
and the caller polls as before. ctypes is already loaded by psutil, so this costs the watchdog no memory.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger("continuity.watchdog")

IN_ATTRIB = 0x00000004  # touched
IN_CLOSE_WRITE = 0x00000008  # closed after writing
IN_MOVED_TO = 0x00000080  # renamed into the directory (os.replace of an atomic writer)
IN_Q_OVERFLOW = 0x00004000  # events were dropped: anything may have changed
IN_IGNORED = 0x00008000  # the watch is gone (removed by close(), or the directory was deleted)
IN_ONLYDIR = 0x01000000
# Not IN_MODIFY (each write() of a file) nor IN_CREATE: one event per finished write keeps wakeups low. A writer
# that rewrites an open file without closing it is not reported; the caller notices and falls back to polling.
WATCH_MASK = IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR
_HEADER = 16  # struct inotify_event: int wd; uint32 mask, cookie, len; then `len` bytes of name

# Called from the watch thread with the names that changed, or None when it cannot tell (overflow, watch lost).
OnChange = Callable[[set[str] | None], None]


def parse_events(buffer: bytes) -> tuple[set[str], int]:
    """The entry names in a buffer of inotify events, and the OR of their masks."""
    names: set[str] = set()
    masks = 0
    offset = 0
    while offset + _HEADER <= len(buffer):
        mask = int.from_bytes(buffer[offset + 4 : offset + 8], sys.byteorder)
        length = int.from_bytes(buffer[offset + 12 : offset + 16], sys.byteorder)
        raw = buffer[offset + _HEADER : offset + _HEADER + length].rstrip(b"\0")
        if raw:
            names.add(os.fsdecode(raw))
        masks |= mask
        offset += _HEADER + length
    return names, masks


class DirWatch:
    """Calls `on_change` from a daemon thread whenever entries of `directory` are created, written or replaced."""

    def __init__(self, fd: int, wd: int, libc: ctypes.CDLL, directory: Path, on_change: OnChange) -> None:
        self._fd = fd
        self._wd = wd
        self._libc = libc
        self.directory = directory
        self._on_change = on_change
        self._closing = False
        self.lost = False  # True once the watch cannot be trusted (directory deleted or replaced, a change missed)
        self._thread = threading.Thread(target=self._read_loop, name="watch-run-dir", daemon=True)

    @classmethod
    def start(cls, directory: Path, on_change: OnChange) -> DirWatch | None:
        """Watch `directory`; None when this system cannot (the caller then polls)."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.inotify_init1.argtypes = [ctypes.c_int]
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        except (OSError, AttributeError) as exc:
            logger.info("no inotify (%s); looking at %s every check_interval instead", exc, directory)
            return None
        fd = libc.inotify_init1(os.O_CLOEXEC)
        if fd < 0:
            logger.warning("inotify refused (%s); polling %s instead", os.strerror(ctypes.get_errno()), directory)
            return None
        wd = libc.inotify_add_watch(fd, os.fsencode(directory), WATCH_MASK)
        if wd < 0:
            logger.warning("cannot watch %s (%s); polling it instead", directory, os.strerror(ctypes.get_errno()))
            os.close(fd)
            return None
        watch = cls(fd, wd, libc, directory, on_change)
        watch._thread.start()
        return watch

    def _read_loop(self) -> None:
        try:
            while True:
                try:
                    buffer = os.read(self._fd, 64 * 1024)  # blocks: no wakeup until the kernel has an event
                except InterruptedError:
                    continue
                except OSError as exc:
                    logger.warning("watching %s failed (%s); polling it instead", self.directory, exc)
                    self.lost = True
                    self._on_change(None)
                    return
                names, masks = parse_events(buffer)
                if masks & IN_IGNORED:
                    if not self._closing:
                        logger.warning("%s is no longer watched (deleted or replaced?); polling it", self.directory)
                        self.lost = True
                        self._on_change(None)
                    return
                self._on_change(None if masks & IN_Q_OVERFLOW else names)
        finally:
            os.close(self._fd)

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop watching: removing the watch makes the kernel send IN_IGNORED, which ends the blocked read."""
        if self._closing or not self._thread.is_alive():
            return
        self._closing = True
        if self._libc.inotify_rm_watch(self._fd, self._wd) == 0:
            self._thread.join(timeout_s)
