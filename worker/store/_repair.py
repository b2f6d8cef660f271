"""Loading a store's state from its files under the lock, repairing what a crash or a damaged file left."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from continuity.watchdog.atomicfile import remove_orphan_temp_files

from . import _snapshot as snap
from ._errors import StoreCorrupt

if TYPE_CHECKING:
    from ._engine import DurableMap, Record

logger = logging.getLogger("continuity.store")


def _read_snapshot(m: DurableMap) -> tuple[bool, int | None, dict[str, Record] | None, str | None]:
    """(exists, generation, records, damage) of the snapshot file."""
    try:
        data = m.snapshot_path.read_bytes()
    except FileNotFoundError:
        return False, None, None, None
    except OSError as exc:  # a disk error
        return True, None, None, f"unreadable: {exc}"
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


def load_state(m: DurableMap) -> None:
    """Rebuild `m`'s state from snapshot + journal (or newest valid backup + journal); lock held."""
    m._journal.close()
    for path in (m.snapshot_path, m.journal_path):
        remove_orphan_temp_files(m.data_dir, path.name)
    exists, snap_gen, snap_items, damage = _read_snapshot(m)
    records: list[Any] = []
    j_gen: int | None = None
    try:
        records = m._journal.open()
        j_gen = m._journal.gen
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        moved = _move_aside(m, m.journal_path, "journal")
        logger.error("%s: journal damaged (%s); moved to %s", m.NAME, exc, moved)
        m._events.emit("journal_damaged", store=m.NAME, error=str(exc), moved_to=moved)

    compact_to: int | None = None
    new_journal = False
    apply = False
    if damage is None and snap_items is None and not j_gen:  # a new store (or one never compacted)
        items: dict[str, Record] = {}
        apply, compact_to = j_gen == 0, 1
    elif damage is None and snap_items is not None and snap_gen is not None:
        items = snap_items
        if snap_gen == snap.UNKNOWN_GEN:  # the seed's format: adopt it
            logger.info("%s: adopting a seed-format %s", m.NAME, m.snapshot_path.name)
            apply, compact_to = j_gen is not None, (j_gen or 0) + 1
        elif j_gen is None or j_gen < snap_gen:  # a kill between writing the snapshot and the new journal
            new_journal = True
        elif j_gen == snap_gen:
            apply = True
        else:
            logger.warning(
                "%s: snapshot generation %d is older than the journal's %d (replaced by hand?); changes "
                "between them may be missing",
                m.NAME,
                snap_gen,
                j_gen,
            )
            apply, compact_to = True, j_gen + 1
    else:
        items, apply, compact_to = _restore(m, exists, damage, j_gen)

    m._items = items
    m._rebuild_index()
    if apply:
        m._apply_records(records)
    if compact_to is not None:
        m._compact_locked(compact_to)
    elif new_journal:
        assert snap_gen is not None
        m._journal.create(snap_gen)
        m._gen = snap_gen
    else:
        assert j_gen is not None
        m._gen = j_gen
        m._journal.trim_torn_tail()
    from ._engine import _stat_key

    key = _stat_key(m.snapshot_path)
    m._snap_key, m._snap_size = key, key[1] if key else 0


def _restore(m: DurableMap, exists: bool, damage: str | None, j_gen: int | None) -> tuple[dict[str, Record], bool, int]:
    """State from the newest valid backup (+ the journal if not older); moves the damaged file aside."""
    reason = damage or "missing while its journal exists"
    moved = _move_aside(m, m.snapshot_path, "snapshot") if exists else None
    items: dict[str, Record] = {}
    used = None
    for info in snap.list_backups(m.backup_dir, m.NAME):
        loaded = snap.load_backup(info, items_key=m.ITEMS_KEY)
        if loaded is not None:
            items, used = loaded, info
            break
        logger.warning("%s: backup %s is not valid, trying an older one", m.NAME, info.path.name)
    apply = j_gen is not None and (used is None or j_gen >= used.gen)
    logger.error(
        "%s: %s is damaged (%s); moved to %s; restored from %s%s",
        m.NAME,
        m.snapshot_path.name,
        reason,
        moved,
        used.path.name if used else "no backup (none valid)",
        " plus the journal" if apply else "",
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
        journal_applied=apply,
        records_from_backup=len(items),
    )
    return items, apply, max(j_gen or 0, used.gen if used else 0) + 1
