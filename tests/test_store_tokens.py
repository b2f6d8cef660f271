"""TokenStore behaviour: changes, transactions, other processes' changes, compaction, backups."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from continuity.watchdog.instance import Home
from continuity.worker.store import DuplicateId, TokenNotFound, TokenStore

CHILD = Path(__file__).with_name("_store_child.py")


def test_changes_are_on_disk_when_the_call_returns(home: Home) -> None:
    """add/update/remove are visible to a store opened afterwards from the files alone."""
    with TokenStore.open(home) as store:
        store.add("a", symbol="AAA", chain="eth", extra={"k": 1})
        store.add("b", symbol="BBB")
        store.update("a", symbol="AAB")
        store.remove("b")
    with TokenStore.open(home) as again:
        assert again.ids() == ["a"]
        record = again.get("a")
        assert record is not None and record["symbol"] == "AAB" and record["extra"] == {"k": 1}


def test_add_existing_and_missing_ids_raise(home: Home) -> None:
    """add of a taken id raises DuplicateId; update/remove of an unknown id: TokenNotFound (KeyError)."""
    with TokenStore.open(home) as store:
        store.add("a")
        with pytest.raises(DuplicateId):
            store.add("a")
        with pytest.raises(KeyError):
            store.update("zzz", x=1)
        with pytest.raises(TokenNotFound):
            store.remove("zzz")
        assert store.count() == 1


def test_transaction_is_all_or_nothing(home: Home) -> None:
    """A transaction that raises leaves nothing; one that ends commits every change."""
    with TokenStore.open(home) as store:
        store.add("keep", v=1)
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.add("x")
            tx.update("keep", v=2)
            raise RuntimeError("abort")
        assert store.ids() == ["keep"] and store.get("keep")["v"] == 1  # type: ignore[index]
        with store.transaction() as tx:
            tx.add("x")
            tx.remove("keep")
        assert store.ids() == ["x"]


def test_other_instances_see_changes_incrementally(home: Home) -> None:
    """A second open store sees the first one's changes, including after the first compacted its journal."""
    writer = TokenStore.open(home, compact_min_bytes=2048)
    reader = TokenStore.open(home)
    for k in range(60):
        writer.add(f"t{k}", pad="y" * 100)
        if k % 20 == 0:
            assert reader.count() == k + 1
    header = json.loads(home.data_dir.joinpath("tracked_tokens.json").read_text().splitlines()[0] + "]}")
    assert header["generation"] > 1, "compaction happened"
    assert reader.count() == 60 and reader.get("t59") is not None
    reader.update("t0", seen=True)
    assert writer.get("t0")["seen"] is True  # type: ignore[index]
    writer.close()
    reader.close()


def test_two_processes_500_updates_each_lose_nothing(home: Home) -> None:
    """Two processes x 500 read-modify-write transactions: the counter ends at 1000, no token lost."""
    with TokenStore.open(home) as store:
        store.add("counter", value=0)
    procs = [
        subprocess.Popen([sys.executable, str(CHILD), "incr", str(home.data_dir), name, "500"], stdout=subprocess.PIPE)
        for name in ("p1", "p2")
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    home.data_dir.joinpath("go").touch()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    with TokenStore.open(home) as store:
        assert store.get("counter")["value"] == 1000  # type: ignore[index]
        assert store.count() == 1001


def test_backups_follow_the_interval_and_the_limit(home: Home) -> None:
    """A backup is taken when backup_interval seconds passed and something changed; max_backups kept."""
    now = [1_000_000.0]
    with TokenStore.open(home, backup_interval=30, max_backups=3, clock=lambda: now[0]) as store:
        store.add("a")  # no backup yet: the first one is due at once
        backups = home.data_dir / "backups"
        assert len(list(backups.glob("tracked_tokens.*.json.gz"))) == 1
        store.add("b")
        assert len(list(backups.glob("*.json.gz"))) == 1, "not due yet"
        for k in range(5):
            now[0] += 31
            store.add(f"c{k}")
        assert len(list(backups.glob("*.json.gz"))) == 3
        now[0] += 31
        assert store.maybe_backup() is None, "nothing changed since the last backup"
        forced = store.backup()
        assert forced.exists() and json.loads(gzip.decompress(forced.read_bytes()))["count"] == 7


def test_seed_format_snapshot_is_adopted(home: Home) -> None:
    """A seed tracked_tokens.json (dict keyed by id) in data/ opens as the store's content."""
    home.data_dir.joinpath("tracked_tokens.json").write_text(json.dumps({"x": {"symbol": "X", "odd": [1]}}))
    with TokenStore.open(home) as store:
        assert store.list() == [{"id": "x", "symbol": "X", "odd": [1]}]
    assert json.loads(home.data_dir.joinpath("tracked_tokens.json").read_text())["format"] == "continuity.tokens"


def test_preview_is_the_count_and_the_first_tokens_cut_short(home: Home) -> None:
    """TokenStore.preview (the heartbeat's tokens.preview): the count and the first tokens added, in order,
    as id/symbol/chain strings of at most 200 characters; other fields are left out."""
    with TokenStore.open(home) as store:
        for i in range(25):
            store.add(f"t{i:02d}", symbol="S" * 300 if i == 0 else f"S{i}", chain="sol", note="not shown")
        store.remove("t01")
        preview = store.preview(limit=3)
    assert preview["count"] == 24
    assert [item["id"] for item in preview["items"]] == ["t00", "t02", "t03"]
    assert preview["items"][0] == {"id": "t00", "symbol": "S" * 200, "chain": "sol"}
    assert preview["items"][1] == {"id": "t02", "symbol": "S2", "chain": "sol"}
