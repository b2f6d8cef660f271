"""Damaged files: torn journal tail, damaged or missing snapshot, bad journal lines, orphan temp files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from continuity.watchdog.instance import Home, read_events
from continuity.worker.store import TokenStore


def _journal(home: Home) -> Path:
    return home.data_dir / "tracked_tokens.journal"


def test_torn_journal_tail_is_dropped(home: Home) -> None:
    """A half-written last record is ignored on open, trimmed by the next write; later records are intact."""
    with TokenStore.open(home) as store:
        store.add("a")
        store.add("b")
    size = _journal(home).stat().st_size
    with open(_journal(home), "ab") as handle:
        handle.write(b'0000002a 1234abcd {"ops":[["p","torn",{"id":"to')  # a writer killed mid-record
    with TokenStore.open(home) as store:
        assert store.ids() == ["a", "b"]
        store.add("c")
    assert b"torn" not in _journal(home).read_bytes() and _journal(home).stat().st_size > size
    with TokenStore.open(home) as store:
        assert store.ids() == ["a", "b", "c"]


def test_damaged_journal_line_in_the_middle_is_skipped(home: Home) -> None:
    """A record whose checksum fails (disk error) is skipped; the records after it still count."""
    with TokenStore.open(home) as store:
        store.add("a")
        store.add("b")
        store.add("c")
    lines = _journal(home).read_bytes().split(b"\n")
    index = next(i for i, line in enumerate(lines) if b'"b"' in line)
    lines[index] = lines[index].replace(b'"b"', b'"B"')  # same length, wrong checksum
    _journal(home).write_bytes(b"\n".join(lines))
    with TokenStore.open(home) as store:
        assert store.ids() == ["a", "c"]


def test_damaged_snapshot_is_restored_from_backup_and_journal(home: Home) -> None:
    """A person's bad edit of tracked_tokens.json: backup + journal restore it, the bad file is kept aside, an
    event is recorded."""
    with TokenStore.open(home, compact_min_bytes=1) as store:  # compacts on every write: the journal is short
        store.add("a", v=1)
        store.backup()
    with TokenStore.open(home, backup_interval=3600) as store:
        store.add("b", v=2)  # only in the journal (and a newer snapshot)
        store.update("a", v=3)
    snapshot = home.data_dir / "tracked_tokens.json"
    snapshot.write_text('{"format": "continuity.tokens", "generation": 9, "tokens": [ {"id": "a"')  # truncated
    with TokenStore.open(home) as store:
        assert {r["id"]: r["v"] for r in store.list()} == {"a": 3, "b": 2}
    aside = list(home.data_dir.glob("tracked_tokens.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_text().endswith('{"id": "a"')
    events = [e for e in read_events(home.events_file) if e["event"] == "store_restored"]
    assert len(events) == 1 and events[0]["moved_to"] == str(aside[0]) and events[0]["backup"]
    assert json.loads(snapshot.read_text())["count"] == 2


def test_deleted_snapshot_is_restored_from_backup(home: Home) -> None:
    """With the snapshot gone but a journal of a later generation present, the newest valid backup is used."""
    with TokenStore.open(home, compact_min_bytes=1) as store:
        store.add("a")
        store.add("b")
        store.backup()
    (home.data_dir / "tracked_tokens.json").unlink()
    with TokenStore.open(home) as store:
        assert sorted(store.ids()) == ["a", "b"]
    assert any(e["event"] == "store_restored" for e in read_events(home.events_file))


def test_invalid_backup_is_skipped_for_an_older_valid_one(home: Home) -> None:
    """A backup whose checksum does not match its name is not used; the next older valid one is, plus the
    journal segment kept since it."""
    now = [1000.0]
    with TokenStore.open(home, compact_min_bytes=1, clock=lambda: now[0]) as store:
        store.add("a")
        old = store.backup()
        now[0] += 1
        store.add("b")
        newest = store.backup()
    newest.write_bytes(gzip.compress(gzip.decompress(newest.read_bytes()).replace(b'"b"', b'"X"')))
    (home.data_dir / "tracked_tokens.json").write_bytes(b"\xff\xfe garbage")
    (home.data_dir / "tracked_tokens.journal").unlink()
    with TokenStore.open(home) as store:
        assert store.ids() == ["a", "b"]
    assert old.exists() and newest.exists()
    restored = [e for e in read_events(home.events_file) if e["event"] == "store_restored"]
    assert restored[-1]["backup"] == str(old)


def test_invalid_backup_without_segments_reports_the_gap(home: Home) -> None:
    """With the only later journal segments gone too, the restore says which generations are missing and
    does not claim the journal was applied."""
    now = [1000.0]
    with TokenStore.open(home, compact_min_bytes=1, clock=lambda: now[0]) as store:
        store.add("a")
        store.backup()
        now[0] += 1
        store.add("b")
        newest = store.backup()
    newest.write_bytes(gzip.compress(gzip.decompress(newest.read_bytes()).replace(b'"b"', b'"X"')))
    (home.data_dir / "tracked_tokens.json").write_bytes(b"\xff\xfe garbage")
    (home.data_dir / "tracked_tokens.journal").unlink()
    for segment in (home.data_dir / "backups").glob("tracked_tokens.g*.journal"):
        segment.unlink()
    with TokenStore.open(home) as store:
        assert store.ids() == ["a"]
    events = read_events(home.events_file)
    restored = [e for e in events if e["event"] == "store_restored"][-1]
    assert restored["missing_generations"] and not restored["complete"] and not restored["journal_applied"]
    gap = [e for e in events if e["event"] == "store_restore_incomplete"]
    assert len(gap) == 1 and gap[0]["missing_generations"] == ", ".join(map(str, restored["missing_generations"]))


def test_orphan_temp_files_are_removed_at_open(home: Home) -> None:
    """A temp file a killed snapshot writer left behind is deleted when the store opens."""
    with TokenStore.open(home) as store:
        store.add("a")
    orphan = home.data_dir / ".tracked_tokens.json.abc123.tmp"
    orphan.write_text("partial")
    with TokenStore.open(home) as store:
        assert store.ids() == ["a"]
    assert not orphan.exists()


def test_interrupted_compaction_keeps_every_change(home: Home) -> None:
    """Killed after the new snapshot but before the new journal: the old journal is known to be folded in."""
    with TokenStore.open(home) as store:
        store.add("a")
        store.add("b")
        journal_before = _journal(home).read_bytes()
        store.compact()
    _journal(home).write_bytes(journal_before)  # the state a kill between the two compaction steps leaves
    with TokenStore.open(home) as store:
        assert store.ids() == ["a", "b"]
        store.add("c")
    with TokenStore.open(home) as store:
        assert store.ids() == ["a", "b", "c"]
