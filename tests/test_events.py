"""logs/events.jsonl: one JSON object a line from several processes, bounded by rotation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from continuity.watchdog.instance import EventLog, read_events


def test_events_from_many_processes_never_interleave(tmp_path: Path) -> None:
    """Four processes appending 200 events each leave 800 whole, parseable lines."""
    path = tmp_path / "events.jsonl"
    code = (
        "import sys; from continuity.watchdog.instance import EventLog;"
        "log = EventLog(sys.argv[1], source=sys.argv[2]);"
        "[log.emit('tick', n=i, pad='x' * 300) for i in range(200)]"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), f"p{i}"]) for i in range(4)]
    assert all(p.wait(60) == 0 for p in procs)
    lines = path.read_text().splitlines()
    assert len(lines) == 800
    assert all(json.loads(line)["event"] == "tick" for line in lines)


def test_events_file_is_rotated_and_bounded(tmp_path: Path) -> None:
    """Past max_bytes the file moves to .1 (then .2, .3); older ones are dropped; nothing is half-written."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path, source="t", max_bytes=2000, clock=lambda: 1_795_000_000.125)  # fixed width: fixed sizes
    for i in range(200):
        log.emit("tick", n=i, pad="y" * 100)
    log.emit("tick", n=200)  # may start a fresh file if the last one rotated; one small event never fills one
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events.jsonl", "events.jsonl.1", "events.jsonl.2", "events.jsonl.3"]
    assert all(p.stat().st_size <= 2000 + 200 for p in tmp_path.iterdir())
    newest = read_events(path)
    assert newest and newest[-1]["n"] == 200
