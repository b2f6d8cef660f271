"""Compactions and backups that never stall writers on a big store.

Under the store lock only the cheap step happens (`switch`): the live journal of generation G is kept as a segment
(a hard link), an empty journal of generation G+1 replaces it, and the records are captured (a list of the raw
bytes each record already is). From then on the files say: snapshot G + segment G + journal G+1, a state every
loader reads as it is (`_repair`). The slow step (`finish`) runs with the lock released (in a background thread
in the worker): the snapshot of G+1 is rendered (a join of those bytes) and written to a temp file and fsynced, a
backup is written and verified beside it if one is due, and only the rename of the snapshot into place (and the
pruning of old backups and segments) takes the lock again. A snapshot of G+1 is put in place only while the live
generation is still G+1 and no newer snapshot is there; otherwise it is dropped (nothing is lost: the journals
hold every change). Writers meanwhile append to journal G+1."""

from __future__ import annotations

import calendar
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from continuity.watchdog.instance import fsync_dir

from . import _files as files, _segments as segments, _snapshot as snap
from ._errors import StoreError, StoreWriteError
from ._follow import stat_key

if TYPE_CHECKING:
    from ._engine import DurableMap

logger = logging.getLogger("continuity.store")


@dataclass
class Pending:
    """A generation whose journal is live but whose snapshot is still to be written."""

    gen: int
    offset: int  # the journal position the captured state is at (just after the new journal's header)
    parts: list[bytes]
    backup: bool
    now: float


def switch(m: DurableMap, *, backup: bool) -> Pending:
    """With the lock held: keep the live journal as a segment and start generation G+1 with an empty journal;
    returns what `finish` writes. StoreWriteError when the segment or the journal cannot be written (then nothing
    changed)."""
    m._archive_journal_locked()
    new_gen = m._gen + 1
    m._journal.create(new_gen, count=len(m._items))
    m._gen = new_gen
    return Pending(new_gen, m._journal.offset, list(m._items.values()), backup, m._clock())


def finish(m: DurableMap, pending: Pending) -> Path | None:
    """Without the lock: write the snapshot of `pending` (and its backup when one is due), then put the snapshot in
    place under the lock; returns the backup's path. OSError when a file cannot be written."""
    chunks = snap.render_chunks(kind=m.KIND, items_key=m.ITEMS_KEY, gen=pending.gen, records=pending.parts)
    tmp, _sha = files.write_temp(m.snapshot_path, chunks)  # piece by piece: never the whole file in memory
    pending.parts = []
    try:
        info = None
        if pending.backup:
            info = snap.copy_backup(m.backup_dir, m.NAME, tmp, now=pending.now, gen=pending.gen, offset=pending.offset)
        with m._locked():
            m._sync_locked()
            _install_locked(m, pending.gen, tmp, tmp.stat().st_size)
            if info is not None:
                snap.prune_backups(m.backup_dir, m.NAME, keep=m.max_backups)
                m._last_backup_at, m._last_backup_version = pending.now, (info.gen, info.offset)
                prune_segments_locked(m)
        return info.path if info is not None else None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def prune_segments_locked(m: DurableMap) -> None:
    """Delete the segments no restore can need: those older than the oldest kept backup and than the snapshot in
    place (which may still be of an older generation than the newest backup: its compaction's write was dropped)."""
    needed = [b.gen for b in snap.list_backups(m.backup_dir, m.NAME)]
    header = snap.read_header(m.snapshot_path)
    if header is not None:
        needed.append(header[0])
    segments.prune(m.backup_dir, m.NAME, below=min(needed, default=0))


def _install_locked(m: DurableMap, gen: int, tmp: Path, size: int) -> None:
    """Rename the snapshot of `gen` into place if it is still the live generation's and no newer one is there."""
    header = snap.read_header(m.snapshot_path)
    if m._gen != gen or (header is not None and header[0] >= gen):
        logger.info(
            "%s: snapshot of generation %d not installed (now at %d); the journals hold it", m.NAME, gen, m._gen
        )
        return
    try:
        os.replace(tmp, m.snapshot_path)
        fsync_dir(m.data_dir)
    except FileNotFoundError:  # a full load (another process) removed our temp file: the next compaction writes it
        logger.info("%s: the snapshot of generation %d was removed before its rename", m.NAME, gen)
        return
    except OSError as exc:
        raise StoreWriteError(exc.errno, f"could not write {m.snapshot_path}: {exc}") from exc
    m._snap_key, m._snap_size = stat_key(m.snapshot_path), size


