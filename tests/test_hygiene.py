"""Profile hygiene with real processes, signals, symlinks and files (no browser needed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from continuity.watchdog.instance import EventLog, Home, read_events
from continuity.worker.browser import hygiene
from continuity.worker.browser.hygiene import (
    clear_browser_temp,
    clear_stale_singleton_locks,
    prepare_profile,
    repair_profile_files,
    sweep_profile_holders,
    trim_profile,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and symlinks")

SLEEPER = "import sys, time\nwhile True: time.sleep(1)"
STUBBORN = (
    "import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
    "while True: time.sleep(1)"
)
PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(1)'])\n"
    "print(child.pid, flush=True)\nwhile True: time.sleep(1)"
)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test; whatever survives is killed and reaped afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _spawn(procs: list[subprocess.Popen[bytes]], code: str, *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    procs.append(proc)
    return proc


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_cmdline(pid: int, needle: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if any(needle in arg for arg in psutil.Process(pid).cmdline()):
                return
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} never showed {needle!r}")


@posix_only
def test_sweep_kills_profile_holders_and_their_children_only(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Processes with --user-data-dir=<profile> and their children die; other profiles' survive."""
    profile, other = tmp_path / "profile", tmp_path / "other"
    holder = _spawn(procs, PARENT, f"--user-data-dir={profile}")
    assert holder.stdout is not None
    grandchild = int(holder.stdout.readline())
    split = _spawn(procs, SLEEPER, "--user-data-dir", str(profile))
    bystander = _spawn(procs, SLEEPER, f"--user-data-dir={other}")
    for proc in (holder, split, bystander):
        _wait_cmdline(proc.pid, "user-data-dir")
    killed = sweep_profile_holders(profile, timeout_s=5.0)
    assert sorted(killed) == sorted([holder.pid, grandchild, split.pid])
    assert holder.wait(timeout=5) == -signal.SIGTERM
    assert _gone(grandchild)
    assert bystander.poll() is None


@posix_only
def test_sweep_kills_after_term_is_ignored(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    """A holder that ignores SIGTERM gets SIGKILL once timeout_s has passed."""
    profile = tmp_path / "profile"
    stubborn = _spawn(procs, STUBBORN, f"--user-data-dir={profile}")
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    start = time.monotonic()
    assert sweep_profile_holders(profile, timeout_s=0.5) == [stubborn.pid]
    assert stubborn.wait(timeout=5) == -signal.SIGKILL
    assert time.monotonic() - start >= 0.5


@posix_only
def test_sweep_kills_the_private_driver_copy_not_the_system_one(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """A process running from the private driver path is swept; the same program run from elsewhere is not."""
    private = tmp_path / "driver" / "chromedriver"
    private.parent.mkdir()
    shutil.copy2(sys.executable, private)
    ours = subprocess.Popen([str(private), "-c", SLEEPER])
    system = subprocess.Popen([sys.executable, "-c", SLEEPER])
    procs.extend([ours, system])  # type: ignore[list-item]
    _wait_cmdline(ours.pid, "sleep")
    assert sweep_profile_holders(tmp_path / "profile", driver_exe=private) == [ours.pid]
    assert ours.wait(timeout=5) == -signal.SIGTERM
    assert system.poll() is None


@posix_only
def test_sweep_treats_zombies_as_gone(tmp_path: Path) -> None:
    """A zombie holder (exited, unreaped: pid_exists is True) is neither signalled nor reaped behind its parent."""
    profile = tmp_path / "profile"
    zombie = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)", f"--user-data-dir={profile}"])
    deadline = time.monotonic() + 10
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.02)
    assert psutil.pid_exists(zombie.pid)
    assert sweep_profile_holders(profile) == []
    assert psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE  # still there for its parent to reap
    # Its own exit status, 7: Popen.wait() would say 0 for a child reaped behind its back (ECHILD).
    assert zombie.wait(timeout=5) == 7


def _make_locks(profile: Path, target: str) -> None:
    profile.mkdir(parents=True, exist_ok=True)
    os.symlink(target, profile / "SingletonLock")
    os.symlink("12345678901234567890", profile / "SingletonCookie")
    os.symlink("/nonexistent/org.chromium.Chromium.x/SingletonSocket", profile / "SingletonSocket")


def _links(profile: Path) -> list[str]:
    return sorted(name for name in hygiene.SINGLETON_NAMES if os.path.lexists(profile / name))


@posix_only
def test_stale_lock_from_another_host_is_cleared(tmp_path: Path, home: Home) -> None:
    """A SingletonLock naming another hostname (container renamed) is removed with its siblings (an event)."""
    profile = tmp_path / "profile"
    _make_locks(profile, f"old-container-{os.getpid()}")
    events = EventLog(home.events_file, source="worker")
    removed = clear_stale_singleton_locks(profile, events=events)
    assert sorted(removed) == sorted(hygiene.SINGLETON_NAMES)
    assert _links(profile) == []
    [event] = read_events(home.events_file)
    assert event["event"] == "profile_lock_cleared" and "another host" in event["reason"]


@posix_only
def test_stale_lock_of_dead_pid_on_this_host_is_cleared(tmp_path: Path) -> None:
    """Same host but the pid is dead: the lock is stale and removed."""
    profile = tmp_path / "profile"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _make_locks(profile, f"{socket.gethostname()}-{dead.pid}")
    assert clear_stale_singleton_locks(profile) and _links(profile) == []


