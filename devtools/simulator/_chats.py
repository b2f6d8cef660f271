"""The chats the fake account keeps: every outgoing message per phone, and the record of deliveries.

Not locked itself: `SimState` calls it under its own lock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MSG_ID = re.compile(r"[A-Z0-9]{8,40}")
MAX_TEXT = 65536
# Modes under which the server does not take messages yet: they stay "pending" (msg-time) and the page retries.
HOLDING_MODES = frozenset({"stuck_clock", "offline", "phone_offline"})


@dataclass
class Message:
    """One outgoing message; status pending (msg-time) | sent (msg-check, then msg-dblcheck) | failed."""

    id: str
    text: str
    ts: float
    status: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "ts": self.ts, "status": self.status}


def check_message(text: str, msg_id: str) -> None:
    """ValueError unless the id looks like the page's ("3EB0" + hex) and the text has 1..MAX_TEXT characters."""
    if not MSG_ID.fullmatch(msg_id) or not text or len(text) > MAX_TEXT:
        raise ValueError(f"send needs id [A-Z0-9]{{8,40}} and a text of 1..{MAX_TEXT} characters")


class Chats:
    """Per-phone histories plus the exactly-once delivery record (keyed by the page's message id)."""

    def __init__(self, *, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._by_phone: dict[str, list[Message]] = {}
        self.delivered: list[dict[str, Any]] = []
        self.sends = 0
        self.failed = 0

    def __len__(self) -> int:
        return len(self._by_phone)

    def listing(self) -> list[dict[str, Any]]:
        """The chat list, newest first: phone, last text, its time (epoch seconds)."""
        chats = [(msgs[-1].ts, phone, msgs[-1].text) for phone, msgs in self._by_phone.items() if msgs]
        return [{"phone": p, "last": t, "ts": ts} for ts, p, t in sorted(chats, reverse=True)]

    def pending(self) -> list[dict[str, Any]]:
        """Messages not yet taken (msg-time) in any chat: a ready page re-sends them, like WhatsApp's queue."""
        return [
            {"id": m.id, "phone": phone, "text": m.text}
            for phone, msgs in self._by_phone.items()
            for m in msgs
            if m.status == "pending"
        ]

    def history(self, phone: str) -> list[dict[str, Any]]:
        """One chat's messages, oldest first."""
        return [m.as_dict() for m in self._by_phone.get(phone, [])]

    def send(self, phone: str, text: str, msg_id: str, *, modes: set[str]) -> str:
        """Take (or retake) message `msg_id`; returns its status. Delivered at most once per id."""
        check_message(text, msg_id)
        chat = self._by_phone.setdefault(phone, [])
        message = next((m for m in chat if m.id == msg_id), None)
        if message is None:
            message = Message(msg_id, text, self._wall(), "pending")
            chat.append(message)
            self.sends += 1
        if message.status == "pending":
            if "send_fail" in modes:
                message.status = "failed"
                self.failed += 1
            elif not HOLDING_MODES & modes:
                message.status, message.ts = "sent", self._wall()
                self.delivered.append({"id": msg_id, "phone": phone, "text": message.text, "ts": message.ts})
        return message.status
