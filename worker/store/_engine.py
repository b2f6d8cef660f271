"""The durability engine shared by the token store and the outbox: records by id, journal + snapshot +
backups.

Every change is one journal record (fsynced) written under a cross-process file lock, after catching up on
what other processes appended. Readers replay only what was appended since their last look (one stat() when
nothing changed). When the journal outgrows a quarter of the snapshot, the state is written as a new snapshot
of the next generation and a new journal of that generation replaces the old one (snapshot first: a kill
between the two steps leaves a journal older than the snapshot, which is then known to be folded in and is
ignored). The replaced journal is kept as a segment in backups/ until a verified backup holds its changes, so a
damaged snapshot is restored from the newest backup plus every later journal (`_segments`).

Over 300 lines on purpose: the lock, the in-memory index and the commit path must be read together (following
other processes, compaction, repair and the file formats are already modules of their own)."""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import filelock

from continuity.watchdog.instance import EventLog, Home, write_bytes_atomic

from . import _compaction as compaction, _follow as follow, _segments as segments, _snapshot as snap
from ._changes import ChangeLog
from ._errors import StoreError, StoreWriteError, acquire_lock, unavailable
from ._files import release_free_memory
from ._journal import Journal, Parsed, frame

logger = logging.getLogger("continuity.store")

Record = dict[str, Any]  # a record as callers see it; in memory each is kept as its compact JSON (bytes)
Op = list[Any]  # ["p", id, record] (put the whole record) or ["d", id] (delete)
StatKey = tuple[int, int, int] | None


_stat_key = follow.stat_key


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
    DEFAULTS: ClassVar[dict[str, Any]] = {}  # fields not written while they hold this value (read back as it)

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
        background: bool = False,
    ) -> Self:
        """Open (creating, repairing or restoring as needed) this map in a Home or in a data directory.

        `backup_interval` and `lock_timeout` are seconds. Raises StoreLocked when the lock stays held longer.
        With `background`, the slow part of automatic compactions and backups runs in a thread of its own (the
        worker); else in the writing call, after the lock is released.
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
            background=background,
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
        background: bool = False,
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
        self._items: dict[str, bytes] = {}  # id -> the record's compact JSON, "id" first (`_snapshot.encode`)
        self._indexed = type(self)._index_put is not DurableMap._index_put  # a subclass keeps an index
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
        self._background = background
        self._compacting = False  # a switched generation whose snapshot is still being written (`_compaction`)
        self._deferred: compaction.Pending | None = None  # ... not started yet: started once the lock is released
        self._thread: threading.Thread | None = None
        self._lock_depth = 0

    # -- hooks for indexes -----------------------------------------------------------------------------------
    def _rebuild_index(self) -> None:
        """Called after the whole state was (re)loaded."""

    def _index_put(self, ident: str, old: Record | None, new: Record) -> None:
        """Called after `ident` was set (`old` is decoded only for a subclass that defines this)."""

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
        """Wait for a compaction in flight, release the journal descriptor; the object must not be used afterwards."""
        self._wait_compaction()
        with self._mutex:
            self._deferred = None
            self._journal.close()

    def _wait_compaction(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- locking and catching up -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            acquire_lock(self._flock, timeout_s=self.lock_timeout)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                self._flock.release()
        if self._deferred is not None and self._lock_depth == 0:  # a switched generation: write its snapshot now
            self._start_deferred()

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
        follow.sync_locked(self)  # apply what others appended; follow their compactions; reload when needed

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
                try:
                    raw = snap.encode(op[1], op[2])
                except (TypeError, ValueError) as exc:  # NaN in a hand-made journal: not JSON we can keep
                    logger.warning("%s: skipped a journal record for %r: %s", self.NAME, op[1], exc)
                    continue
                old = self._items.get(op[1])
                self._items[op[1]] = raw
                if self._indexed:
                    self._index_put(op[1], None if old is None else self._decode(old), op[2])
                self._changes.note(op[1])
            elif op[0] == "d":
                gone = self._items.pop(op[1], None)
                if gone is not None:
                    if self._indexed:
                        self._index_del(op[1], self._decode(gone))
                    self._changes.note(op[1])

    # -- records ---------------------------------------------------------------------------------------------
    def _decode(self, raw: bytes) -> Record:
        record: Record = json.loads(raw)
        for key, value in self.DEFAULTS.items():  # a field left out because it held its default
            if key not in record:
                record[key] = copy.copy(value)
        return record

    def _stored(self, record: Record) -> Record:
        """`record` as journals, snapshots and memory keep it: without the fields that hold their DEFAULTS."""
        defaults = self.DEFAULTS
        if not defaults:
            return record
        return {
            key: value
            for key, value in record.items()
            if key not in defaults or type(value) is not type(defaults[key]) or value != defaults[key]
        }

    def _record(self, ident: str) -> Record | None:
        """The record `ident` (a new dict: the caller may change it), or None."""
        raw = self._items.get(ident)
        return None if raw is None else self._decode(raw)

    def _records(self) -> Iterator[tuple[str, Record]]:
        """(id, record) for every record, decoded one at a time."""
        for ident, raw in self._items.items():
            yield ident, self._decode(raw)

    # -- committing ------------------------------------------------------------------------------------------
    def _commit_locked(self, ops: list[Op]) -> None:
        """With `_writing()` held: make `ops` durable as one record, then apply them."""
        if not ops:
            return
        if self.DEFAULTS:
            ops = [[op[0], op[1], self._stored(op[2])] if op[0] == "p" else op for op in ops]
        self._journal.append(frame({"ops": ops}))
        self._apply(ops)
        self._schedule_locked(backup=self._backup_due_locked())

    def _schedule_locked(self, *, backup: bool) -> None:
        compaction.schedule_locked(self, backup=backup)

    def _start_deferred(self) -> None:
        compaction.start_deferred(self)

    def compact(self) -> None:
        """Write the whole state as a new snapshot generation and start an empty journal (the lock is held only
        to switch journals, not while the snapshot is written)."""
        with self._mutex:
            compaction.switch_now(self, backup=False)

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
        self._journal.create(new_gen, count=len(self._items))
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
        records = self._items.values()
        return snap.render(kind=self.KIND, items_key=self.ITEMS_KEY, gen=gen, records=records, count=len(self._items))

    # -- backups ---------------------------------------------------------------------------------------------
    def backup(self) -> Path:
        """Write a verified backup now (whatever the interval); returns its path. StoreWriteError when it cannot
        be written or verified (full disk, I/O error)."""
        with self._mutex:
            try:
                path = compaction.switch_now(self, backup=True)
            except StoreError:
                raise
            except OSError as exc:
                raise StoreWriteError(
                    exc.errno, f"could not write a backup in {self.backup_dir}: {exc.strerror or exc}"
                ) from exc
            assert path is not None
            return path

    def maybe_backup(self) -> Path | None:
        """A backup if `backup_interval` seconds passed since the newest one and something changed since (its path;
        None also when it is being written in the background)."""
        return compaction.maybe_backup(self)

    def _backup_due_locked(self) -> bool:
        return compaction.backup_due_locked(self)

    # -- loading, including repair ---------------------------------------------------------------------------
    def _full_load_locked(self) -> None:
        from ._repair import load_state

        load_state(self)
        self._changes.reset()  # loaded whole: to a reader following changes, everything changed
        release_free_memory()  # what reading and parsing the files took is free now