@posix_only
def test_lock_held_by_live_chromium_on_this_host_is_kept(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    """Same host and the pid is a live browser of this profile: nothing is removed."""
    profile = tmp_path / "profile"
    live = _spawn(procs, SLEEPER, f"--user-data-dir={profile}")
    _wait_cmdline(live.pid, "user-data-dir")
    _make_locks(profile, f"{socket.gethostname()}-{live.pid}")
    assert clear_stale_singleton_locks(profile) == []
    assert _links(profile) == sorted(hygiene.SINGLETON_NAMES)


@posix_only
def test_lock_naming_a_reused_non_browser_pid_is_cleared(tmp_path: Path) -> None:
    """Same host, pid alive but not a browser (pid reuse after a reboot): the lock is stale."""
    profile = tmp_path / "profile"
    _make_locks(profile, f"{socket.gethostname()}-{os.getpid()}")
    assert clear_stale_singleton_locks(profile) and _links(profile) == []


def _fill(path: Path, size: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def _login_storage(profile: Path) -> dict[Path, bytes]:
    return {
        path: _fill(path, 64 * 1024)
        for path in (
            profile / "Default" / "Local Storage" / "leveldb" / "000003.log",
            profile / "Default" / "IndexedDB" / "https_web.whatsapp.com_0.indexeddb.leveldb" / "000005.ldb",
            profile / "Default" / "Cookies",
            profile / "Default" / "Service Worker" / "Database" / "000001.log",
        )
    }


def test_trim_clears_caches_and_never_login_storage(tmp_path: Path, home: Home) -> None:
    """Over the limit, Cache/Code Cache/GPUCache/SW caches go; Local Storage/IndexedDB/Cookies stay."""
    profile = tmp_path / "profile"
    keep = _login_storage(profile)
    caches = [
        "Default/Cache/Cache_Data/f_000001",
        "Default/Code Cache/js/abc",
        "GrShaderCache/data_0",
        "Default/GPUCache/data_1",
        "Default/Service Worker/CacheStorage/x/1",
        "Default/Service Worker/ScriptCache/2",
    ]
    for rel in caches:
        _fill(profile / rel, 256 * 1024)
    freed = trim_profile(profile, 1.0, events=EventLog(home.events_file, source="worker"))
    assert freed >= len(caches) * 256 * 1024
    assert not any((profile / rel).exists() for rel in caches)
    assert {path: path.read_bytes() for path in keep} == keep
    assert [e["event"] for e in read_events(home.events_file)] == ["profile_trimmed"]


def test_trim_under_the_limit_removes_nothing(tmp_path: Path) -> None:
    """A profile under session_max_mb is left exactly as it is."""
    profile = tmp_path / "profile"
    cache = profile / "Default" / "Cache" / "data"
    _fill(cache, 1024)
    assert trim_profile(profile, 1.0) == 0
    assert cache.exists()


def test_trim_when_login_storage_alone_is_over_limit_keeps_it_and_warns(tmp_path: Path, home: Home) -> None:
    """Login storage bigger than the limit is kept and a profile_over_limit event says what to do."""
    profile = tmp_path / "profile"
    keep = _login_storage(profile)
    trim_profile(profile, 0.1, events=EventLog(home.events_file, source="worker"))
    assert {path: path.read_bytes() for path in keep} == keep
    over = [e for e in read_events(home.events_file) if e["event"] == "profile_over_limit"]
    assert over and "session_max_mb" in over[0]["hint"]


@pytest.mark.parametrize("content", [b'{"profile": {', b"", b"\xff\xfe\x00garbage", b"[1, 2]"])
def test_corrupt_preferences_is_moved_aside_not_deleted(tmp_path: Path, home: Home, content: bytes) -> None:
    """Corrupt Default/Preferences (truncated, empty, not UTF-8, not an object) is moved aside intact."""
    profile = tmp_path / "profile"
    prefs = profile / "Default" / "Preferences"
    prefs.parent.mkdir(parents=True)
    prefs.write_bytes(content)
    (profile / "Local State").write_text(json.dumps({"browser": {}}))
    moved = repair_profile_files(profile, events=EventLog(home.events_file, source="worker"))
    assert moved == [os.path.join("Default", "Preferences")]
    assert not prefs.exists()
    [aside] = prefs.parent.glob("Preferences.corrupt-*")
    assert aside.read_bytes() == content
    assert json.loads((profile / "Local State").read_text()) == {"browser": {}}
    assert read_events(home.events_file)[0]["event"] == "profile_file_repaired"


def test_corrupt_local_state_is_moved_aside(tmp_path: Path) -> None:
    """A corrupt top-level Local State is moved aside too; valid Preferences are left alone."""
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text("{}")
    (profile / "Local State").write_bytes(b"\x00" * 10)
    assert repair_profile_files(profile) == ["Local State"]
    assert (profile / "Default" / "Preferences").read_text() == "{}"


def test_clear_browser_temp_removes_only_chromium_folders(tmp_path: Path) -> None:
    """org.chromium.Chromium.* folders in the private TMPDIR go; other files stay."""
    (tmp_path / "org.chromium.Chromium.abc123").mkdir()
    (tmp_path / "org.chromium.Chromium.abc123" / "SingletonSocket").write_text("x")
    (tmp_path / "keep.txt").write_text("x")
    assert clear_browser_temp(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@posix_only
def test_prepare_profile_creates_0700_and_records_each_action(tmp_path: Path, home: Home) -> None:
    """prepare_profile makes the profile 0700 and logs every action it took as an event."""
    profile = home.profile_dir
    _make_locks(profile, "elsewhere-1")
    os.chmod(profile, 0o755)
    (profile / "Local State").write_text("{broken")
    report = prepare_profile(profile, max_mb=500, events=EventLog(home.events_file, source="worker"))
    assert profile.stat().st_mode & 0o777 == 0o700
    assert report.removed_locks and report.repaired_files == ["Local State"] and report.swept_pids == []
    kinds = {e["event"] for e in read_events(home.events_file)}
    assert kinds == {"profile_lock_cleared", "profile_file_repaired"}
