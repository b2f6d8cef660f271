"""Process hardening with real processes, signals and files: zombies, a home deleted or replaced under a running
watchdog, the lock (not the state file) deciding "running", and one clear line instead of a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from continuity.watchdog.instance import Home
from tests._chromium import needs_chromium
from tests._watchdog_harness import (
    events,
    start_watchdog,
    stop_watchdog,
    wait_for,
    wait_for_event,
    write_config,
)


def _run(home: Home | bytes, *args: str, timeout: float = 60.0, **kwargs: object) -> subprocess.CompletedProcess[str]:
    root = home if isinstance(home, bytes) else str(home.root)
    return subprocess.run(
        [sys.executable, "-m", "continuity.watchdog", "--home", root, *args],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        **kwargs,  # type: ignore[arg-type]
    )


def _zombies(*pids: int) -> list[tuple[int, int, str]]:
    """(parent, pid, name) of every zombie child of `pids`."""
    found = []
    for parent in pids:
        try:
            children = psutil.Process(parent).children()
        except psutil.NoSuchProcess:
            continue
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.status() == psutil.STATUS_ZOMBIE:
                    found.append((parent, child.pid, child.name()))
    return found


def _kill_tree(pid: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for proc in [*root.children(recursive=True), root]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def _rm_rf(path: Path) -> None:
    """rm -rf, again while the running worker puts files back (rm -rf would say "Directory not empty")."""
    for _ in range(100):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
    raise AssertionError(f"{path} could not be deleted")


def _quick_config(home: Home) -> None:
    """The toy worker with fast timings (hang seen after 1 s), no API."""
    write_config(home, toy="normal")
    with open(home.config_file, "a", encoding="utf-8") as handle:
        handle.write("[api]\nenabled = false\n")


def _api_config(home: Home, *, toy: str = "normal", api: bool = True) -> None:
    write_config(home, toy=toy, startup_grace=30.0, heartbeat_timeout=30.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(home.config_file, "a", encoding="utf-8") as handle:
        handle.write(f"[api]\nenabled = {str(api).lower()}\nport = {port}\n")


def _limit_memory() -> None:
    """preexec_fn: 1 GiB of address space, so reading an endless device fails fast instead of eating the host."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single 'Error: ...' line a failing command printed (no traceback, nothing else on stderr)."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


# --- 1. zombies --------------------------------------------------------------------------------------------------


@needs_chromium
def test_browser_restarts_leave_no_zombies(home: Home) -> None:
    """Four browser crashes (SIGKILL, WhatsApp on a closed port) leave no zombie under the worker or the watchdog."""
    closed = socket.socket()  # bound, never listening: every connection to it is refused
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    home.config_file.write_text(
        "[watchdog]\nheartbeat_timeout = 60\nstartup_grace = 60\nstop_timeout = 5\n"
        f'[whatsapp]\nurl = "http://127.0.0.1:{port}/"\nheadless = true\nreconnect_backoff = [0.2, 0.5]\n'
        "[api]\nenabled = false\n[worker]\nheartbeat_interval = 1.0\n",
        encoding="utf-8",
    )
    proc = start_watchdog(home)
    try:
        worker_pid = wait_for_event(home, "worker_spawned", timeout=30)[0]["pid"]
        for count in range(1, 5):
            started = wait_for_event(home, "browser_started", count=count, timeout=60)
            os.kill(started[-1]["browser_pid"], signal.SIGKILL)
        wait_for_event(home, "browser_started", count=5, timeout=60)
        assert len(events(home, "worker_spawned")) == 1, "the worker restarted: its zombies would be gone with it"
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not _zombies(proc.pid, worker_pid), timeout=10, what="no zombies")
        assert _zombies(proc.pid, worker_pid) == []
    finally:
        stop_watchdog(proc, timeout=60)
        closed.close()


# --- 2. the home deleted or replaced; the lock decides "running" -----------------------------------------------


