"""Pruning the outbox's sent messages: a month of traffic in flat space, and never a message queued twice.

A message sent before `before` (seconds, wall clock) is dropped when nothing can queue its dedupe key again (it has
none, or `forget(key)` says so: the notify job's key of a token already in the ledger). Otherwise it becomes a
tombstone: its text dropped, its id, recipient, dedupe key, state "sent" and sent_at kept, so `enqueue` with that
key still answers "already queued" and `find_states` still says "sent". A tombstone goes once `forget(key)` says so.
Failed messages are kept (there are few, and a person may want to see why). Each call makes at most `max_changes`
changes, as one journal record (one fsync, all or nothing)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ._outbox import Outbox

_SENT = b'"state":"sent"'
_SENT_AT = re.compile(rb'"sent_at":(-?[0-9.eE+-]+)')
TOMBSTONE_FIELDS = ("id", "phone", "dedupe_key", "state", "created_at", "sent_at")


class Pruned(NamedTuple):
    """What one call did: messages dropped, messages made tombstones, and whether more is left to do."""

    dropped: int
    tombstoned: int
    more: bool


def _sent_before(raw: bytes, before: float) -> bool:
    """A sent message's bytes say it was sent before `before` (checked without parsing the record)."""
    if _SENT not in raw:
        return False
    match = _SENT_AT.search(raw)
    try:
        return match is not None and float(match[1]) < before
    except ValueError:
        return False


def prune_locked(box: Outbox, *, before: float, forget: Callable[[str], bool], max_changes: int) -> Pruned:
    """With the lock held and the state caught up: drop or tombstone what `before` and `forget` allow."""
    ops: list[list[Any]] = []
    dropped = tombstoned = 0
    now = round(box._clock(), 3)
    for ident, raw in box._items.items():
        if len(ops) >= max_changes:
            break
        if not _sent_before(raw, before):
            continue
        record = json.loads(raw)
        if record.get("state") != "sent":
            continue
        key = record.get("dedupe_key")
        if not isinstance(key, str) or forget(key):
            ops.append(["d", ident])
            dropped += 1
        elif not record.get("pruned_at"):
            stone = {name: record[name] for name in TOMBSTONE_FIELDS if name in record}
            ops.append(["p", ident, {**stone, "text": "", "pruned_at": now}])
            tombstoned += 1
    box._commit_locked(ops)
    return Pruned(dropped, tombstoned, len(ops) >= max_changes)
