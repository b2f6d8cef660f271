"""The watchdog sleeps until the kernel reports a change in run/ (Linux inotify), and still acts on time."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from continuity.watchdog._dirwatch import DirWatch
from continuity.watchdog.heartbeat_monitor import HeartbeatMonitor
from continuity.watchdog.instance import Home
from tests._watchdog_harness import start_watchdog, stop_watchdog, wait_for, wait_for_event, write_config

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux-only")


class Recorder:
    """Collects what a DirWatch reports, thread-safely."""

    def __init__(self) -> None:
        self.calls: list[set[str] | None] = []
        self._lock = threading.Lock()

    def __call__(self, names: set[str] | None) -> None:
        with self._lock:
            self.calls.append(names)

    def names(self) -> set[str]:
        with self._lock:
            return set().union(*(c for c in self.calls if c is not None))


@linux_only
def test_dirwatch_reports_replace_rewrite_and_touch(tmp_path: Path) -> None:
    """An atomic replace, a rewrite in place and a touch are each reported with the entry's name."""
    seen = Recorder()
    watch = DirWatch.start(tmp_path, seen)
    assert watch is not None
    try:
        (tmp_path / "tmp").write_text("1")
        os.replace(tmp_path / "tmp", tmp_path / "replaced.json")
        wait_for(lambda: "replaced.json" in seen.names(), timeout=5, what="replace reported")
        (tmp_path / "inplace.json").write_text("2")
        wait_for(lambda: "inplace.json" in seen.names(), timeout=5, what="rewrite reported")
        os.utime(tmp_path / "replaced.json")
        before = len(seen.calls)
        os.utime(tmp_path / "replaced.json", (1.0, 1.0))
        wait_for(lambda: len(seen.calls) > before, timeout=5, what="touch reported")
        assert seen.calls[-1] == {"replaced.json"}
    finally:
        watch.close()
    assert not watch._thread.is_alive() and not watch.lost


@linux_only
def test_deleted_directory_loses_the_watch(tmp_path: Path) -> None:
    """When the watched directory goes away the watch says so (lost, and None: "cannot tell")."""
    directory = tmp_path / "run"
    directory.mkdir()
    seen = Recorder()
    watch = DirWatch.start(directory, seen)
    assert watch is not None
    directory.rmdir()
    wait_for(lambda: watch.lost, timeout=5, what="watch lost")
    assert None in seen.calls


@linux_only
def test_monitor_sees_a_heartbeat_without_being_polled(tmp_path: Path) -> None:
    """Watching, a heartbeat write is noted by the watch thread alone: the timeout counts from that moment."""
    path = tmp_path / "heartbeat.json"
    monitor = HeartbeatMonitor(path, timeout_s=60, grace_s=60)
    others = Recorder()
    assert monitor.watch(others)
    try:
        monitor.reset()
        (tmp_path / ".hb.tmp").write_text('{"seq": 1}')
        written = time.monotonic()
        os.replace(tmp_path / ".hb.tmp", path)
        wait_for(lambda: monitor.last_change is not None, timeout=5, what="change noted")
        assert monitor.last_change is not None and monitor.last_change >= written
        (tmp_path / "stop.request").write_text("1")
        wait_for(lambda: "stop.request" in others.names(), timeout=5, what="other entry passed on")
        assert "heartbeat.json" not in others.names()
    finally:
        monitor.close()


@linux_only
def test_unreported_change_switches_the_monitor_to_polling(tmp_path: Path) -> None:
    """A worker that rewrites its open heartbeat file without closing it is not reported: the next look
    notices the change and the monitor polls from then on, counting the change as seen now."""
    path = tmp_path / "heartbeat.json"
    path.write_text("{}")
    monitor = HeartbeatMonitor(path, timeout_s=60, grace_s=60)
    assert monitor.watch(Recorder())
    try:
        monitor.reset()
        with open(path, "r+") as handle:
            handle.write('{"seq": 2}')
            handle.flush()
            time.sleep(0.2)
            assert monitor.last_change is None and monitor.watching
            monitor.check()
        assert monitor.last_change is not None and not monitor.watching
    finally:
        monitor.close()


@linux_only
def test_stop_request_file_is_acted_on_at_once(home: Home) -> None:
    """run/stop.request (how `continuity stop` asks on Windows) stops the watchdog without waiting for a tick."""
    write_config(home, toy="normal", heartbeat_timeout=60.0, check_interval=30.0)
    proc = start_watchdog(home)
    try:
        wait_for_event(home, "worker_spawned")
        time.sleep(0.3)
        asked = time.monotonic()
        home.stop_request_file.write_text("test\n")
        proc.wait(timeout=10)
        assert time.monotonic() - asked < 3.0 and proc.returncode == 0
        assert not home.stop_request_file.exists()
    finally:
        stop_watchdog(proc)


def test_sigterm_interrupts_a_long_sleep(home: Home) -> None:
    """With nothing due for a minute, SIGTERM still stops the watchdog (and its worker) within a second or two."""
    write_config(home, toy="normal", heartbeat_timeout=60.0, startup_grace=60.0, check_interval=30.0)
    proc = start_watchdog(home)
    try:
        worker = wait_for_event(home, "worker_spawned")[0]["pid"]
        time.sleep(0.5)
        asked = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        assert time.monotonic() - asked < 3.0 and proc.returncode == 0
        with pytest.raises(ProcessLookupError):
            os.kill(worker, 0)
    finally:
        stop_watchdog(proc)
