"""Inbox: durable incoming WhatsApp messages (data/inbox.*), on the journal + snapshot mechanism of the outbox.

A message is keyed by WhatsApp's own message key (the bubble's `data-id`, "false_<chat jid>_<ID>[_<sender>]"), so
reading a chat twice never stores a message twice. Each message gets `seq`, the order it was stored in (per chat it
is the chat's order), and the outcome of its handlers: `jobs` (the `on = "message"` jobs) and `webhook`
(`[inbox] webhook_url`), each `pending` until done.

Besides messages, the inbox keeps "reading" notes (kind `reading`): written *before* the worker opens a chat with
unread messages (opening it sends read receipts, so the badge, the cursor, is gone), and removed once the chat's
messages are stored. A worker killed in between finds the note at its next start and reads that chat again."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

from ._engine import DurableMap, Record
from ._validate import check_record

MESSAGE, READING = "message", "reading"
PENDING, DONE, FAILED, OFF = "pending", "done", "failed", "off"
READING_PREFIX = "~reading:"
MAX_TEXT_CHARS = 16 * 1024


def reading_id(title: str) -> str:
    return READING_PREFIX + title[:200]


class Inbox(DurableMap):
    """Incoming messages by WhatsApp message key, plus the notes of chats being read."""

    NAME, KIND, ITEMS_KEY = "inbox", "inbox", "messages"
    DEFAULT_SOURCE = "inbox"

    # -- index: kinds, order, the messages whose handlers still have work ----------------------------------------
    def _rebuild_index(self) -> None:
        self._max_seq = 0
        self._readings: set[str] = set()
        self._message_ids: set[str] = set()
        self._seq_of: dict[str, int] = {}
        self._pending: dict[str, set[str]] = {"jobs": set(), "webhook": set()}
        for ident, record in self._records():
            self._index_put(ident, None, record)

    def _index_put(self, ident: str, old: Record | None, new: Record) -> None:
        if new.get("kind") == READING:
            self._readings.add(ident)
            return
        if new.get("kind") != MESSAGE:
            return
        self._message_ids.add(ident)
        seq = new.get("seq")
        if isinstance(seq, int):
            self._seq_of[ident] = seq
            self._max_seq = max(self._max_seq, seq)
        for handler, waiting in self._pending.items():
            if _handler_state(new, handler) == PENDING:
                waiting.add(ident)
            else:
                waiting.discard(ident)

    def _index_del(self, ident: str, old: Record) -> None:
        self._readings.discard(ident)
        self._message_ids.discard(ident)
        self._seq_of.pop(ident, None)
        for waiting in self._pending.values():
            waiting.discard(ident)

    # -- storing -------------------------------------------------------------------------------------------------
    def add_many(self, messages: Iterable[Record], *, webhook: bool, jobs: bool) -> builtins.list[Record]:
        """Store messages (dicts with at least "id", "chat", "text") not stored yet, as one journal record (one
        fsync), in the order given; returns the new ones. A message already stored (same id) is left as it is."""
        wanted = list(messages)
        with self._writing():
            ops, fresh = self._message_ops(wanted, webhook=webhook, jobs=jobs)
            self._commit_locked(ops)
            return fresh

    def _message_ops(
        self, wanted: builtins.list[Record], *, webhook: bool, jobs: bool
    ) -> tuple[builtins.list[Any], builtins.list[Record]]:
        now = round(self._clock(), 3)
        seq = self._max_seq
        ops: builtins.list[Any] = []
        fresh: builtins.list[Record] = []
        seen: set[str] = set()
        for message in wanted:
            ident = str(message["id"])
            if ident in self._items or ident in seen:
                continue
            seen.add(ident)
            seq += 1
            record = check_record(
                {
                    **message,
                    "id": ident,
                    "kind": MESSAGE,
                    "text": str(message.get("text") or "")[:MAX_TEXT_CHARS],
                    "seq": seq,
                    "received_at": now,
                    "jobs": {"state": PENDING if jobs else OFF, "attempts": 0},
                    "webhook": {"state": PENDING if webhook else OFF, "attempts": 0},
                }
            )
            ops.append(["p", ident, record])
            fresh.append(dict(record))
        return ops, fresh

    def begin_reading(self, title: str, *, unread: int, jid: str | None = None) -> None:
        """Durably note that chat `title` (with `unread` unread messages) is about to be opened."""
        with self._writing():
            ident = reading_id(title)
            old = self._record(ident) or {}
            record = {
                "id": ident,
                "kind": READING,
                "title": title,
                "jid": jid or old.get("jid"),
                "unread": max(int(unread), int(old.get("unread") or 0)),
                "since": old.get("since") or round(self._clock(), 3),
                "attempts": int(old.get("attempts") or 0) + 1,
            }
            self._commit_locked([["p", ident, check_record(record)]])

    def end_reading(self, title: str, messages: Iterable[Record] = (), *, webhook: bool, jobs: bool) -> list[Record]:
        """Store `messages` (as add_many) and drop the note on chat `title`, in one journal record."""
        wanted = list(messages)
        with self._writing():
            ops, fresh = self._message_ops(wanted, webhook=webhook, jobs=jobs)
            ident = reading_id(title)
            if ident in self._items:
                ops.append(["d", ident])
            self._commit_locked(ops)
            return fresh

    def readings(self) -> builtins.list[Record]:
        """The chats noted as being read (a worker died while reading them): oldest first."""
        with self._mutex:
            self.refresh()
            found = [r for r in (self._record(i) for i in self._readings) if r is not None]
            return sorted(found, key=lambda r: r.get("since") or 0)

    # -- handlers ------------------------------------------------------------------------------------------------
    def open_messages(self, handler: str, *, limit: int = 100) -> builtins.list[Record]:
        """Messages whose `handler` ("jobs" or "webhook") is still pending, oldest first (at most `limit`)."""
        with self._mutex:
            self.refresh()
            waiting = sorted(self._pending.get(handler, ()), key=lambda i: self._seq_of.get(i, 0))[:limit]
            return [r for r in (self._record(i) for i in waiting) if r is not None]

    def record_handler(self, ident: str, handler: str, **outcome: Any) -> Record | None:
        """Durably merge `outcome` (state, attempts, last_error, ...) into the message's `handler` section."""
        with self._writing():
            record = self._record(ident)
            if record is None:
                return None
            section = {**(record.get(handler) or {}), **outcome}
            updated = {**record, handler: section}
            self._commit_locked([["p", ident, check_record(updated)]])
            return dict(updated)

    # -- reading -------------------------------------------------------------------------------------------------
    def has(self, ident: str) -> bool:
        with self._mutex:
            self.refresh()
            return ident in self._items

    def known(self, idents: Iterable[str]) -> set[str]:
        """Which of `idents` are stored."""
        with self._mutex:
            self.refresh()
            return {i for i in idents if i in self._items}

    def messages(self, *, since: float | None = None) -> builtins.list[Record]:
        """Stored messages in the order they were stored (received at or after `since`, epoch seconds)."""
        with self._mutex:
            self.refresh()
            found = [
                r
                for _ident, r in self._records()
                if r.get("kind") == MESSAGE and (since is None or float(r.get("received_at") or 0) >= since)
            ]
        return sorted(found, key=lambda r: r.get("seq") or 0)

    def counts(self) -> dict[str, int]:
        """For the heartbeat: messages stored, handlers still pending, chats being read."""
        with self._mutex:
            self.refresh()
            return {
                "messages": len(self._message_ids),
                "jobs_pending": len(self._pending["jobs"]),
                "webhook_pending": len(self._pending["webhook"]),
                "reading": len(self._readings),
            }


def _handler_state(record: Record, handler: str) -> str:
    section = record.get(handler)
    return str(section.get("state")) if isinstance(section, dict) else OFF
