"""The dashboard's 24-hour timeline, from logs/events.jsonl (and its rotated files .1, .2, ...).

The files are read backwards in blocks, newest first, until an event older than the window or a byte budget
(`max_bytes`): a big log costs a bounded read, never a whole file in memory. Only the events the timeline draws are
decoded (a line's event name is looked at first); sent messages are counted into bins as they are met.

What it returns (JSON): WhatsApp state bands ({start, end, state}; "down" while no worker runs), worker restarts
and browser restarts (Unix times), and messages sent per `bin_s` seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .instance import KEEP_ROTATED, parse_json_line

BLOCK_BYTES = 64 * 1024
MAX_READ_BYTES = 32 * 1024 * 1024  # what one timeline may read across events.jsonl and its rotated files
MAX_MARKS = 2000  # restarts and state changes kept per window (a crash loop cannot grow the answer without end)
DISORDER_S = 300.0  # processes append concurrently: read this far past the window's start before stopping
_STATE_EVENTS = frozenset({b"whatsapp_state", b"worker_spawned", b"worker_exited", b"heartbeat_stale"})
_WANTED = frozenset({*_STATE_EVENTS, b"browser_restart", b"browser_recycled", b"message_sent"})
_EVENT_KEY = b'"event":"'


class _Budget:
    def __init__(self, max_bytes: int) -> None:
        self.left = max_bytes
        self.exhausted = False


def _lines_backwards(path: Path, budget: _Budget) -> Iterator[bytes]:
    """The lines of `path`, last first, while the budget lasts (a line cut by the budget is not yielded)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, across yields
    except OSError:
        return
    with handle:
        pos = handle.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0:
            if budget.left <= 0:
                budget.exhausted = True
                return
            step = min(BLOCK_BYTES, pos, budget.left)
            pos -= step
            handle.seek(pos)
            block = handle.read(step)
            budget.left -= len(block)
            parts = (block + rest).split(b"\n")
            rest = parts[0]
            yield from reversed(parts[1:])
        yield rest


def _event_name(line: bytes) -> bytes:
    start = line.find(_EVENT_KEY)
    if start < 0:
        return b""
    start += len(_EVENT_KEY)
    return line[start : line.find(b'"', start)]


def _line_ts(line: bytes) -> float | None:
    """EventLog writes "ts" first: {"ts":1700000000.123,...}."""
    if not line.startswith(b'{"ts":'):
        return None
    try:
        return float(line[6 : line.index(b",", 6)])
    except ValueError:
        return None


def read_window(path: Path, *, start: float, max_bytes: int = MAX_READ_BYTES) -> tuple[list[dict[str, Any]], bool]:
    """The wanted events (see _WANTED) with ts >= `start`, oldest first, from `path` and its rotated files, and
    whether the byte budget ran out first. message_sent events are kept as {"ts", "event"} only."""
    budget = _Budget(max_bytes)
    found: list[dict[str, Any]] = []
    marks = 0
    files = [path, *(path.with_name(f"{path.name}.{i}") for i in range(1, KEEP_ROTATED + 1))]
    for file in files:
        done = False
        for line in _lines_backwards(file, budget):
            ts = _line_ts(line)
            if ts is None:
                continue
            if ts < start - DISORDER_S:
                done = True
                break
            name = _event_name(line)
            if ts < start or name not in _WANTED:
                continue
            if name == b"message_sent":
                found.append({"ts": ts, "event": "message_sent"})
                continue
            if marks >= MAX_MARKS:
                continue
            event = parse_json_line(line)
            if event is not None:
                found.append(event)
                marks += 1
        if done or budget.exhausted:
            break
    found.sort(key=lambda event: float(event["ts"]))
    return found, budget.exhausted


def build_timeline(
    path: Path, *, now: float, hours: float = 24.0, bin_s: float = 600.0, max_bytes: int = MAX_READ_BYTES
) -> dict[str, Any]:
    """The timeline of the last `hours` before `now` (Unix seconds), from events.jsonl at `path`."""
    start = now - hours * 3600.0
    events, truncated = read_window(path, start=start, max_bytes=max_bytes)
    sent = [0] * round(hours * 3600.0 / bin_s)
    bands: list[dict[str, Any]] = []
    worker_restarts: list[float] = []
    browser_restarts: list[dict[str, Any]] = []
    state, since = None, start

    def switch(new: str, at: float) -> None:
        nonlocal state, since
        if new == state:
            return
        if state is not None and at > since:
            bands.append({"start": since, "end": at, "state": state})
        state, since = new, max(at, start)

    for event in events:
        ts, kind = float(event["ts"]), event.get("event")
        if kind == "message_sent":
            index = int((ts - start) // bin_s)
            if 0 <= index < len(sent):
                sent[index] += 1
        elif kind == "whatsapp_state":
            if state is None and isinstance(event.get("old"), str):
                switch(event["old"], start)
            switch(str(event.get("new") or "unknown"), ts)
        elif kind == "worker_spawned":
            if isinstance(event.get("restarts_total"), int) and event["restarts_total"] > 0:
                worker_restarts.append(ts)
            switch("starting", ts)
        elif kind in ("worker_exited", "heartbeat_stale"):
            switch("down", ts)
        elif kind in ("browser_restart", "browser_recycled"):
            browser_restarts.append({"ts": ts, "kind": "recycle" if kind == "browser_recycled" else "restart"})
    if state is not None and now > since:
        bands.append({"start": since, "end": now, "state": state})
    return {
        "start": start,
        "end": now,
        "bin_s": bin_s,
        "sent": sent,
        "bands": bands,
        "worker_restarts": worker_restarts,
        "browser_restarts": browser_restarts,
        "truncated": truncated,
    }
