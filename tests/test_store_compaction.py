"""Compactions and backups write the big files with the store lock released; the in-between state is a normal one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from continuity.watchdog.instance import Home, read_events
from continuity.worker.store import TokenStore, _compaction as compaction, _files as files, _snapshot as snap

REPO = Path(__file__).resolve().parents[1]


def _snapshot(home: Home) -> Path:
    return home.data_dir / "tracked_tokens.json"


def _journal_gen(home: Home) -> int:
    first = (home.data_dir / "tracked_tokens.journal").read_bytes().split(b"\n", 1)[0]
    gen: int = json.loads(first[18:])["gen"]
    return gen


def test_other_writers_go_on_while_a_snapshot_is_written(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the worker's compaction writes its snapshot (held here), another process's store writes at once (a
    lock held through the write would time out), and then the snapshot is put in place with every change kept."""
    release, writing = threading.Event(), threading.Event()
    real_write_temp = files.write_temp

    def held_write_temp(target: Path, data: files.Data) -> tuple[Path, str]:
        writing.set()
        assert release.wait(30)
        return real_write_temp(target, data)

    worker = TokenStore.open(home, compact_min_bytes=1, background=True, backup_interval=3600)
    other = TokenStore.open(home, lock_timeout=1.0, backup_interval=3600)
    worker.backup()  # the first backup is due at the first write: take it now, before holding the writes
    monkeypatch.setattr(files, "write_temp", held_write_temp)
    try:
        worker.add("a", v=1)  # the journal is over compact_min_bytes: a compaction starts in the background
        assert writing.wait(10), "the compaction did not start"
        other.add("b", v=2)  # would raise StoreLocked if the lock were held while the snapshot is written
        other.update("a", v=3)
        assert worker.get("a") == {"id": "a", "v": 3, "added_at": worker.get("a")["added_at"]}  # type: ignore[index]
    finally:
        release.set()
        worker.close()
        other.close()
    assert snap.read_header(_snapshot(home)) is not None
    assert snap.read_header(_snapshot(home))[0] >= 2  # type: ignore[index]
    with TokenStore.open(home) as store:
        assert {r["id"]: r["v"] for r in store.list()} == {"a": 3, "b": 2}
    assert not [e for e in read_events(home.events_file) if e["event"].startswith("store_restore")]


def test_a_kill_after_the_switch_loses_nothing_and_is_not_a_restore(home: Home) -> None:
    """A process SIGKILLed after switching journals, before its snapshot is in place, leaves snapshot G + segment G +
    journal G+1: the next open reads every change from them, quietly (no restore event), and goes on compacting."""
    script = (
        "import sys, time\n"
        "from continuity.worker.store import TokenStore\n"
        "from continuity.worker.store import _files as f\n"
        "store = TokenStore.open(sys.argv[1], compact_min_bytes=4096, backup_interval=3600)\n"
        "for k in range(200):\n"
        "    store.add(f'early{k}', pad='x' * 40)\n"
        "def stuck(target, data):\n"
        "    print('switched', flush=True)\n"
        "    time.sleep(600)\n"
        "f.write_temp = stuck\n"
        "k = 0\n"
        "while True:\n"
        "    store.add(f'late{k}', pad='y' * 40)\n"
        "    print(f'acked late{k}', flush=True)\n"
        "    k += 1\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(home.data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO.parent)},
    )
    acked = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("acked"):
                acked.append(line.split()[1])
            if line.strip() == "switched":
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    snap_gen = snap.read_header(_snapshot(home))
    assert snap_gen is not None and _journal_gen(home) == snap_gen[0] + 1, "the kill was not between the two steps"
    with TokenStore.open(home, compact_min_bytes=4096) as store:
        ids = set(store.ids())
        assert {f"early{k}" for k in range(200)} <= ids and set(acked) <= ids
        store.compact()
    assert not [e for e in read_events(home.events_file) if e["event"].startswith("store_restore")]
    assert snap.read_header(_snapshot(home))[0] == _journal_gen(home)  # type: ignore[index]


def test_a_reader_adopts_another_process_s_new_snapshot_without_reloading(home: Home) -> None:
    """A store open in another process follows a compaction (journals switched, then the snapshot put in place)
    through its change log: it is never told "everything changed" (which would mean a full reload)."""
    reader = TokenStore.open(home, backup_interval=3600)
    writer = TokenStore.open(home, backup_interval=3600)
    try:
        writer.add("a")
        cursor, _ = reader.changes_since(-1)
        for ident in ("b", "c"):
            writer.add(ident)
            writer.compact()
            cursor, changed = reader.changes_since(cursor)
            assert changed == [ident], changed
        assert reader.ids() == ["a", "b", "c"]
        assert reader._snap_key == writer._snap_key  # the reader took the new snapshot as its own
    finally:
        reader.close()
        writer.close()


def test_a_damaged_snapshot_of_the_live_generation_is_still_found(home: Home) -> None:
    """A snapshot cut after its first line, with the live generation's header, is not taken as a compaction's: the
    other process reloads, restores from the backup and the journals, and keeps every change."""
    reader = TokenStore.open(home, backup_interval=3600)
    writer = TokenStore.open(home, backup_interval=3600)
    try:
        writer.add("a", v=1)
        writer.backup()
        writer.add("b", v=2)
        writer.compact()
        reader.ids()
        writer.add("c", v=3)
        writer.compact()
        data = _snapshot(home).read_bytes()
        _snapshot(home).write_bytes(data[: data.index(b"\n") + 10])  # the header line and a bit
        reader.add("d", v=4)
        assert {r["id"]: r["v"] for r in reader.list()} == {"a": 1, "b": 2, "c": 3, "d": 4}
    finally:
        reader.close()
        writer.close()
    assert [e for e in read_events(home.events_file) if e["event"] == "store_restored"]


