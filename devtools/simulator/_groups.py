"""The fake account's groups: a title and a jid each (`<digits>@g.us`, as on the real page).

A group's chat is kept by `Chats` under its jid, like a person's under the phone number; the chat list shows a
group by its title (`span[title]`). Not locked itself: `SimState` calls it under its own lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._incoming import group_jid

GROUP_SUFFIX = "@g.us"
MAX_TITLE = 100  # WhatsApp caps a group's subject at 100 characters


def is_group(chat: str) -> bool:
    """True for a group's jid (the key its chat is kept under)."""
    return chat.endswith(GROUP_SUFFIX)


class Groups:
    """Groups by jid, in the order they were made."""

    def __init__(self, *, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._titles: dict[str, str] = {}  # jid -> title
        self._created: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._titles)

    def add(self, title: str) -> str:
        """Make a group titled `title` (or return the jid of the one that has it); ValueError for a bad title."""
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE or not title.isprintable():
            raise ValueError(f"a group title must be 1-{MAX_TITLE} printable characters, got {title!r}")
        jid = group_jid(title)  # the jid incoming messages of this group carry too (_incoming.py)
        if jid in self._titles:
            return jid
        self._titles[jid] = title
        self._created[jid] = self._wall()
        return jid

    def exists(self, jid: str) -> bool:
        return jid in self._titles

    def jid(self, title: str) -> str | None:
        """The jid of the group titled exactly `title`, or None."""
        return next((jid for jid, known in self._titles.items() if known == title), None)

    def listing(self, chats: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The chat list (`Chats.listing()`, newest first) with every group in it, by title, even one with no
        message yet; a group row has "group": true and "title"."""
        last = {c["phone"]: c for c in chats}
        rows = [c for c in chats if not is_group(c["phone"])]
        for jid, title in self._titles.items():
            seen = last.get(jid)
            ts = seen["ts"] if seen else self._created[jid]
            rows.append({**(seen or {"last": ""}), "phone": jid, "ts": ts, "title": title, "group": True})
        return sorted(rows, key=lambda row: row["ts"], reverse=True)
