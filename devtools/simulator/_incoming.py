"""Incoming messages of the fake account: what other people (and group members) send to it, unread until the
page opens the chat (which sends read receipts, as on the real page).

A chat is known by its jid: "<digits>@c.us" for a person, "<id>@g.us" for a group (its title is the group's
name). Not locked itself: `SimState` calls it under its own lock."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._chats import MAX_TEXT
from ._modes import valid_phone

GROUP_PREFIX = "group:"


@dataclass
class _In:
    id: str
    text: str
    ts: float
    sender_jid: str
    sender_name: str
    read: bool = False


@dataclass
class _Chat:
    jid: str
    title: str
    group: bool
    messages: list[_In] = field(default_factory=list)


def group_jid(name: str) -> str:
    """A stable group jid for a group name ("1203630" + 11 digits + "@g.us", shaped like the real ones)."""
    digits = int(hashlib.sha256(name.encode()).hexdigest()[:12], 16) % 10**11
    return f"1203630{digits:011d}@g.us"


def _message_id() -> str:
    return "3A" + secrets.token_hex(9).upper()


class Incoming:
    """Per-chat incoming messages, read flags, and the record of read receipts sent."""

    def __init__(self, *, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._chats: dict[str, _Chat] = {}
        self.receipts: list[dict[str, Any]] = []

    def receive(self, chat: str, text: str, *, sender: str | None = None, name: str | None = None) -> dict[str, Any]:
        """A message arrives in `chat` (a phone's digits, or "group:NAME"; `sender` digits for a group member)."""
        if not text or len(text) > MAX_TEXT:
            raise ValueError(f"an incoming message needs a text of 1..{MAX_TEXT} characters")
        if chat.startswith(GROUP_PREFIX):
            title = chat[len(GROUP_PREFIX) :]
            if not title.strip():
                raise ValueError("a group needs a name: group:NAME")
            member = sender or "15550009999"
            if not valid_phone(member):
                raise ValueError(f"sender {member!r} is not a phone number (digits with country code)")
            jid, group, sender_jid = group_jid(title), True, f"{member}@c.us"
            sender_name = name or "+" + member
        else:
            if not valid_phone(chat):
                raise ValueError(f"chat {chat!r} must be a phone number (digits with country code) or group:NAME")
            jid, title, group, sender_jid = f"{chat}@c.us", "+" + chat, False, f"{chat}@c.us"
            sender_name = name or "+" + chat
        record = self._chats.setdefault(jid, _Chat(jid, title, group))
        message = _In(_message_id(), text, self._wall(), sender_jid, sender_name)
        record.messages.append(message)
        return {"id": message.id, "jid": jid, "data_id": self.data_id(record, message), "ts": message.ts}

    @staticmethod
    def data_id(chat: _Chat, message: _In) -> str:
        """The bubble wrapper's data-id, as on the real page (the sender's jid appended in groups)."""
        base = f"false_{chat.jid}_{message.id}"
        return f"{base}_{message.sender_jid}" if chat.group else base

    def listing(self) -> list[dict[str, Any]]:
        """Chats with incoming messages: jid, title, group, unread count, last text and its time."""
        rows = []
        for chat in self._chats.values():
            last = chat.messages[-1]
            unread = sum(1 for m in chat.messages if not m.read)
            rows.append(
                {
                    "jid": chat.jid,
                    "title": chat.title,
                    "group": chat.group,
                    "unread": unread,
                    "last": last.text,
                    "ts": last.ts,
                }
            )
        return sorted(rows, key=lambda r: r["ts"], reverse=True)

    def open(self, jid: str) -> list[dict[str, Any]]:
        """The page opened chat `jid`: its incoming bubbles; the unread ones are now read (receipts sent)."""
        chat = self._chats.get(jid)
        if chat is None:
            return []
        fresh = [m for m in chat.messages if not m.read]
        for message in fresh:
            message.read = True
        if fresh:
            self.receipts.append({"jid": jid, "ids": [m.id for m in fresh], "ts": self._wall()})
        return [
            {
                "data_id": self.data_id(chat, m),
                "id": m.id,
                "text": m.text,
                "ts": m.ts,
                "sender": m.sender_name,
                "dir": "in",
            }
            for m in chat.messages
        ]

    def unread(self) -> int:
        return sum(1 for chat in self._chats.values() for m in chat.messages if not m.read)
