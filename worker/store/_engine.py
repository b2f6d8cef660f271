"""The durability engine shared by the token store and the outbox: records by id, journal + snapshot +
backups.

Every change is one journal record (fsynced) written under a cross-process file lock, after catching up on
what other processes appended. Readers replay only what was appended since their last look (one stat() when
nothing changed). When the journal outgrows a quarter of the snapshot, the state is written as a new snapshot
of the next generation and a new journal of that generation replaces the old one (snapshot first: a kill
between the two steps leaves a journal older than the snapshot, which is then known to be folded in and is
ignored). The replaced journal is kept as a segment in backups/ until a verified backup holds its changes, so a
damaged snapshot is restored from the newest backup plus every later journal (`_segments`)."""

from __future__ import annotations

import calendar
import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import filelock

from continuity.watchdog.atomicfile import write_bytes_atomic
from continuity.watchdog.events import EventLog
from continuity.watchdog.home import Home

from . import _segments as segments
from . import _snapshot as snap
from ._changes import ChangeLog
from ._errors import StoreError, StoreLocked, StoreWriteError, unavailable
from ._journal import Journal, Parsed, frame

logger = logging.getLogger("continuity.store")

Record = dict[str, Any]
Op = list[Any]  # ["p", id, record] (put the whole record) or ["d", id] (delete)
StatKey = tuple[int, int, int] | None


def _stat_key(path: Path) -> StatKey:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _stamp_seconds(stamp: str) -> float:
    return calendar.timegm(time.strptime(stamp[:15], "%Y%m%dT%H%M%S")) + int(stamp[15:21]) / 1e6


def data_dir_of(where: Home | str | os.PathLike[str]) -> tuple[str, str | None]:
    """(data dir, events file) for a Home, or for a path to the data directory itself."""
    if isinstance(where, Home):
        return str(where.data_dir), str(where.events_file)
    return os.fspath(where), None