# -- when: scheduling, in this thread or in the background ---------------------------------------------------------
def schedule_locked(m: DurableMap, *, backup: bool) -> None:
    """With the lock held, after a commit: switch to a new generation when the journal outgrew a quarter of the
    snapshot or a backup is due; its snapshot (and backup) is written once the lock is released."""
    if m._compacting:
        return
    if not backup and m._journal.offset <= max(m.compact_min_bytes, m._snap_size // 4):
        return
    try:
        pending = switch(m, backup=backup)
    except OSError as exc:  # the change itself is durable in the journal
        logger.warning("%s: compaction failed, will retry: %s", m.NAME, exc)
        if backup:
            m._last_backup_at = m._clock()  # do not retry on every write
        return
    m._compacting, m._deferred = True, pending


def start_deferred(m: DurableMap) -> None:
    """Write the scheduled generation's snapshot: in a thread of its own (`background`), else now."""
    with m._mutex:
        pending, m._deferred = m._deferred, None
    if pending is None:
        return
    if m._background:
        thread = threading.Thread(target=finish_logged, args=(m, pending), name=f"{m.NAME}-compaction", daemon=True)
        m._thread = thread
        thread.start()
    else:
        finish_logged(m, pending)


def finish_logged(m: DurableMap, pending: Pending) -> Path | None:
    """`finish`, with a failure logged (the journals hold every change; the next compaction tries again)."""
    try:
        return finish(m, pending)
    except (OSError, StoreError) as exc:
        logger.warning("%s: writing the snapshot of generation %d failed: %s", m.NAME, pending.gen, exc)
        if pending.backup:
            m._last_backup_at = m._clock()  # do not retry on every write
        return None
    finally:
        m._compacting = False
        files.release_free_memory()


def switch_now(m: DurableMap, *, backup: bool) -> Path | None:
    """Switch generations and write the snapshot (and a backup) in this thread; the backup's path."""
    m._wait_compaction()
    with m._writing():
        m._compacting = True
        try:
            pending = switch(m, backup=backup)
        except BaseException:
            m._compacting = False
            raise
    try:
        return finish(m, pending)
    finally:
        m._compacting = False


def maybe_backup(m: DurableMap) -> Path | None:
    """A backup if `backup_interval` seconds passed since the newest one and something changed since (its path;
    None also when it is being written in the background)."""
    with m._mutex:
        if m._last_backup_at is not None and m._clock() - m._last_backup_at < m.backup_interval:
            return None
        with m._writing():
            if m._compacting or not backup_due_locked(m):
                return None
            try:
                pending = switch(m, backup=True)
            except OSError as exc:
                logger.warning("%s: backup failed: %s", m.NAME, exc)
                m._last_backup_at = m._clock()
                return None
            m._compacting = True
            if m._background:
                m._deferred = pending  # started when _writing() releases the lock
                return None
        return finish_logged(m, pending)


def backup_due_locked(m: DurableMap) -> bool:
    """`backup_interval` seconds passed since the newest backup (ours or another process's) and the state is not
    the one it holds."""
    now = m._clock()
    if m._last_backup_at is not None and now - m._last_backup_at < m.backup_interval:
        return False
    newest = next(iter(snap.list_backups(m.backup_dir, m.NAME)), None)
    if newest is not None:  # another process may have taken one
        m._last_backup_at = stamp_seconds(newest.stamp)
        m._last_backup_version = (newest.gen, newest.offset)
        if now - m._last_backup_at < m.backup_interval:
            return False
    return m._last_backup_version != (m._gen, m._journal.offset)


def stamp_seconds(stamp: str) -> float:
    """Wall-clock seconds of a backup's name stamp."""
    return calendar.timegm(time.strptime(stamp[:15], "%Y%m%dT%H%M%S")) + int(stamp[15:21]) / 1e6
