"""Heartbeat staleness is measured on the watchdog's own clock from observed changes of a real file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from continuity.watchdog.heartbeat_monitor import HeartbeatMonitor
from continuity.watchdog.instance import read_heartbeat


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _touch(path: Path, content: bytes, mtime: float) -> None:
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))


def test_grace_then_timeout_from_observed_change(tmp_path: Path) -> None:
    """Before the first heartbeat the grace applies; after it, the timeout counts from when the change was seen."""
    clock = FakeClock()
    path = tmp_path / "heartbeat.json"
    monitor = HeartbeatMonitor(path, timeout_s=10, grace_s=30, clock=clock)
    monitor.reset()
    clock.now += 29
    monitor.poll()
    assert not monitor.is_stale()
    clock.now += 2
    assert monitor.is_stale()
    _touch(path, b"{}", time.time())
    monitor.poll()
    assert not monitor.is_stale() and monitor.age_s() == 0
    clock.now += 10.5
    monitor.poll()
    assert monitor.is_stale()


def test_file_dates_far_away_neither_restart_nor_shield(tmp_path: Path) -> None:
    """mtimes a year in the future or past count only as changes; an unchanged future-dated file goes stale."""
    clock = FakeClock()
    path = tmp_path / "heartbeat.json"
    monitor = HeartbeatMonitor(path, timeout_s=10, grace_s=10, clock=clock)
    monitor.reset()
    year = 365 * 86400
    for step in range(6):
        _touch(path, b'{"seq": %d}' % step, time.time() + (year if step % 2 else -year))
        clock.now += 9
        monitor.poll()
        assert not monitor.is_stale()
    clock.now += 11  # the file stays dated a year away and stops changing
    monitor.poll()
    assert monitor.is_stale()


def test_old_file_from_previous_worker_is_not_a_heartbeat(tmp_path: Path) -> None:
    """A heartbeat left by the previous worker does not count for the new one."""
    clock = FakeClock()
    path = tmp_path / "heartbeat.json"
    _touch(path, b"{}", time.time())
    monitor = HeartbeatMonitor(path, timeout_s=5, grace_s=5, clock=clock)
    monitor.reset()
    monitor.poll()
    assert monitor.age_s() is None


def test_truncated_or_garbage_heartbeat_reads_as_none(tmp_path: Path) -> None:
    """Truncated JSON, garbage bytes, a JSON list and a missing file all read as 'no heartbeat'."""
    path = tmp_path / "heartbeat.json"
    for content in (b'{"pid": 12, "se', b"\xff\xfe\x00", b"[1, 2]", b""):
        path.write_bytes(content)
        assert read_heartbeat(path) is None
    path.unlink()
    assert read_heartbeat(path) is None
    path.write_bytes(b'{"pid": 12}')
    assert read_heartbeat(path) == {"pid": 12}


def test_worker_first_heartbeat_is_valid_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "starting" heartbeat, hand-formatted to skip importing json, reads back as DESIGN.md's fields."""
    from continuity.worker._early import write_starting_heartbeat

    path = tmp_path / "heartbeat.json"
    monkeypatch.setenv("CONTINUITY_HEARTBEAT", str(path))
    before = time.time()
    write_starting_heartbeat()
    beat = read_heartbeat(path)
    assert beat is not None and beat["pid"] == os.getpid() and beat["seq"] == 0
    assert before <= beat["ts"] == beat["started_at"] <= time.time()
    assert beat["whatsapp"] == {"state": "starting", "connected": False}
    assert [p.name for p in tmp_path.iterdir()] == ["heartbeat.json"]
