"""Loading a store's state from its files under the lock, repairing what a crash or a damaged file left."""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _segments as segments, _snapshot as snap
from ._errors import StoreCorrupt, unavailable
from ._files import remove_dead_temp_files
from ._follow import stat_key

if TYPE_CHECKING:
    from ._engine import DurableMap

logger = logging.getLogger("continuity.store")

_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


def _read_snapshot(m: DurableMap) -> tuple[bool, int | None, dict[str, bytes] | None, str | None]:
    """(exists, generation, records, damage) of the snapshot file."""
    try:
        data = m.snapshot_path.read_bytes()
    except FileNotFoundError:
        return False, None, None, None
    except OSError as exc:
        if exc.errno in _NOT_ALLOWED:  # not damaged: this process may not read it
            raise unavailable(f"cannot read {m.snapshot_path}", exc) from exc
        return True, None, None, f"unreadable: {exc}"  # a disk error
    try:
        gen, items = snap.parse(data, items_key=m.ITEMS_KEY, what=m.snapshot_path.name)
    except ValueError as exc:
        return True, None, None, str(exc)
    return True, gen, items, None


def _move_aside(m: DurableMap, path: Any, what: str) -> str:
    try:
        return str(snap.move_aside(path, now=m._clock()))
    except OSError as exc:
        raise StoreCorrupt(exc.errno, f"{what} {path} is damaged and cannot be moved aside: {exc}") from exc


def journal_damaged(m: DurableMap, exc: Exception) -> None:
    """Move a journal that cannot be read aside (never deleted) and record it."""
    moved = _move_aside(m, m.journal_path, "journal")
    logger.error("%s: journal damaged (%s); moved to %s", m.NAME, exc, moved)
    m._events.emit("journal_damaged", store=m.NAME, error=str(exc), moved_to=moved)


def load_state(m: DurableMap) -> None:
    """Rebuild `m`'s state from snapshot + journal (or the newest valid backup + the journals since); lock held."""
    m._journal.close()
    for path in (m.snapshot_path, m.journal_path):
        remove_dead_temp_files(m.data_dir, path.name)
    remove_dead_temp_files(m.backup_dir, m.NAME)  # half-written backups and segments
    exists, snap_gen, snap_items, damage = _read_snapshot(m)
    records: list[Any] = []
    j_gen: int | None = None
    try:
        records = m._journal.open()
        j_gen = m._journal.gen
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno in _NOT_ALLOWED:  # the file is fine; this process may not write it: say so, touch nothing
            raise unavailable(f"cannot open {m.journal_path} for writing", exc) from exc
        journal_damaged(m, exc)
    except ValueError as exc:
        journal_damaged(m, exc)

    compact_to: int | None = None
    new_journal = False
    batches: list[list[Any]] = []
    if damage is None and snap_items is None and not j_gen:  # a new store (or one never compacted)
        items: dict[str, bytes] = {}
        batches, compact_to = ([records] if j_gen == 0 else []), 1
    elif damage is None and snap_items is not None and snap_gen is not None:
        items = snap_items
        if snap_gen == snap.UNKNOWN_GEN:  # the seed's format: adopt it
            logger.info("%s: adopting a seed-format %s", m.NAME, m.snapshot_path.name)
            batches, compact_to = ([records] if j_gen is not None else []), (j_gen or 0) + 1
        elif j_gen is None or j_gen < snap_gen:  # a kill between writing the snapshot and the new journal
            new_journal = True
        elif j_gen == snap_gen:
            batches = [records]
        elif (deferred := _deferred_chain(m, snap_gen, j_gen, records)) is not None:
            batches = deferred  # compactions switched journals and had not put their snapshot in place (yet)
        elif (
            chain := segments.replay_chain(m.backup_dir, m.NAME, base_gen=snap_gen, last_gen=j_gen, live=records)
        ).missing and _a_backup_is_whole(m, j_gen, records):  # a backup and the journals since it hold every change
            reason = f"generation {snap_gen}, older than the journal's {j_gen}, with generation(s) {chain.missing} lost"
            items, batches, compact_to = _restore(m, exists, reason, j_gen, records)
        else:  # the journals in between are in backups/ unless a person replaced the snapshot by an old copy
            logger.warning(
                "%s: snapshot generation %d is older than the journal's %d; replaying generations %s%s",
                m.NAME,
                snap_gen,
                j_gen,
                chain.applied,
                f"; MISSING {chain.missing}" if chain.missing else "",
            )
            if chain.missing:
                _report_gap(m, chain.missing, base=f"{m.snapshot_path.name} (generation {snap_gen})")
            batches, compact_to = chain.batches, _next_gen(m, j_gen)
    else:
        items, batches, compact_to = _restore(m, exists, damage, j_gen, records)

    m._items = items
    m._rebuild_index()
    for batch in batches:
        m._apply_records(batch)
    if compact_to is not None:
        m._compact_locked(compact_to)
    elif new_journal:
        assert snap_gen is not None
        m._archive_journal_locked()
        m._journal.create(snap_gen, count=len(m._items))
        m._gen = snap_gen
    else:
        assert j_gen is not None
        m._gen = j_gen
        m._journal.trim_torn_tail()
    key = stat_key(m.snapshot_path)
    m._snap_key, m._snap_size = key, key[1] if key else 0