def test_deleted_home_stops_the_watchdog_and_its_worker(home: Home) -> None:
    """rm -rf of a running home: the watchdog stops the worker's tree and exits 1 saying so, never recreating it."""
    _api_config(home, api=False)
    proc = start_watchdog(home)
    try:
        worker = psutil.Process(wait_for_event(home, "worker_spawned")[0]["pid"])
        _rm_rf(home.root)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 1, out
        assert f"the home {home.root} is gone" in out or f"the home {home.root} was deleted" in out, out
        assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
        assert not home.root.exists()
    finally:
        _kill_tree(proc.pid)
        stop_watchdog(proc)


def test_replaced_home_stops_the_old_watchdog(home: Home, tmp_path: Path) -> None:
    """The home moved away, another put at its path and started: the old watchdog leaves (exit 1, home_lost)."""
    _quick_config(home)
    proc = start_watchdog(home)
    try:
        old_worker = psutil.Process(wait_for_event(home, "worker_spawned")[0]["pid"])
        fresh = Home(tmp_path / "fresh")
        fresh.root.mkdir()
        fresh.ensure()
        _quick_config(fresh)
        os.rename(home.root, tmp_path / "old-home")
        os.rename(fresh.root, home.root)
        second = _run(home, "start", "--detach")
        assert second.returncode == 0, second.stdout + second.stderr
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 1 and f"the home {home.root} was deleted or replaced" in out, out
        assert not old_worker.is_running() or old_worker.status() == psutil.STATUS_ZOMBIE
        assert [e["pid"] for e in events(home, "home_lost")] == [proc.pid]
        status = _run(home, "status", "--json")
        new_pid = json.loads(status.stdout)["watchdog"]["pid"]
        assert status.returncode == 0 and new_pid not in (None, proc.pid)
    finally:
        _kill_tree(proc.pid)
        stop_watchdog(proc)
        _run(home, "stop")


def test_garbage_state_file_does_not_hide_the_running_watchdog(home: Home) -> None:
    """run/watchdog.json garbage: start is refused naming the pid, status says running, stop stops it."""
    _api_config(home, api=False)
    proc = start_watchdog(home)
    try:
        wait_for_event(home, "worker_spawned")
        wait_for(lambda: b'"running"' in home.watchdog_state_file.read_bytes(), timeout=5, what="state running")
        home.watchdog_state_file.write_bytes(b"\x00{garbage")
        second = _run(home, "start", "--detach")
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"already running for {home.root} (pid {proc.pid})" in second.stderr
        assert _run(home, "status").returncode != 3
        stop = _run(home, "stop")
        assert stop.returncode == 0 and f"stopped the watchdog (pid {proc.pid})" in stop.stdout, stop.stdout
        proc.wait(timeout=5)
    finally:
        stop_watchdog(proc)


