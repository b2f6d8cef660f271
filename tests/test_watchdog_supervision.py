"""The watchdog supervising real worker processes: crashes, hangs, clock skew, process trees."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from continuity.watchdog.instance import Home
from tests._watchdog_harness import (
    events,
    start_watchdog,
    stop_watchdog,
    wait_for,
    wait_for_event,
    write_config,
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill9_worker_is_restarted_and_logged(home: Home) -> None:
    """A worker killed with SIGKILL is restarted, and the exit is recorded with its signal."""
    write_config(home, toy="normal")
    proc = start_watchdog(home)
    try:
        first = wait_for_event(home, "worker_spawned")[0]["pid"]
        wait_for(home.heartbeat_file.exists, timeout=5, what="first heartbeat")
        os.kill(first, signal.SIGKILL)
        spawned = wait_for_event(home, "worker_spawned", count=2)
        exited = wait_for_event(home, "worker_exited")[0]
        assert spawned[1]["pid"] != first
        assert exited["pid"] == first and exited["description"] == "killed by SIGKILL"
        assert _gone(first)
    finally:
        stop_watchdog(proc)


@pytest.mark.parametrize("watch", [True, False], ids=["watched", "polled"])
def test_stopped_worker_is_replaced_within_the_bound(home: Home, watch: bool) -> None:
    """A hung worker (SIGSTOP) is replaced within heartbeat_timeout + stop_timeout + 0.1 s. Watched (Linux), that
    holds with a 30 s check_interval (the loop wakes at the heartbeat's deadline); polled, with a 0.1 s one."""
    interval = 30.0 if watch and sys.platform.startswith("linux") else 0.1
    write_config(
        home, toy="normal", heartbeat_timeout=1.0, stop_timeout=1.0, check_interval=interval, watch_heartbeat=watch
    )
    proc = start_watchdog(home)
    try:
        first = wait_for_event(home, "worker_spawned")[0]["pid"]
        wait_for(home.heartbeat_file.exists, timeout=5, what="first heartbeat")
        time.sleep(0.3)
        hung_at = time.time()
        os.kill(first, signal.SIGSTOP)
        replaced = wait_for_event(home, "worker_spawned", count=2, timeout=10)[1]
        assert replaced["ts"] - hung_at <= 1.0 + 1.0 + 0.1
        assert wait_for_event(home, "heartbeat_stale")[0]["pid"] == first
        assert _gone(first)
    finally:
        stop_watchdog(proc)


def test_worker_ignoring_term_is_killed_after_stop_timeout(home: Home) -> None:
    """A hung worker that ignores SIGTERM is KILLed once stop_timeout has passed."""
    write_config(home, toy="ignore-term", heartbeat_timeout=0.5, stop_timeout=0.5)
    proc = start_watchdog(home)
    try:
        first = wait_for_event(home, "worker_spawned")[0]["pid"]
        wait_for(home.heartbeat_file.exists, timeout=5, what="first heartbeat")
        os.kill(first, signal.SIGSTOP)
        killed = wait_for_event(home, "tree_killed", timeout=10)[0]
        assert killed["pid"] == first and first in killed["killed"]
        assert _gone(first)
    finally:
        stop_watchdog(proc)


def test_skewed_heartbeat_timestamps_never_cause_a_restart(home: Home) -> None:
    """A heartbeat whose timestamps and mtimes are a year off, but which keeps changing, is never stale."""
    write_config(home, toy="skew", heartbeat_timeout=0.5, startup_grace=0.5)
    proc = start_watchdog(home)
    try:
        wait_for_event(home, "worker_spawned")
        time.sleep(2.5)  # five heartbeat timeouts
        assert events(home, "heartbeat_stale") == []
        assert len(events(home, "worker_spawned")) == 1
    finally:
        stop_watchdog(proc)


def test_future_mtime_does_not_shield_a_hung_worker(home: Home) -> None:
    """A worker that wrote one heartbeat dated a day ahead and then stopped is still found stale."""
    write_config(home, toy="beat-once-future", heartbeat_timeout=0.5, startup_grace=5.0)
    proc = start_watchdog(home)
    try:
        stale = wait_for_event(home, "heartbeat_stale", timeout=10)[0]
        assert stale["age_s"] is not None and stale["age_s"] >= 0.5
    finally:
        stop_watchdog(proc)


def test_garbage_heartbeat_is_no_crash_and_no_data(home: Home) -> None:
    """A heartbeat file holding garbage keeps the worker alive (it changes) and the watchdog up."""
    write_config(home, toy="garbage", heartbeat_timeout=0.5)
    proc = start_watchdog(home)
    try:
        wait_for_event(home, "worker_spawned")
        time.sleep(1.5)
        assert proc.poll() is None
        assert events(home, "heartbeat_stale") == []
    finally:
        stop_watchdog(proc)


def test_silent_worker_is_replaced_after_startup_grace(home: Home) -> None:
    """A worker that never writes a first heartbeat is replaced once startup_grace has passed."""
    write_config(home, toy="silent", startup_grace=0.5, heartbeat_timeout=5.0)
    proc = start_watchdog(home)
    try:
        spawned = wait_for_event(home, "worker_spawned")[0]
        stale = wait_for_event(home, "heartbeat_stale", timeout=10)[0]
        assert stale["age_s"] is None
        assert stale["ts"] - spawned["ts"] >= 0.5
    finally:
        stop_watchdog(proc)


def test_grandchildren_are_killed_after_a_crash(home: Home, tmp_path: Path) -> None:
    """Sleepers the worker left behind when it crashed, even one in its own session, are killed."""
    pids_file = tmp_path / "pids"
    write_config(home, toy="grandchildren", toy_arg=str(pids_file), restart_delay=5.0, restart_delay_max=5.0)
    proc = start_watchdog(home)
    try:
        same_group, own_session = map(
            int, wait_for(pids_file.exists, timeout=5, what="pids") and pids_file.read_text().split()
        )
        wait_for_event(home, "tree_killed", timeout=10)
        assert _gone(same_group), "grandchild in the worker's group survived"
        assert _gone(own_session), "grandchild in its own session survived"
    finally:
        stop_watchdog(proc)


def test_worker_exiting_zero_on_its_own_is_restarted(home: Home) -> None:
    """Exit 0 that nobody asked for is a death like any other: the worker is restarted."""
    write_config(home, toy="exit0")
    proc = start_watchdog(home)
    try:
        wait_for_event(home, "worker_spawned", count=2)
        assert events(home, "worker_exited")[0]["code"] == 0
    finally:
        stop_watchdog(proc)


def test_exit78_means_one_spawn_and_a_clear_message(home: Home) -> None:
    """A worker exiting 78 (configuration error) is not restarted; the watchdog exits 78 and says why."""
    write_config(home, toy="exit78")
    proc = start_watchdog(home)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 78
    assert len(events(home, "worker_spawned")) == 1
    assert "configuration is wrong" in out and "bad config key 'foo'" in out


def test_unstartable_worker_command_is_fatal(home: Home) -> None:
    """A worker_command that does not exist gives up at once with the command named."""
    home.config_file.write_text('[watchdog]\nworker_command = ["/nonexistent/worker"]\n', encoding="utf-8")
    proc = start_watchdog(home)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 78
    assert "/nonexistent/worker" in out