def test_a_snapshot_edited_by_a_person_is_read_as_edited(home: Home) -> None:
    """A snapshot whose body no longer matches its CRC (a person's edit) and one with no CRC (an older writer) are
    parsed whole, and their content is what the store then holds."""
    with TokenStore.open(home, backup_interval=3600) as store:
        store.add("a", symbol="OLD")
        store.compact()
    path = _snapshot(home)
    path.write_bytes(path.read_bytes().replace(b'"OLD"', b'"NEW"'))
    with TokenStore.open(home, backup_interval=3600) as store:
        assert store.get("a")["symbol"] == "NEW"  # type: ignore[index]
        store.compact()
    text = path.read_bytes()
    header_end = text.index(b"\n")
    header = json.loads(text[:header_end] + b"]}")
    del header["body_crc32"], header["tokens"]
    older = json.dumps(header).encode()[:-1] + b',"tokens":[' + text[header_end:]
    path.write_bytes(older.replace(b'"NEW"', b'"OLDER"'))
    with TokenStore.open(home, backup_interval=3600) as store:
        assert store.get("a")["symbol"] == "OLDER"  # type: ignore[index]


def test_an_id_that_needs_escaping_survives_the_snapshot(home: Home) -> None:
    """Ids with quotes, backslashes and non-ASCII text go through a snapshot and back unchanged."""
    odd = ['q"uote', "back\\slash", "ünï", "a,\nb".replace("\n", " ")]
    with TokenStore.open(home, backup_interval=3600) as store:
        for ident in odd:
            store.add(ident, v=ident)
        store.compact()
    with TokenStore.open(home, backup_interval=3600) as store:
        assert sorted(store.ids()) == sorted(odd)
        assert all(store.get(ident)["v"] == ident for ident in odd)  # type: ignore[index]


def test_background_compactions_keep_every_write_of_a_busy_writer(home: Home) -> None:
    """Many compactions and backups in the background while writing: every acknowledged change is there after."""
    with TokenStore.open(home, compact_min_bytes=2048, background=True, backup_interval=0.05, max_backups=3) as store:
        deadline = time.monotonic() + 3
        k = 0
        while time.monotonic() < deadline:
            store.add(f"t{k}", n=k)
            k += 1
    with TokenStore.open(home) as store:
        assert store.count() == k
        assert store.get(f"t{k - 1}")["n"] == k - 1  # type: ignore[index]
    assert len(list((home.data_dir / "backups").glob("tracked_tokens.*.json.gz"))) <= 3


def test_a_dropped_snapshot_keeps_the_segments_it_needs(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a compaction's snapshot is not put in place (another process removed its temp file), later backups do
    not delete the segments that older snapshot still needs: the next open has every change and reports no gap."""
    with TokenStore.open(home, backup_interval=3600, max_backups=1) as store:
        store.add("a")
        store.compact()
        real_install = compaction._install_locked
        monkeypatch.setattr(compaction, "_install_locked", lambda *args: None)  # as if its temp file was removed
        store.add("b")
        store.backup()  # generation G+1: its backup is written, its snapshot is not
        monkeypatch.setattr(compaction, "_install_locked", real_install)
        store.add("c")
        monkeypatch.setattr(compaction, "_install_locked", lambda *args: None)
        store.backup()  # with max_backups=1 only this backup is kept: the snapshot is two generations behind
    with TokenStore.open(home) as store:
        assert store.ids() == ["a", "b", "c"]
    assert not [e for e in read_events(home.events_file) if e["event"].startswith("store_restore")]


def test_a_reader_several_generations_behind_follows_them_without_reloading(home: Home) -> None:
    """A store that missed several compactions of another process applies the segments in between and the new
    journal (each journal's header says how many records it started from): no full reload, the same records."""
    reader = TokenStore.open(home, backup_interval=3600)
    writer = TokenStore.open(home, backup_interval=3600)
    try:
        writer.add("a")
        cursor, _ = reader.changes_since(-1)
        for ident in ("b", "c", "d"):
            writer.add(ident)
            writer.compact()
        writer.remove("b")
        cursor, changed = reader.changes_since(cursor)
        assert changed is not None and sorted(changed) == ["b", "c", "d"], changed
        assert reader.ids() == ["a", "c", "d"] and reader._gen == writer._gen
    finally:
        reader.close()
        writer.close()


def test_temp_files_of_a_running_process_are_kept_and_a_dead_one_s_removed(home: Home) -> None:
    """Opening a store removes the temp files a killed writer left, not those another running process is still
    writing (its compaction writes with the lock released)."""
    with TokenStore.open(home) as store:
        store.add("a")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        live_tmp = home.data_dir / f".tracked_tokens.json.{sleeper.pid}.s1.tmp"
        dead_tmp = home.data_dir / f".tracked_tokens.json.{dead.pid}.s1.tmp"
        live_backup = (
            home.data_dir
            / "backups"
            / f".tracked_tokens.20260101T000000000000Z.g2.o9.{'0' * 16}.json.{sleeper.pid}.s2.tmp"
        )
        for path in (live_tmp, dead_tmp, live_backup):
            path.write_bytes(b"half")
        (home.data_dir / "tracked_tokens.json").write_bytes(b"damaged")  # a full load (a restore) cleans up
        with TokenStore.open(home) as store:
            assert store.ids() == ["a"]
        assert live_tmp.exists() and live_backup.exists() and not dead_tmp.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
