"""Catching up with what other processes did to a store's files, under the lock, without reloading it whole when
that can be avoided.

- Same journal, more bytes: apply the new records.
- The snapshot changed under the same journal: a compaction put the live generation's snapshot in place (taken as
  ours when its CRC checks), else someone else's doing (a restore, an edit, damage): reload whole.
- A new journal: another process switched generations (one or more). Drain the old journal (our descriptor still
  reads it), apply each generation in between from its segment in backups/, then the new journal; every journal's
  header says how many records the state had when it started, so a restore that did not continue the same state
  is noticed and reloaded whole."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from . import _segments as segments, _snapshot as snap

if TYPE_CHECKING:
    from ._engine import DurableMap, StatKey


def stat_key(path: os.PathLike[str] | str) -> StatKey:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def sync_locked(m: DurableMap) -> None:
    """With the lock held: bring `m` up to date with the files."""
    snap_key = stat_key(m.snapshot_path)
    try:
        jst = os.stat(m.journal_path)
    except FileNotFoundError:
        jst = None
    if jst is not None and jst.st_ino == m._journal.ino:
        if snap_key != m._snap_key and not _adopt_snapshot_locked(m, snap_key):
            m._full_load_locked()  # an interrupted compaction, a restore, a person's edit, damage
            return
        if jst.st_size != m._journal.seen_size:
            m._apply_parsed(m._journal.read_new())
        m._journal.trim_torn_tail()
        return
    if jst is not None and m._journal.fd is not None:  # another process switched journals: drain, then follow
        m._apply_parsed(m._journal.read_new())
        if _follow_switch_locked(m, snap_key):
            return
    m._full_load_locked()


def _follow_switch_locked(m: DurableMap, snap_key: StatKey) -> bool:
    """Apply the generations after ours (segments, then the new live journal); False when that cannot be done
    exactly (a segment gone, a journal that did not start from the state the one before ended with)."""
    old_gen = m._gen
    try:
        live = m._journal.open()
    except (OSError, ValueError):
        return False
    new_gen = m._journal.gen
    if new_gen <= old_gen:
        return False
    steps: list[tuple[int | None, list[Any]]] = []
    for gen in range(old_gen + 1, new_gen):
        found = segments.read_segment_counted(segments.segment_path(m.backup_dir, m.NAME, gen), gen)
        if found is None:
            return False
        steps.append(found)
    steps.append((m._journal.start_count, live))
    for count, records in steps:
        if count is None or count != len(m._items):
            return False
        m._apply_records(records)
    m._gen = new_gen
    if snap_key != m._snap_key:
        header = snap.read_header(m.snapshot_path)
        if header is None or not old_gen < header[0] <= new_gen or not snapshot_is_whole(m, snap_key):
            return False
        m._snap_key, m._snap_size = snap_key, snap_key[1] if snap_key else 0
    m._journal.trim_torn_tail()
    return True


def _adopt_snapshot_locked(m: DurableMap, snap_key: StatKey) -> bool:
    """True when the snapshot that appeared is the live generation's own, written after its journal started (a
    compaction's deferred write) and whole: nothing to reload."""
    header = snap.read_header(m.snapshot_path)
    if snap_key is None or header is None or header[0] != m._gen or not snapshot_is_whole(m, snap_key):
        return False
    m._snap_key, m._snap_size = snap_key, snap_key[1]
    return True


def snapshot_is_whole(m: DurableMap, snap_key: StatKey) -> bool:
    """The snapshot file is still the one `snap_key` says and its body has the CRC-32 its header says."""
    try:
        data = m.snapshot_path.read_bytes()
    except OSError:
        return False
    return stat_key(m.snapshot_path) == snap_key and snap.is_whole(data, items_key=m.ITEMS_KEY)
