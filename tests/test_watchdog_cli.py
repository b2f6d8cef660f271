"""`continuity start | stop | status` as a user runs them, against real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
from click.testing import CliRunner

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import Home
from tests._watchdog_harness import start_watchdog, stop_watchdog, wait_for, wait_for_event, write_config


def _run(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_not_running_exits_3(home: Home) -> None:
    """status on a home with no watchdog exits 3 and says how to start one."""
    result = CliRunner().invoke(cli, ["--home", str(home.root), "status"], catch_exceptions=False)
    assert result.exit_code == 3
    assert "not running" in result.output and "continuity start" in result.output


def test_status_json_healthy_then_unhealthy(home: Home) -> None:
    """status --json has the DESIGN.md shape; exit 0 while healthy, 1 once the worker is gone for good."""
    write_config(home, toy="normal")
    proc = start_watchdog(home)
    try:
        wait_for(home.heartbeat_file.exists, timeout=5, what="heartbeat")
        result = CliRunner().invoke(cli, ["--home", str(home.root), "status", "--json"], catch_exceptions=False)
        report = json.loads(result.output)
        assert result.exit_code == 0, report["health"]
        assert set(report) >= {"watchdog", "worker", "heartbeat", "health"}
        assert report["watchdog"]["state"] == "running" and report["worker"]["alive"] is True
        assert report["heartbeat"]["pid"] == report["worker"]["pid"]
        assert report["health"]["session_health"] == "healthy"
    finally:
        stop_watchdog(proc)
    write_config(home, toy="crash", restart_limit=1, restart_window=600.0)
    proc = start_watchdog(home)
    try:
        wait_for_event(home, "budget_spent", timeout=15)
        result = CliRunner().invoke(cli, ["--home", str(home.root), "status", "--json"], catch_exceptions=False)
        report = json.loads(result.output)
        assert result.exit_code == 1
        assert report["watchdog"]["state"] == "budget_spent"
        assert report["health"]["session_health"] == "critical"
    finally:
        stop_watchdog(proc)


def test_second_start_is_refused_naming_the_pid(home: Home) -> None:
    """A second start on the same home exits non-zero and names the running watchdog's pid."""
    write_config(home, toy="normal")
    proc = start_watchdog(home)
    try:
        wait_for_event(home, "worker_spawned")
        second = _run(home, "start")
        assert second.returncode == 1
        assert f"pid {proc.pid}" in second.stderr and "already running" in second.stderr
        quiet = _run(home, "start", "--if-not-running")
        assert quiet.returncode == 0 and "nothing to do" in quiet.stdout
    finally:
        stop_watchdog(proc)


def test_stop_from_another_terminal_leaves_no_process(home: Home, tmp_path: Path) -> None:
    """start --detach, then stop: the watchdog, the worker and the worker's children are all gone."""
    write_config(home, toy="normal")
    started = _run(home, "start", "--detach")
    assert started.returncode == 0, started.stderr
    state = json.loads(home.watchdog_state_file.read_text())
    wait_for(lambda: json.loads(home.watchdog_state_file.read_text()).get("worker_pid"), timeout=5, what="worker")
    state = json.loads(home.watchdog_state_file.read_text())
    watchdog_pid, worker_pid = state["pid"], state["worker_pid"]
    stopped = _run(home, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"pid {watchdog_pid}" in stopped.stdout
    for pid in (watchdog_pid, worker_pid):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert _run(home, "status").returncode == 3
    again = _run(home, "stop")
    assert again.returncode == 0 and "no watchdog is running" in again.stdout


def test_sigint_stops_gracefully_with_the_worker(home: Home) -> None:
    """Ctrl+C (SIGINT) on the watchdog stops the worker tree and exits 0."""
    write_config(home, toy="normal")
    proc = start_watchdog(home)
    worker = wait_for_event(home, "worker_spawned")[0]["pid"]
    proc.send_signal(2)
    proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE


def test_bad_config_is_refused_before_starting(home: Home) -> None:
    """start with an unknown config key exits 1, names key and file, and starts no worker."""
    home.config_file.write_text("[watchdog]\nrestart_limt = 3\n", encoding="utf-8")
    result = _run(home, "start")
    assert result.returncode == 1
    assert "unknown key watchdog.restart_limt" in result.stderr and str(home.config_file) in result.stderr
    assert not home.events_file.exists()


def test_builtin_worker_exits_78_on_bad_config(home: Home) -> None:
    """`continuity worker` with a broken config exits 78 (EX_CONFIG) with the reason on stderr."""
    home.config_file.write_text("[worker]\nheartbeat_interval = 0\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "continuity.worker"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "CONTINUITY_HOME": str(home.root)},
    )
    assert result.returncode == 78
    assert "worker.heartbeat_interval must be greater than 0" in result.stderr


def test_help_explains_commands() -> None:
    """--help lists the commands and start --help explains restarts and logs."""
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"], catch_exceptions=False)
    assert top.exit_code == 0 and "start" in top.output and "status" in top.output and "--home" in top.output
    start = runner.invoke(cli, ["start", "--help"], catch_exceptions=False)
    assert "--if-not-running" in start.output and "logs/watchdog.log" in start.output


def test_wait_stopped_waits_for_a_live_process_and_not_for_an_unreaped_one(home: Home) -> None:
    """`stop` waits until the watchdog's process has ended: a live one (lock already released) is not "stopped"
    when the time is up, and one that ended but is not reaped yet by its parent (a zombie) is stopped at once."""
    from continuity.watchdog.lifecycle import wait_stopped

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for(lambda: psutil.Process(ended.pid).status() == psutil.STATUS_ZOMBIE, timeout=10, what="a zombie")
        assert wait_stopped(home, live.pid, timeout_s=0.3) is False
        assert wait_stopped(home, ended.pid, timeout_s=30.0) is True
        assert psutil.Process(ended.pid).status() == psutil.STATUS_ZOMBIE  # it was not waited for: still unreaped
    finally:
        live.kill()
        live.wait()
        ended.wait()
