"""The ledger `data/sent_tokens.txt`: one notified token id a line, append-only, fsynced.

A last line without its newline (a writer killed mid-write) is ignored by readers and cut by the next
writer.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import filelock

from continuity.watchdog.instance import Home, fsync_dir

from ._errors import StoreWriteError, acquire_lock
from ._validate import check_id


class Ledger:
    """Which token ids were notified. `ids` is refreshed incrementally from the file (O(new lines))."""

    def __init__(self, where: Home | str | os.PathLike[str], *, lock_timeout: float = 10.0) -> None:
        data_dir = Path(where.data_dir if isinstance(where, Home) else where)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "sent_tokens.txt"
        self.lock_timeout = lock_timeout
        self._flock = filelock.FileLock(
            str(data_dir / "sent_tokens.lock"), timeout=lock_timeout, poll_interval=0.001, thread_local=False
        )
        self._mutex = threading.RLock()
        self._ids: dict[str, None] = {}
        self._order: list[str] = []  # the ids in the order read, each once (changes_since slices it)
        self._epoch = 0  # +1 whenever ids read before are forgotten (the file replaced or cut)
        self._offset = 0  # end of the last complete line read
        self._ino: int | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            acquire_lock(self._flock, timeout_s=self.lock_timeout)
            try:
                yield
            finally:
                self._flock.release()

    def refresh(self) -> None:
        """Read lines appended since the last call."""
        with self._mutex:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return
            if st.st_ino != self._ino or st.st_size < self._offset:
                if self._ids:
                    self._epoch += 1
                self._ids, self._order, self._offset, self._ino = {}, [], 0, st.st_ino
            if st.st_size == self._offset:
                return
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
            end = data.rfind(b"\n") + 1
            for line in data[:end].decode("utf-8", errors="replace").split("\n")[:-1]:  # few objects to free
                ident = line.strip()
                if ident and ident not in self._ids:
                    self._ids[ident] = None
                    self._order.append(ident)
            self._offset += end

    def ids(self) -> list[str]:
        """Every id in the ledger, oldest first (each once)."""
        with self._mutex:
            self.refresh()
            return list(self._ids)

    def missing(self, idents: Iterable[str]) -> list[str]:
        """Those of `idents` not in the ledger, in their order (one refresh for all)."""
        with self._mutex:
            self.refresh()
            return [ident for ident in idents if ident not in self._ids]

    def changes_since(self, cursor: tuple[int, int] | None) -> tuple[tuple[int, int], list[str] | None]:
        """Refresh, then (next cursor, ids added after `cursor`, oldest first), or None for the ids when ids read
        before may have been lost since (the file replaced or cut) or for a first call (cursor None)."""
        with self._mutex:
            self.refresh()
            now = (self._epoch, len(self._order))
            if cursor is None or cursor[0] != self._epoch:
                return now, None
            return now, self._order[cursor[1] :]

    def __contains__(self, ident: object) -> bool:
        with self._mutex:
            self.refresh()
            return ident in self._ids

    def append(self, ident: str) -> None:
        """Add one id; on disk when this returns."""
        self.extend([ident])

    def extend(self, idents: Iterable[str]) -> None:
        """Add several ids with one write and one fsync; on disk when this returns."""
        lines = [check_id(ident) for ident in idents]
        if not lines:
            return
        data = "".join(f"{ident}\n" for ident in lines).encode("utf-8")
        with self._locked():
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            try:
                size = os.fstat(fd).st_size
                keep = self._complete_length(fd, size)
                try:
                    if keep != size:  # a torn last line: cut it so it is not glued to ours
                        os.ftruncate(fd, keep)
                    os.lseek(fd, keep, os.SEEK_SET)
                    view, written = memoryview(data), 0
                    while written < len(view):
                        written += os.write(fd, view[written:])
                    os.fsync(fd)
                except OSError as exc:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, keep)
                    raise StoreWriteError(exc.errno, f"could not append to {self.path}: {exc}") from exc
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.path.parent)
        self.refresh()

    @staticmethod
    def _complete_length(fd: int, size: int) -> int:
        """Length of the file up to and including its last newline."""
        pos = size
        while pos > 0:
            start = max(0, pos - 4096)
            os.lseek(fd, start, os.SEEK_SET)
            chunk = os.read(fd, pos - start)
            nl = chunk.rfind(b"\n")
            if nl != -1:
                return start + nl + 1
            pos = start
        return 0
