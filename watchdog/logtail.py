"""The logs read for a person (`continuity logs`): the last lines of a file, read from its end, and an event of
logs/events.jsonl as one line."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def tail_lines(path: Path, count: int, *, block: int = 64 * 1024) -> list[str]:
    """The last `count` lines of a text file (reads from the end, never the whole file)."""
    if count <= 0:
        return []
    try:
        with open(path, "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            data, pos = b"", end
            while pos > 0 and data.count(b"\n") <= count:
                step = min(block, pos)
                pos -= step
                handle.seek(pos)
                data = handle.read(step) + data
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-count:]


def format_event(event: dict[str, Any]) -> str:
    """`2026-11-22 15:52:25 watchdog  state  old=running new=backoff ...` (local time)."""
    ts = event.get("ts")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if isinstance(ts, int | float) else "?"
    fields = []
    for key, value in event.items():
        if key in ("ts", "source", "event"):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        shown = shown.replace("\n", " | ")
        fields.append(f"{key}={shown[:200]}")
    return f"{when} {event.get('source', '?')!s:<8} {event.get('event', '?')}  {' '.join(fields)}".rstrip()
