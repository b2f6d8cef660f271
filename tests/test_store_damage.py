"""A damaged snapshot never loses an acknowledged change: right after a restore, right after a compaction, and
again and again while real writer processes run (checked against what they acknowledged)."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from continuity.watchdog.instance import Home, read_events
from continuity.worker.store import Outbox, TokenStore
from continuity.worker.store._segments import list_segments
from continuity.worker.store._snapshot import list_backups

CHILD = Path(__file__).with_name("_store_child.py")


def _damage(path: Path) -> bool:
    """Cut the file to half its length plus garbage, in place, as a bad edit or a sync tool leaves it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    path.write_bytes(data[: max(1, len(data) // 2)] + b"\x00garbage")
    return True


def _restores(home: Home) -> list[dict[str, object]]:
    return [e for e in read_events(home.events_file) if e["event"] == "store_restored"]


def test_damage_right_after_a_restore_loses_nothing(home: Home) -> None:
    """The chain CI met: restore (backup g2 + journal 2) writes snapshot g3; damaged again before any backup
    holds g3, the restore still has journal 2 (kept as a segment) and journal 3."""
    snapshot = home.data_dir / "tracked_tokens.json"
    with TokenStore.open(home, backup_interval=3600) as store:
        store.add("t1")
        store.backup()  # compacts: the backup is of generation 2
        store.add("t2")  # only in journal 2
    assert _damage(snapshot)
    with TokenStore.open(home, backup_interval=3600) as store:
        assert store.ids() == ["t1", "t2"]  # restored, and written as snapshot 3
        store.add("t3")  # journal 3
    assert _damage(snapshot)  # before any backup of generation 3
    with TokenStore.open(home, backup_interval=3600) as store:
        assert store.ids() == ["t1", "t2", "t3"]
    second = _restores(home)[-1]
    assert second["complete"] is True and second["missing_generations"] == []
    assert second["generations_applied"] == [second["backup_generation"], second["backup_generation"] + 1]


def test_damage_right_after_a_compaction_loses_nothing(home: Home) -> None:
    """Changes folded into a new snapshot by a compaction are still in a kept segment when it is damaged."""
    with TokenStore.open(home, backup_interval=3600) as store:
        store.add("a")
        store.backup()
        store.add("b")
        store.update("a", v=2)
        store.compact()  # b and a=2 are now only in this snapshot (and the segment it replaced)
        store.add("c")
    assert _damage(home.data_dir / "tracked_tokens.json")
    with TokenStore.open(home) as store:
        assert {r["id"]: r.get("v") for r in store.list()} == {"a": 2, "b": None, "c": None}
    assert _restores(home)[-1]["complete"] is True


def test_segments_are_pruned_once_a_backup_holds_them(home: Home) -> None:
    """Kept journals do not pile up: those older than the oldest kept backup are deleted."""
    now = [1000.0]
    with TokenStore.open(home, max_backups=2, backup_interval=1, clock=lambda: now[0]) as store:
        for k in range(6):
            now[0] += 1
            store.add(f"t{k}")  # backs up after it (the interval passed), compacting first: a new generation
    backups = [b.gen for b in list_backups(home.data_dir / "backups", "tracked_tokens")]
    kept = list_segments(home.data_dir / "backups", "tracked_tokens")
    assert len(backups) == 2 and kept and min(kept) >= min(backups)
    assert max(kept) == max(backups) - 1  # the journal the newest backup's compaction replaced


def _spawn(mode: str, data_dir: Path, name: str, seed: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(data_dir), name, str(seed)],
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def _collect(proc: subprocess.Popen[str], into: list[str]) -> threading.Thread:
    assert proc.stdout is not None
    stdout = proc.stdout
    thread = threading.Thread(target=lambda: into.extend(line.rstrip("\n") for line in stdout), daemon=True)
    thread.start()
    return thread


def _damage_while_writers_run(home: Home, mode: str, snapshot: Path, *, seconds: float) -> tuple[list[str], int]:
    """Run two writer processes; damage `snapshot` every 50-300 ms, and at once after each restore. Returns
    what the writers printed and how many damages were done."""
    rng = random.Random(12)
    procs = [_spawn(mode, home.data_dir, f"w{i}", i) for i in range(2)]
    lines: list[str] = []
    readers = [_collect(proc, lines) for proc in procs]
    damages, seen_restores = 0, 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.05, 0.3))
            damages += _damage(snapshot)
            for _ in range(40):  # wait for the restore, then damage its fresh snapshot at once
                restores = len(_restores(home))
                if restores > seen_restores:
                    seen_restores = restores
                    damages += _damage(snapshot)
                    break
                time.sleep(0.005)
    finally:
        (home.data_dir / "stop").touch()
        for proc in procs:
            assert proc.wait(timeout=30) == 0
        for reader in readers:
            reader.join(10)
    assert lines.count("done") == 2
    return lines, damages


def test_repeated_damage_while_writers_run_loses_no_token(home: Home) -> None:
    """Two processes add tokens while the snapshot is damaged ~every 150 ms (and right after each restore):
    every acknowledged token is in the store afterwards, and no restore reports a gap."""
    lines, damages = _damage_while_writers_run(home, "writer", home.data_dir / "tracked_tokens.json", seconds=8)
    acked = {line.split()[1] for line in lines if line.startswith("A ")}
    with TokenStore.open(home) as store:
        missing = acked - set(store.ids())
    restores = _restores(home)
    assert len(acked) > 200 and damages > 20 and len(restores) > 10
    assert not missing, f"{len(missing)} acknowledged tokens lost after {damages} damages, e.g. {sorted(missing)[:5]}"
    assert all(e["complete"] for e in restores)


def test_repeated_damage_while_outbox_writers_run_loses_and_resends_nothing(home: Home) -> None:
    """The same for outbox.json: every acknowledged message is still there, and every one marked sent stays
    sent (never pending again, which would send it twice)."""
    lines, damages = _damage_while_writers_run(home, "outwriter", home.data_dir / "outbox.json", seconds=8)
    queued = {line.split()[1] for line in lines if line.startswith("E ")}
    sent = {line.split()[1] for line in lines if line.startswith("S ")}
    with Outbox.open(home) as box:
        states = {m["dedupe_key"]: m["state"] for m in box.list()}
    assert len(queued) > 200 and len(sent) > 50 and damages > 20
    assert not queued - set(states), f"lost messages: {sorted(queued - set(states))[:5]}"
    assert not {k for k in sent if states[k] != "sent"}, "a message marked sent is due to be sent again"
    assert all(e["complete"] for e in _restores(home))