class DurableMap:
    """Records keyed by id, shared by processes; subclasses give names and the public API."""

    NAME = "tracked_tokens"  # files: data/<NAME>.json, .journal, .lock; backups data/backups/<NAME>.*.json
    KIND = "tokens"
    ITEMS_KEY = "tokens"
    DEFAULT_SOURCE = "store"  # "source" of its events

    @classmethod
    def open(
        cls,
        where: Home | str | os.PathLike[str],
        *,
        backup_interval: float = 30.0,
        max_backups: int = 10,
        lock_timeout: float = 10.0,
        source: str | None = None,
        clock: Callable[[], float] = time.time,
        compact_min_bytes: int = 256 * 1024,
    ) -> Self:
        """Open (creating, repairing or restoring as needed) this map in a Home or in a data directory.

        `backup_interval` and `lock_timeout` are seconds. Raises StoreLocked when the lock stays held longer.
        """
        data_dir, events = data_dir_of(where)
        store = cls(
            data_dir,
            lock_timeout=lock_timeout,
            backup_interval=backup_interval,
            max_backups=max_backups,
            events_file=events,
            source=source or cls.DEFAULT_SOURCE,
            clock=clock,
            compact_min_bytes=compact_min_bytes,
        )
        store._open()
        return store

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        lock_timeout: float = 10.0,
        backup_interval: float = 30.0,
        max_backups: int = 10,
        events_file: str | os.PathLike[str] | None = None,
        source: str = "store",
        clock: Callable[[], float] = time.time,
        compact_min_bytes: int = 256 * 1024,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.snapshot_path = self.data_dir / f"{self.NAME}.json"
        self.journal_path = self.data_dir / f"{self.NAME}.journal"
        self.lock_path = self.data_dir / f"{self.NAME}.lock"
        self.backup_dir = self.data_dir / "backups"
        self.lock_timeout = lock_timeout
        self.backup_interval = backup_interval
        self.max_backups = max_backups
        self.compact_min_bytes = compact_min_bytes
        self._clock = clock
        events = Path(events_file) if events_file else self.data_dir.parent / "logs" / "events.jsonl"
        self._events = EventLog(events, source=source, clock=clock)
        self._items: dict[str, Record] = {}
        self._changes = ChangeLog()  # ids changed since a cursor, for readers that follow changes (notify)
        self._mutex = threading.RLock()
        self._flock = filelock.FileLock(
            str(self.lock_path), timeout=lock_timeout, poll_interval=0.001, thread_local=False
        )
        self._journal = Journal(self.journal_path)
        self._gen = 0
        self._snap_key: StatKey = None
        self._snap_size = 0
        self._last_backup_at: float | None = None  # wall-clock seconds of the newest backup we know of
        self._last_backup_version: tuple[int, int] | None = None

    # -- hooks for indexes -----------------------------------------------------------------------------------
    def _rebuild_index(self) -> None:
        """Called after the whole state was (re)loaded."""

    def _index_put(self, ident: str, old: Record | None, new: Record) -> None:
        """Called after `ident` was set."""

    def _index_del(self, ident: str, old: Record) -> None:
        """Called after `ident` was removed."""

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _open(self) -> None:
        """Create the data directory and load; StoreUnavailable when its files cannot be opened or created."""
        try:
            if self.data_dir.exists() and not self.data_dir.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory", str(self.data_dir))
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with self._locked():
                self._full_load_locked()
        except StoreError:
            raise
        except OSError as exc:
            raise unavailable(f"cannot open the {self.NAME} store in {self.data_dir}", exc) from exc

    def close(self) -> None:
        """Release the journal descriptor; the object must not be used afterwards."""
        with self._mutex:
            self._journal.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- locking and catching up -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            try:
                self._flock.acquire()
            except filelock.Timeout as exc:
                raise StoreLocked(
                    f"{self.lock_path} is held by another process for more than {self.lock_timeout:g} s; "
                    "nothing was changed"
                ) from exc
            except OSError as exc:  # a read-only disk, permissions, a directory in its place
                raise unavailable(f"cannot open the lock file {self.lock_path}", exc) from exc
            try:
                yield
            finally:
                self._flock.release()

    def changes_since(self, cursor: int) -> tuple[int, list[str] | None]:
        """Refresh, then (next cursor, ids put or deleted after `cursor`, oldest first, or None: everything may have
        changed, e.g. a first call with -1, or a restore since). In memory, per process (`_changes.ChangeLog`)."""
        with self._mutex:
            self.refresh()
            return self._changes.since(cursor)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the lock with the state caught up on every other process's changes."""
        with self._locked():
            self._sync_locked()
            yield

    def refresh(self) -> None:
        """Apply what other processes committed since the last call; one stat() when nothing changed."""
        with self._mutex:
            try:
                st = os.stat(self.journal_path)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_ino == self._journal.ino:
                if st.st_size != self._journal.seen_size:
                    self._apply_parsed(self._journal.read_new())
                return
            with self._locked():
                self._sync_locked()

    def _sync_locked(self) -> None:
        snap_key = _stat_key(self.snapshot_path)
        try:
            jst = os.stat(self.journal_path)
        except FileNotFoundError:
            jst = None
        if jst is not None and jst.st_ino == self._journal.ino:
            if snap_key != self._snap_key:  # an interrupted compaction, a restore, a person's edit
                self._full_load_locked()
                return
            if jst.st_size != self._journal.seen_size:
                self._apply_parsed(self._journal.read_new())
            self._journal.trim_torn_tail()
            return
        if jst is not None and self._journal.fd is not None:  # another process compacted: drain, then switch
            self._apply_parsed(self._journal.read_new())
            header, old_gen = snap.read_header(self.snapshot_path), self._gen
            try:
                records = self._journal.open()
            except (OSError, ValueError):
                records = None
            if (
                records is not None
                and header == (old_gen + 1, len(self._items))
                and self._journal.gen == old_gen + 1
                and _stat_key(self.snapshot_path) == snap_key
                and snap_key is not None
            ):
                self._gen, self._snap_key, self._snap_size = old_gen + 1, snap_key, snap_key[1]
                self._apply_records(records)
                self._journal.trim_torn_tail()
                return
        self._full_load_locked()

    # -- applying records ------------------------------------------------------------------------------------
    def _apply_parsed(self, parsed: Parsed) -> None:
        self._apply_records(parsed.records)

    def _apply_records(self, records: list[Any]) -> None:
        for record in records:
            ops = record.get("ops") if isinstance(record, dict) else None
            if isinstance(ops, list):
                self._apply(ops)

    def _apply(self, ops: list[Op]) -> None:
        for op in ops:
            if op[0] == "p" and isinstance(op[2], dict):
                old = self._items.get(op[1])
                self._items[op[1]] = op[2]
                self._index_put(op[1], old, op[2])
                self._changes.note(op[1])
            elif op[0] == "d":
                gone = self._items.pop(op[1], None)
                if gone is not None:
                    self._index_del(op[1], gone)
                    self._changes.note(op[1])

    # -- committing ------------------------------------------------------------------------------------------
    def _commit_locked(self, ops: list[Op]) -> None:
        """With `_writing()` held: make `ops` durable as one record, then apply them."""
        if not ops:
            return
        self._journal.append(frame({"ops": ops}))
        self._apply(ops)
        if self._journal.offset > max(self.compact_min_bytes, self._snap_size // 4):
            try:
                self._compact_locked()
            except OSError as exc:  # the change itself is durable in the journal
                logger.warning("%s: compaction failed, will retry: %s", self.NAME, exc)
        self._maybe_backup_locked()

    def compact(self) -> None:
        """Write the whole state as a new snapshot generation and start an empty journal."""
        with self._writing():
            self._compact_locked()

    def _compact_locked(self, gen: int | None = None) -> bytes:
        """Snapshot of the next generation, then a new journal; returns the snapshot bytes."""
        new_gen = self._gen + 1 if gen is None else gen
        data = self._render(new_gen)
        self._archive_journal_locked()  # first: a failure here leaves everything as it was
        self._snap_key = None  # until the journal is switched too, a reload is the only safe way on
        try:
            write_bytes_atomic(self.snapshot_path, data)
        except OSError as exc:
            raise StoreWriteError(exc.errno, f"could not write {self.snapshot_path}: {exc}") from exc
        self._journal.create(new_gen)
        self._gen, self._snap_key, self._snap_size = new_gen, _stat_key(self.snapshot_path), len(data)
        return data

    def _archive_journal_locked(self) -> None:
        """Keep the open journal as a segment (no backup holds its changes yet); no-op when none is open."""
        if self._journal.fd is None or self._journal.gen < 0:
            return
        try:
            segments.archive(self.journal_path, self.backup_dir, self.NAME, self._journal.gen)
        except OSError as exc:
            raise StoreWriteError(
                exc.errno, f"could not keep {self.journal_path.name} in {self.backup_dir}: {exc}"
            ) from exc

    def _render(self, gen: int) -> bytes:
        return snap.render(
            kind=self.KIND,
            items_key=self.ITEMS_KEY,
            gen=gen,
            records=self._items.values(),
            count=len(self._items),
        )

    # -- backups ---------------------------------------------------------------------------------------------
    def backup(self) -> Path:
        """Write a verified backup now (whatever the interval); returns its path. StoreWriteError when it cannot
        be written or verified (full disk, I/O error)."""
        with self._writing():
            try:
                return self._backup_locked()
            except StoreError:
                raise
            except OSError as exc:
                raise StoreWriteError(
                    exc.errno, f"could not write a backup in {self.backup_dir}: {exc.strerror or exc}"
                ) from exc

    def maybe_backup(self) -> Path | None:
        """A backup if `backup_interval` seconds passed since the newest one and something changed since."""
        with self._mutex:
            if self._last_backup_at is not None and self._clock() - self._last_backup_at < self.backup_interval:
                return None
            with self._writing():
                return self._maybe_backup_locked()

    def _maybe_backup_locked(self) -> Path | None:
        now = self._clock()
        if self._last_backup_at is not None and now - self._last_backup_at < self.backup_interval:
            return None
        newest = next(iter(snap.list_backups(self.backup_dir, self.NAME)), None)
        if newest is not None:  # another process may have taken one
            self._last_backup_at = _stamp_seconds(newest.stamp)
            self._last_backup_version = (newest.gen, newest.offset)
            if now - self._last_backup_at < self.backup_interval:
                return None
        if self._last_backup_version == (self._gen, self._journal.offset):
            return None
        try:
            data = None
            if self._journal.offset > self._journal.header_end:  # keep the readable snapshot this fresh too
                data = self._compact_locked()
            return self._backup_locked(data)
        except OSError as exc:
            logger.warning("%s: backup failed: %s", self.NAME, exc)
            self._last_backup_at = now  # do not retry on every write
            return None

    def _backup_locked(self, data: bytes | None = None) -> Path:
        now = self._clock()
        data = self._render(self._gen) if data is None else data
        info = snap.write_backup(self.backup_dir, self.NAME, data, now=now, gen=self._gen, offset=self._journal.offset)
        snap.prune_backups(self.backup_dir, self.NAME, keep=self.max_backups)
        kept = snap.list_backups(self.backup_dir, self.NAME)
        segments.prune(self.backup_dir, self.NAME, below=min((b.gen for b in kept), default=0))
        self._last_backup_at, self._last_backup_version = now, (info.gen, info.offset)
        return info.path

    # -- loading, including repair ---------------------------------------------------------------------------
    def _full_load_locked(self) -> None:
        from ._repair import load_state

        load_state(self)
        self._changes.reset()  # loaded whole: to a reader following changes, everything changed