# --- 3. one clear line, never a traceback ------------------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, *, size_kb: int, inodes: int) -> Iterator[Path]:
    """A tiny tmpfs mounted on `path` (root only), unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,nr_inodes={inodes}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory: Path) -> None:
    """Use up the file system of `directory`: its inodes, then its blocks."""
    for index in range(100_000):
        try:
            (directory / f"inode{index}").touch()
        except OSError:
            break
    with contextlib.suppress(OSError), open(directory / "inode0", "wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()


def test_api_token_on_a_full_disk_leaves_supervision_running(home: Home) -> None:
    """run/ on a full tmpfs: the API token cannot be written; the API is off (log line, event), supervision goes on."""
    _api_config(home, toy="silent")
    with _tmpfs(home.run_dir, size_kb=64, inodes=64) as run_dir:
        (run_dir / "control").mkdir()
        with contextlib.suppress(OSError), open(run_dir / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        proc = start_watchdog(home)
        try:
            wait_for_event(home, "worker_spawned", timeout=10)
            unavailable = wait_for_event(home, "api_unavailable", timeout=10)
            assert "No space left on device" in unavailable[0]["error"]
            assert proc.poll() is None, "the watchdog died"
            log = (home.logs_dir / "watchdog.log").read_text(encoding="utf-8")
            assert "API not started" in log and "api_token" in log
        finally:
            out = stop_watchdog(proc)
        assert proc.returncode == 0, out
        assert "Traceback" not in out


def test_api_token_symlinked_to_dev_full_neither_hangs_nor_touches_the_device(home: Home) -> None:
    """run/api_token -> /dev/full: the watchdog neither reads the device forever nor chmods it; the API comes up."""
    _api_config(home)
    before = os.stat("/dev/full")
    (home.run_dir / "api_token").symlink_to("/dev/full")
    proc = subprocess.Popen(  # start_watchdog, with memory capped: reading the device must fail fast, not eat the host
        [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "start"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CONTINUITY_DETACHED": "1"},
        preexec_fn=_limit_memory,
    )
    try:
        wait_for_event(home, "api_started", timeout=10)
        wait_for_event(home, "worker_spawned", timeout=10)
        assert stat.S_IMODE(os.stat("/dev/full").st_mode) == stat.S_IMODE(before.st_mode)
        token = (home.run_dir / "api_token").read_text(encoding="ascii").strip()
        assert len(token) >= 32 and not (home.run_dir / "api_token").is_symlink()
    finally:
        os.chmod("/dev/full", stat.S_IMODE(before.st_mode))
        stop_watchdog(proc)


def test_detached_start_on_a_full_disk_says_why(tmp_path: Path) -> None:
    """start --detach on a full disk (no inode left): one line naming the lock file and 'No space left on device'."""
    with _tmpfs(tmp_path / "full", size_kb=256, inodes=32) as root:
        home = Home(root)
        home.ensure()
        _api_config(home, api=False)
        home.watchdog_out_file.touch()
        _fill(home.data_dir)
        result = _run(home, "start", "--detach", timeout=30)
        assert result.returncode == 1
        line = _one_clear_line(result)
        assert str(home.watchdog_lock_file) in line and "No space left on device" in line, line


def test_detached_start_with_out_file_on_dev_full_says_why(home: Home) -> None:
    """logs/watchdog.out -> /dev/full and a child that cannot start: the reason is shown, /dev/full is never read."""
    _api_config(home, api=False)
    home.watchdog_out_file.symlink_to("/dev/full")
    home.watchdog_lock_file.mkdir()
    result = _run(home, "start", "--detach", timeout=30, preexec_fn=_limit_memory)
    assert result.returncode == 1
    line = _one_clear_line(result)
    assert str(home.watchdog_lock_file) in line and "directory" in line, line


@pytest.mark.parametrize(
    ("where", "make"),
    [
        ("run/watchdog.lock", Path.mkdir),
        ("run/heartbeat.json", Path.mkdir),
        ("data", Path.touch),
    ],
)
def test_wrong_kind_of_path_in_the_home_is_one_clear_line(home: Home, where: str, make: object) -> None:
    """A directory where a file belongs (or a file where data/ belongs): start says so in one line naming it."""
    _api_config(home, api=False)
    path = home.root / where
    if path.is_dir():
        path.rmdir()
    make(path)  # type: ignore[operator]
    for args in (("start",), ("start", "--detach")):
        result = _run(home, *args, timeout=30)
        assert result.returncode == 1, result.stdout + result.stderr
        assert str(path) in _one_clear_line(result)
    for args in (("status",), ("stop",)):
        result = _run(home, *args, timeout=30)
        assert "Traceback" not in result.stdout + result.stderr


def test_non_utf8_argv_is_one_clear_line(tmp_path: Path) -> None:
    """--home with bytes that are not UTF-8: one clear line (exit 2), no traceback, no watchdog started."""
    raw = os.fsencode(tmp_path) + b"/h\xff"
    for args in (("start", "--detach"), ("status",), ("stop",)):
        result = _run(raw, *args, timeout=30)
        assert result.returncode == 2, result.stdout + result.stderr
        line = _one_clear_line(result)
        assert "UTF-8" in line and "\\xff" in line, line
    assert not os.path.exists(raw)


def test_worker_alone_on_a_blocked_home_says_why_in_one_line(home: Home) -> None:
    """`continuity worker` run by hand where `data` is a file: one line naming the problem, exit 1, no traceback."""
    shutil.rmtree(home.data_dir)
    home.data_dir.write_text("not a directory")
    result = subprocess.run(
        [sys.executable, "-m", "continuity.worker"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CONTINUITY_HOME": str(home.root)},
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and str(home.data_dir) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
