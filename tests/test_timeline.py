"""The dashboard's 24-hour timeline from logs/events.jsonl: bands, restarts, sent per 10 minutes, bounded reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import EventLog, Home
from continuity.watchdog.timeline import build_timeline, read_window
from tests.test_api import ApiWatchdog, api_config, free_port, get_json

NOW = 1_800_000_000.0
DAY = 86400.0


def line(ts: float, event: str, **fields: Any) -> str:
    """One events.jsonl line as EventLog writes it (ts first, compact separators)."""
    return json.dumps({"ts": ts, "source": "t", "event": event, **fields}, separators=(",", ":")) + "\n"


def test_bands_restarts_and_sent_bins(tmp_path: Path) -> None:
    """State changes become bands (down between a worker's exit and the next spawn), restarts become marks and
    message_sent events fall in their 10-minute bins; events before the window count for nothing."""
    start = NOW - DAY
    path = tmp_path / "events.jsonl"
    path.write_text(
        line(start - 7200, "message_sent", id="old")
        + line(start - 3600, "whatsapp_state", old="starting", new="ready")
        + line(start + 100, "whatsapp_state", old="ready", new="offline")
        + line(start + 700, "whatsapp_state", old="offline", new="ready")
        + line(start + 650, "message_sent", id="a")
        + line(start + 660, "message_sent", id="b")
        + line(start + 1300, "browser_restart", reason="dead")
        + line(start + 1400, "browser_recycled", reason="age")
        + line(start + 2000, "worker_exited", pid=1)
        + line(start + 2005, "worker_spawned", pid=2, restarts_total=1)
        + line(start + 2100, "whatsapp_state", old="starting", new="ready")
        + line(NOW - 30, "message_sent", id="c")
        + "garbage that is not json\n"
    )
    data = build_timeline(path, now=NOW)
    assert data["start"] == start and data["end"] == NOW and not data["truncated"]
    assert [(b["state"], b["start"] - start, b["end"] - start) for b in data["bands"]] == [
        ("ready", 0, 100), ("offline", 100, 700), ("ready", 700, 2000), ("down", 2000, 2005),
        ("starting", 2005, 2100), ("ready", 2100, DAY),
    ]  # fmt: skip
    assert data["worker_restarts"] == [start + 2005]
    assert data["browser_restarts"] == [
        {"ts": start + 1300, "kind": "restart"},
        {"ts": start + 1400, "kind": "recycle"},
    ]
    assert len(data["sent"]) == 144 and sum(data["sent"]) == 3
    assert data["sent"][1] == 2 and data["sent"][-1] == 1


def test_the_window_reaches_into_rotated_files(tmp_path: Path) -> None:
    """An events.jsonl rotated by EventLog (events.jsonl.1, .2) still gives the whole 24 hours."""
    clock = [NOW - 20 * 3600]
    log = EventLog(tmp_path / "events.jsonl", source="worker", clock=lambda: clock[0], max_bytes=7000)
    for _ in range(200):
        log.emit("message_sent", id="m", phone="15551234567", pad="x" * 40)
        clock[0] += 300
    files = sorted(tmp_path.glob("events.jsonl*"))
    assert (tmp_path / "events.jsonl.3").exists()  # (events.jsonl itself may be missing right after a rotation)
    kept = sum(len(path.read_text().splitlines()) for path in files)
    data = build_timeline(tmp_path / "events.jsonl", now=NOW)
    assert sum(data["sent"]) == kept > 100


def test_a_huge_log_is_read_only_up_to_the_budget(tmp_path: Path) -> None:
    """A 6 MiB file and a 1 MiB budget: the newest events are found, the read stops, and the answer says so."""
    path = tmp_path / "events.jsonl"
    filler = line(NOW - 100, "api_action", pad="y" * 1000)
    with open(path, "w") as handle:
        handle.write(line(NOW - 80000, "whatsapp_state", old="qr", new="ready"))
        handle.write(filler * 6000)
        handle.write(line(NOW - 10, "worker_spawned", pid=5, restarts_total=4))
    assert path.stat().st_size > 6 * 1024 * 1024
    events, truncated = read_window(path, start=NOW - DAY, max_bytes=1 << 20)
    assert truncated and [e["event"] for e in events] == ["worker_spawned"]
    assert not read_window(path, start=NOW - DAY, max_bytes=64 << 20)[1]


def test_the_api_serves_the_timeline(home: Home) -> None:
    """GET /api/timeline (a real watchdog) answers the bands and marks of its own events.jsonl."""
    port = free_port()
    api_config(home, port)
    wd = ApiWatchdog(home, port)
    try:
        data = get_json(port, "/api/timeline")
        assert len(data["sent"]) == 144 and data["end"] - data["start"] == DAY
        assert data["bands"] and data["bands"][-1]["state"] == "starting"
    finally:
        wd.stop()
