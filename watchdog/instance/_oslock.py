"""A non-blocking exclusive lock on a file, released by the OS when its holder dies (flock / LockFileEx).

The watchdog uses this instead of filelock: importing filelock 4.x pulls in asyncio and sqlite3 (about 8 MB of
RSS), which alone would break the watchdog's memory budget. The store, where filelock's features matter, uses it.
"""

from __future__ import annotations

import contextlib
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

    def write_owner(self, text: str) -> None:
        """Replace the lock file's content with `text` (who holds it), best effort: a full disk only loses it."""
        if self._fd is None:
            return
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, text.encode("utf-8"))
            os.ftruncate(self._fd, len(text.encode("utf-8")))
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.lseek(self._fd, 0, os.SEEK_SET)

    def still_ours(self) -> bool:
        """True while `path` is still the file this lock holds: False once it was deleted, moved or replaced (its
        directory or the home with it), when another process could lock a new file at the same path."""
        if self._fd is None:
            return False
        try:
            held, now = os.fstat(self._fd), os.stat(self.path)
        except OSError:
            return False
        return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases it on every OS)."""
        if self._fd is not None:
            if sys.platform == "win32":  # pragma: no cover - Windows only
                import msvcrt

                os.lseek(self._fd, 0, os.SEEK_SET)
                msvcrt.locking(self._fd, msvcrt.LK_UNLCK, 1)
            os.close(self._fd)
            self._fd = None


def is_locked(path: Path) -> bool:
    """True when some process holds the lock on `path` (never creates the file; a missing one is not locked).

    Probes with a shared lock taken and dropped at once; a watchdog starting in that instant retries (_single.py).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO put there must not block us
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBRLCK, 1)
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
