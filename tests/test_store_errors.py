"""Bad input and hostile conditions: a clear error, and the store exactly as before."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from continuity.watchdog.instance import Home
from continuity.worker.store import (
    MAX_RECORD_BYTES,
    DuplicateId,
    ImportFormatError,
    InvalidRecord,
    RecordTooLarge,
    StoreLocked,
    StoreWriteError,
    TokenStore,
    parse_import,
)

CHILD = Path(__file__).with_name("_store_child.py")


def _files(home: Home) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in home.data_dir.iterdir() if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture
def filled(home: Home) -> TokenStore:
    """A store holding two tokens."""
    store = TokenStore.open(home, backup_interval=3600)
    store.add("a", symbol="A")
    store.add("b", symbol="B")
    return store


def test_duplicate_ids_in_one_import_change_nothing(home: Home, filled: TokenStore) -> None:
    """An import naming one id twice raises DuplicateId and imports none of its records."""
    before = _files(home)
    with pytest.raises(DuplicateId, match="'x'"):
        filled.import_records([{"id": "x"}, {"id": "y"}, {"id": "x"}])
    assert filled.ids() == ["a", "b"] and _files(home) == before


def test_record_over_the_size_limit_changes_nothing(home: Home, filled: TokenStore) -> None:
    """A record bigger than MAX_RECORD_BYTES raises RecordTooLarge (a ValueError), alone or in an import."""
    before = _files(home)
    with pytest.raises(RecordTooLarge):
        filled.add("big", blob="x" * MAX_RECORD_BYTES)
    with pytest.raises(ValueError, match="limit"):
        filled.import_records([{"id": "ok"}, {"id": "big", "blob": "x" * MAX_RECORD_BYTES}])
    assert filled.ids() == ["a", "b"] and _files(home) == before


@pytest.mark.parametrize(
    ("ident", "fields"),
    [("", {}), ("a\nb", {}), ("x" * 300, {}), ("nan", {"v": float("nan")}), ("obj", {"v": object()})],
)
def test_bad_ids_and_values_change_nothing(home: Home, filled: TokenStore, ident: str, fields: dict[str, Any]) -> None:
    """Empty, multi-line or overlong ids and non-JSON values raise InvalidRecord."""
    before = _files(home)
    with pytest.raises(InvalidRecord):
        filled.add(ident, **fields)
    assert filled.ids() == ["a", "b"] and _files(home) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[{"id": "a"}, {"id": ', "not valid JSON"),
        (b'{"id": "a"}\n{"id": \n', "line 2"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b"", "empty"),
        (b"[1, 2]", "not an object"),
        (b'"text"', "expected a list"),
    ],
)
def test_bad_import_files_are_refused_clearly(data: bytes, message: str) -> None:
    """Invalid JSON, broken JSON lines, non-UTF-8, empty and non-record files raise ImportFormatError."""
    with pytest.raises(ImportFormatError, match=message):
        parse_import(data)


def test_full_disk_on_journal_write_changes_nothing(
    home: Home, filled: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC after half a record was written: StoreWriteError (ENOSPC), journal cut back, state kept."""
    journal = home.data_dir / "tracked_tokens.journal"
    before = journal.read_bytes()
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        if fd == filled._journal.fd:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(StoreWriteError, match="No space left") as caught, filled.transaction() as tx:
        tx.add("c")
        tx.remove("a")
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOSPC
    assert journal.read_bytes() == before and filled.ids() == ["a", "b"]
    filled.add("d")
    with TokenStore.open(home) as again:
        assert again.ids() == ["a", "b", "d"]


def test_lock_held_too_long_raises_timeout_and_changes_nothing(home: Home, filled: TokenStore) -> None:
    """Another process holding the lock past lock_timeout: StoreLocked (a TimeoutError), nothing written."""
    quick = TokenStore.open(home, lock_timeout=0.2)
    holder = subprocess.Popen(
        [sys.executable, str(CHILD), "hold", str(home.data_dir / "tracked_tokens.lock"), "30"],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        before = _files(home)
        with pytest.raises(TimeoutError, match="held by another process"):
            quick.add("c")
        with pytest.raises(StoreLocked):
            TokenStore.open(home, lock_timeout=0.2)
        assert _files(home) == before
    finally:
        holder.kill()
        holder.wait()
    quick.add("c")
    assert filled.ids() == ["a", "b", "c"]
