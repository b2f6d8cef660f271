"""The README's example message job ("/track ADDRESS" in a group starts tracking that token), importable by a worker
process started from the repository (tests/test_inbox_browser.py); test_inbox.py checks it matches the README."""

from __future__ import annotations

from typing import Any


# mybot/commands.py: "/track ADDRESS" in a group starts tracking that token
def on_message(ctx, message):  # type: ignore[no-untyped-def]
    words = message["text"].split()
    if message["group"] and len(words) == 2 and words[0] == "/track":
        ctx.store.upsert(words[1], chain="sol", requested_by=message["sender"], chat=message["chat"])


on_message_typed: Any = on_message
