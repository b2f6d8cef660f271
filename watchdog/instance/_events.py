"""`logs/events.jsonl`: one JSON object a line, appended by every process of an instance."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("continuity")

_MAX_EVENT_BYTES = 16 * 1024
MAX_FILE_BYTES = 10 * 1024 * 1024  # events.jsonl is rotated past this size: events.jsonl.1 ... .3
KEEP_ROTATED = 3


class EventLog:
    """Appends events with one write() each (O_APPEND), so lines of several processes never interleave."""

    def __init__(
        self, path: str | os.PathLike[str], *, source: str, clock: Any = time.time, max_bytes: int = MAX_FILE_BYTES
    ) -> None:
        self.path = Path(path)
        self.source = source
        self._clock = clock
        self.max_bytes = max_bytes

    def emit(self, kind: str, /, **fields: Any) -> dict[str, Any]:
        """Record one event; never raises (a full disk must not take the caller down)."""
        event: dict[str, Any] = {
            "ts": round(self._clock(), 3),
            "source": self.source,
            "event": kind,
            **fields,
        }
        line = json.dumps(event, ensure_ascii=False, default=str, separators=(",", ":"))
        # A lone surrogate (a path of undecodable bytes) becomes the JSON escape \udcXX: readable, never a crash.
        data = (line[:_MAX_EVENT_BYTES] + "\n").encode("utf-8", "backslashreplace")
        try:
            self.path.parent.mkdir(exist_ok=True)  # logs/ of an existing home: never make a deleted home again
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                full = os.fstat(fd).st_size > self.max_bytes
            finally:
                os.close(fd)
            if full:
                self._rotate()
        except OSError as exc:
            logger.warning("could not record event %s: %s", kind, exc)
        return event

    def _rotate(self) -> None:
        """events.jsonl -> .1 -> .2 ...; writers open the file per event, so the next one starts a new file."""
        for index in range(KEEP_ROTATED - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


def read_events(path: str | os.PathLike[str], *, since: float = 0.0, limit: int | None = None) -> list[dict[str, Any]]:
    """Events newer than `since` (a Unix time, seconds), oldest first; unreadable lines are skipped."""
    events: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and float(event.get("ts", 0)) > since:
                    events.append(event)
    except FileNotFoundError:
        return []
    return events[-limit:] if limit else events
