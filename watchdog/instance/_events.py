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


def parse_json_line(line: bytes | str) -> dict[str, Any] | None:
    """One JSONL line as an object; None when it is blank, unreadable or not an object."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; a deep nesting is a RecursionError
        return None
    return value if isinstance(value, dict) else None


def parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    """The objects of JSONL `data`, in order; unreadable lines and non-objects are skipped."""
    return [event for line in data.split(b"\n") if (event := parse_json_line(line)) is not None]


def _newer(event: dict[str, Any], since: float) -> bool:
    ts = event.get("ts")
    return isinstance(ts, int | float) and not isinstance(ts, bool) and ts > since


def read_events(
    path: str | os.PathLike[str], *, since: float = 0.0, limit: int | None = None, max_bytes: int | None = None
) -> list[dict[str, Any]]:
    """The last `limit` events newer than `since` (Unix seconds), oldest first, from the file's last `max_bytes`."""
    # max_bytes None: the whole file. Skipped: a line cut by the start, unreadable lines, events without a numeric ts
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = 0 if max_bytes is None else max(0, size - max_bytes)
            handle.seek(start)
            data = handle.read()
    except FileNotFoundError:
        return []
    if start > 0:
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""  # the first line is probably cut
    events = [event for event in parse_jsonl(data) if _newer(event, since)]
    return events[-limit:] if limit else events


class JsonlFollower:
    """The complete lines appended to a file since the last read (raw, as text, or as JSON events), following its
    rotation: when the file is renamed (to .1 ... .`rotated`), replaced or truncated, the rest of the old file is
    read to its end first, then the new file from its start. Files are known by (st_dev, st_ino).

    No handle stays open between reads: on Windows an open file cannot be renamed, and EventLog's rotation must
    succeed while the watchdog follows events.jsonl. The old file is found again by its identity among the rotated
    names. A line longer than `max_bytes` (what one read takes at most from one file) is skipped."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        from_start: bool = False,
        max_bytes: int = 1 << 20,
        rotated: int = KEEP_ROTATED,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.rotated = rotated
        self._ident: tuple[int, int] | None = None  # the file being read (None: the next file that appears)
        self._offset = 0  # bytes of it consumed: up to the end of its last complete line
        self._skipping = False  # inside a line longer than max_bytes: drop everything up to its end
        if not from_start:
            st = _stat(self.path)
            if st is not None:
                self._ident, self._offset = (st.st_dev, st.st_ino), st.st_size

    def read_lines(self) -> list[bytes]:
        """The complete lines appended since the last read (without their line ends), oldest first."""
        lines: list[bytes] = []
        if self._ident is not None and _ident(self.path) != self._ident:
            old = self._rotated_file()
            if old is not None:
                drained, at_end = self._read(old, finished=True)
                lines += drained
                if not at_end:  # more than max_bytes left in the old file: the next read goes on with it
                    return lines
            self._ident, self._offset, self._skipping = None, 0, False
        return lines + self._read(self.path, finished=False)[0]

    def read_text(self) -> list[str]:
        """The new lines as text (UTF-8, undecodable bytes replaced, a trailing carriage return removed)."""
        return [line.decode("utf-8", "replace").rstrip("\r") for line in self.read_lines()]

    def read_events(self) -> list[dict[str, Any]]:
        """The new lines as JSON objects; unreadable lines and non-objects are skipped."""
        return [event for line in self.read_lines() if (event := parse_json_line(line)) is not None]

    def _rotated_file(self) -> Path | None:
        for index in range(1, self.rotated + 1):
            candidate = self.path.with_name(f"{self.path.name}.{index}")
            if _ident(candidate) == self._ident:
                return candidate
        return None  # deleted, or replaced in place: what was left of it is lost

    def _read(self, path: Path, *, finished: bool) -> tuple[list[bytes], bool]:
        """(the complete lines of `path` past the offset, whether its end was reached); `finished`: no more will
        be written to it, so an unterminated last line counts."""
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError:
            return [], True
        with handle:
            st = os.fstat(handle.fileno())
            if self._ident is None:
                self._ident = (st.st_dev, st.st_ino)
            elif (st.st_dev, st.st_ino) != self._ident:
                return [], False  # rotated between the look and the open: the next read follows it
            if st.st_size < self._offset:  # truncated in place
                self._offset, self._skipping = 0, False
            handle.seek(self._offset)
            data = handle.read(self.max_bytes)
        at_end = len(data) < self.max_bytes
        end = len(data) if finished and at_end else data.rfind(b"\n") + 1
        if end == 0 and not at_end:  # a line longer than max_bytes: skip it up to its end
            self._offset += len(data)
            self._skipping = True
            return [], False
        chunk = data[:end]
        self._offset += end
        lines = chunk.split(b"\n")
        if chunk.endswith(b"\n") or not chunk:
            lines.pop()
        if self._skipping and lines and (b"\n" in chunk or finished):
            lines, self._skipping = lines[1:], False
        return lines, at_end


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _ident(path: Path) -> tuple[int, int] | None:
    st = _stat(path)
    return None if st is None else (st.st_dev, st.st_ino)