def _deferred_chain(m: DurableMap, snap_gen: int, j_gen: int, live: list[Any]) -> list[list[Any]] | None:
    """The segments from `snap_gen` on, then the live journal, when none is missing: what compactions leave between
    switching journals and writing their snapshot (`_compaction`: a snapshot whose write was dropped stays behind
    until the next one), or a person's old copy of the snapshot; None when one is missing."""
    chain = segments.replay_chain(m.backup_dir, m.NAME, base_gen=snap_gen, last_gen=j_gen, live=live)
    if chain.missing:
        return None
    if j_gen > snap_gen + 1:
        logger.info("%s: snapshot generation %d, journal %d: replaying %s", m.NAME, snap_gen, j_gen, chain.applied)
    return chain.batches


def _a_backup_is_whole(m: DurableMap, last_gen: int, live: list[Any]) -> bool:
    """Some valid backup has every journal from its generation to `last_gen`."""
    for info in snap.list_backups(m.backup_dir, m.NAME):
        chain = segments.replay_chain(m.backup_dir, m.NAME, base_gen=info.gen, last_gen=last_gen, live=live)
        if not chain.missing and snap.load_backup(info, items_key=m.ITEMS_KEY) is not None:
            return True
    return False


def _next_gen(m: DurableMap, *gens: int | None) -> int:
    """A generation above every one in use (the journal's, each backup's and each segment's)."""
    known = [g for g in gens if g is not None]
    known += [b.gen for b in snap.list_backups(m.backup_dir, m.NAME)]
    known += list(segments.list_segments(m.backup_dir, m.NAME))
    return max(known, default=0) + 1


def _report_gap(m: DurableMap, missing: list[int], *, base: str) -> None:
    logger.error(
        "%s: restored from %s, but journal generation(s) %s are missing: changes made in them are LOST",
        m.NAME,
        base,
        ", ".join(map(str, missing)),
    )
    m._events.emit(
        "store_restore_incomplete",
        store=m.NAME,
        base=base,
        missing_generations=", ".join(map(str, missing)),
    )


def _restore(
    m: DurableMap, exists: bool, damage: str | None, j_gen: int | None, live: list[Any]
) -> tuple[dict[str, bytes], list[list[Any]], int]:
    """State from the newest valid backup whose chain of later journals is whole (else the newest valid one,
    else nothing), plus that chain; moves the damaged file aside."""
    reason = damage or "missing while its journal exists"
    moved = _move_aside(m, m.snapshot_path, "snapshot") if exists else None
    moved_path = Path(moved) if moved else None
    live_records = live if j_gen is not None else None
    if j_gen is None:  # the live journal is gone too: every generation known to have existed is expected
        header = snap.read_header(moved_path) if moved_path else None
        last_gen = _next_gen(m, header[0] if header else None) - 1
    else:
        last_gen = j_gen
    best: tuple[dict[str, bytes], snap.BackupInfo | None, segments.Chain] | None = None
    for info in snap.list_backups(m.backup_dir, m.NAME):
        loaded = snap.load_backup(info, items_key=m.ITEMS_KEY)
        if loaded is None:
            logger.warning("%s: backup %s is not valid, trying an older one", m.NAME, info.path.name)
            continue
        chain = segments.replay_chain(m.backup_dir, m.NAME, base_gen=info.gen, last_gen=last_gen, live=live_records)
        if best is None or (best[2].missing and not chain.missing):
            best = loaded, info, chain
        if not chain.missing:
            break
        logger.warning("%s: backup %s lacks journal generation(s) %s after it", m.NAME, info.path.name, chain.missing)
    if best is None or best[2].missing:  # no backup, or none with a whole chain: try from an empty store
        chain = segments.replay_chain(m.backup_dir, m.NAME, base_gen=0, last_gen=last_gen, live=live_records)
        if best is None or not chain.missing:
            best = {}, None, chain
    items, used, chain = best
    base = used.path.name if used else "an empty store"
    logger.error(
        "%s: %s is damaged (%s); moved to %s; restored from %s plus journal generation(s) %s",
        m.NAME,
        m.snapshot_path.name,
        reason,
        moved,
        base,
        chain.applied or "none",
    )
    m._events.emit(
        "store_restored",
        store=m.NAME,
        file=str(m.snapshot_path),
        reason=reason,
        moved_to=moved,
        backup=str(used.path) if used else None,
        backup_generation=used.gen if used else None,
        journal_generation=j_gen,
        generations_applied=chain.applied,
        missing_generations=chain.missing,
        journal_applied=j_gen is not None and j_gen in chain.applied and not chain.missing,
        complete=not chain.missing,
        records_from_backup=len(items),
    )
    if chain.missing:
        _report_gap(m, chain.missing, base=base)
    return items, chain.batches, _next_gen(m, j_gen, used.gen if used else None)
