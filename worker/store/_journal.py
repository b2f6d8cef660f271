"""The append-only journal: one framed record a line, fsynced before a write returns.

A record is ``<length:8 hex> <crc32:8 hex> <json>\\n``; the JSON never holds a raw newline. The first record
of a journal file is its header ``{"gen": G, "count": N}``: N is how many records the state had when the journal
started (absent in journals written before it was added). A record cut short by a crash (no newline, wrong length or
checksum) is detected and trimmed by the next writer, which holds the store lock; a reader without the lock
just waits for it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import write_bytes_atomic

from ._errors import StoreWriteError

logger = logging.getLogger("continuity.store")

_PREFIX = 18  # "xxxxxxxx xxxxxxxx "


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities are refused (they are not JSON)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def frame(obj: Any) -> bytes:
    """One journal line for `obj`."""
    payload = dumps(obj)
    return b"%08x %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def _decode_line(line: bytes) -> Any:
    """The object in one complete line (without its newline), or raise ValueError."""
    if len(line) < _PREFIX or line[8:9] != b" " or line[17:18] != b" ":
        raise ValueError("bad frame")
    length, crc = int(line[:8], 16), int(line[9:17], 16)
    payload = line[_PREFIX:]
    if len(payload) != length or zlib.crc32(payload) != crc:
        raise ValueError("length or checksum mismatch")
    return json.loads(payload.decode("utf-8"))


@dataclass
class Parsed:
    """Records decoded from a byte range: `end` is the offset just after the last complete line."""

    records: list[Any] = field(default_factory=list)
    end: int = 0
    bad_lines: int = 0
    torn_bytes: int = 0  # an incomplete last line (no newline yet)


def parse(buf: bytes, base: int) -> Parsed:
    """Decode the framed lines of `buf`, which starts at file offset `base`."""
    out = Parsed(end=base)
    pos = 0
    while pos < len(buf):
        nl = buf.find(b"\n", pos)
        if nl == -1:
            out.torn_bytes = len(buf) - pos
            break
        try:
            out.records.append(_decode_line(buf[pos:nl]))
        except ValueError:  # damaged in the middle (a disk error): skip it, keep what follows
            out.bad_lines += 1
        pos = nl + 1
        out.end = base + pos
    return out


class Journal:
    """One journal file: an open descriptor, its generation and how far it has been read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.ino: int | None = None
        self.gen = -1
        self.start_count: int | None = None  # records in the state when this journal started (its header)
        self.offset = 0  # end of the last complete line read
        self.seen_size = 0  # file size at the last read (a torn tail is not re-read until the size changes)
        self.header_end = 0
        self.bad_lines = 0

    # -- opening ---------------------------------------------------------------------------------------------
    def open(self) -> list[Any]:
        """Open the file at `path` and return its records (after the header); FileNotFoundError if absent.

        ValueError when the file has no valid header (it is then left closed).
        """
        fd = os.open(self.path, os.O_RDWR | getattr(os, "O_BINARY", 0))
        try:
            st = os.fstat(fd)
            parsed = parse(_read_from(fd, 0), 0)
            first = parsed.records[0] if parsed.records else None
            if not isinstance(first, dict) or not isinstance(first.get("gen"), int):
                raise ValueError(f"{self.path.name} has no valid header")
        except BaseException:
            os.close(fd)
            raise
        self.close()
        self.fd, self.ino, self.gen = fd, st.st_ino, first["gen"]
        count = first.get("count")
        self.start_count = count if isinstance(count, int) and not isinstance(count, bool) else None
        self.offset, self.seen_size, self.bad_lines = (
            parsed.end,
            parsed.end + parsed.torn_bytes,
            parsed.bad_lines,
        )
        self.header_end = len(frame(first))
        return parsed.records[1:]

    def create(self, gen: int, *, count: int) -> None:
        """Atomically replace the file with an empty journal of generation `gen` starting from a state of `count`
        records, and open it."""
        try:
            write_bytes_atomic(self.path, frame({"gen": gen, "count": count}))
        except OSError as exc:
            raise StoreWriteError(exc.errno, f"could not start a new journal {self.path.name}: {exc}") from exc
        self.open()

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = self.ino = None

    # -- reading ---------------------------------------------------------------------------------------------
    def read_new(self) -> Parsed:
        """Records appended since the last read (complete lines only)."""
        assert self.fd is not None
        buf = _read_from(self.fd, self.offset)
        parsed = parse(buf, self.offset)
        if parsed.bad_lines:
            logger.warning("%s: skipped %d damaged journal record(s)", self.path.name, parsed.bad_lines)
            self.bad_lines += parsed.bad_lines
        self.offset = parsed.end
        self.seen_size = parsed.end + parsed.torn_bytes
        return parsed

    def trim_torn_tail(self) -> int:
        """With the lock held: cut an incomplete last record a killed writer left; returns bytes cut."""
        assert self.fd is not None
        size = os.fstat(self.fd).st_size
        if size <= self.offset:
            return 0
        self.read_new()
        if size > self.offset:
            os.ftruncate(self.fd, self.offset)
            os.fsync(self.fd)
            logger.warning("%s: dropped a torn last record (%d bytes)", self.path.name, size - self.offset)
            self.seen_size = self.offset
            return size - self.offset
        return 0

    # -- writing ---------------------------------------------------------------------------------------------
    def append(self, data: bytes) -> None:
        """With the lock held: write `data` at the end and fsync; on failure the file is as before."""
        assert self.fd is not None
        start = self.offset
        try:
            view = memoryview(data)
            written = 0
            while written < len(view):
                os.lseek(self.fd, start + written, os.SEEK_SET)  # no pwrite on Windows
                written += os.write(self.fd, view[written:])
            os.fsync(self.fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, start)
                os.fsync(self.fd)
            raise StoreWriteError(
                exc.errno, f"could not write to {self.path} ({exc.strerror or exc}); nothing was changed"
            ) from exc
        self.offset = self.seen_size = start + len(data)


def _read_from(fd: int, offset: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)  # callers serialize access to the descriptor
    chunks: list[bytes] = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
