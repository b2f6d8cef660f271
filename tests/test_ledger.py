"""Ledger data/sent_tokens.txt: append-only, fsynced, torn last line ignored."""

from __future__ import annotations

import pytest

from continuity.watchdog.instance import Home
from continuity.worker.store import InvalidRecord, Ledger


def test_appended_ids_are_read_back_by_another_ledger(home: Home) -> None:
    """Ids appended by one Ledger object are seen by another (incrementally) and after reopening."""
    writer, reader = Ledger(home), Ledger(home)
    writer.append("a")
    assert reader.ids() == ["a"]
    writer.extend(["b", "c"])
    assert "c" in reader and reader.ids() == ["a", "b", "c"]
    assert (home.data_dir / "sent_tokens.txt").read_text() == "a\nb\nc\n"


def test_torn_last_line_is_ignored_and_cut_before_the_next_append(home: Home) -> None:
    """A last line without newline is not an id; the next append removes it instead of gluing onto it."""
    path = home.data_dir / "sent_tokens.txt"
    path.write_bytes(b"a\nb\nhalf-writ")
    ledger = Ledger(home)
    assert ledger.ids() == ["a", "b"]
    ledger.append("c")
    assert path.read_bytes() == b"a\nb\nc\n" and Ledger(home).ids() == ["a", "b", "c"]


def test_ids_with_newlines_are_refused(home: Home) -> None:
    """An id containing a newline would corrupt the file: InvalidRecord, nothing written."""
    ledger = Ledger(home)
    with pytest.raises(InvalidRecord):
        ledger.append("a\nb")
    assert not (home.data_dir / "sent_tokens.txt").exists()
