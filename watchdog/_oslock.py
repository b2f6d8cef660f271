"""A non-blocking exclusive lock on a file, released by the OS when its holder dies (flock / LockFileEx).

The watchdog uses this instead of filelock: importing filelock 4.x pulls in asyncio and sqlite3 (about 8 MB of
RSS), which alone would break the watchdog's memory budget. The store, where filelock's features matter, uses it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


class LockHeld(BlockingIOError):
    """Another process holds the lock."""


class ExclusiveFileLock:
    """Holds an exclusive lock on `path` from `acquire()` until `release()` (or the process's death)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now or raise LockHeld."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if sys.platform == "win32":  # pragma: no cover - Windows only
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise LockHeld(f"{self.path} is locked by another process") from exc
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases it on every OS)."""
        if self._fd is not None:
            if sys.platform == "win32":  # pragma: no cover - Windows only
                import msvcrt

                os.lseek(self._fd, 0, os.SEEK_SET)
                msvcrt.locking(self._fd, msvcrt.LK_UNLCK, 1)
            os.close(self._fd)
            self._fd = None
