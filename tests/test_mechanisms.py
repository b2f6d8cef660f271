"""The shared mechanisms of the instance contract: backoff, sliding window, pid check, directory size, JSONL."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from continuity.watchdog.instance import (
    EventLog,
    JsonlFollower,
    SlidingWindow,
    backoff_delay,
    directory_size,
    parse_json_line,
    parse_jsonl,
    pid_alive,
    read_events,
)

# -- backoff ----------------------------------------------------------------------------------------------------


def test_backoff_doubles_from_the_first_delay_up_to_the_cap() -> None:
    """Attempt 1 waits first_s (and so do 0 and negatives), each further attempt twice as long, never past cap_s."""
    assert [backoff_delay(attempt=n, first_s=1.5, cap_s=10.0) for n in (-3, 0, 1, 2, 3, 4, 5)] == [
        1.5, 1.5, 1.5, 3.0, 6.0, 10.0, 10.0
    ]  # fmt: skip
    assert backoff_delay(attempt=1, first_s=20.0, cap_s=10.0) == 10.0


def test_backoff_never_overflows() -> None:
    """An attempt count in the millions still gives the cap (a float, no OverflowError)."""
    delay = backoff_delay(attempt=10**9, first_s=5.0, cap_s=60.0)
    assert delay == 60.0 and isinstance(delay, float)


class _FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_jitter_stays_in_the_upper_half() -> None:
    """With an rng, the delay is the plain delay times 0.5 + 0.5 x rng.random(): within [half, full)."""
    assert backoff_delay(attempt=3, first_s=1.0, cap_s=60.0, rng=_FixedRandom(0.0)) == 2.0
    assert backoff_delay(attempt=3, first_s=1.0, cap_s=60.0, rng=_FixedRandom(0.5)) == 3.0
    assert backoff_delay(attempt=9, first_s=1.0, cap_s=60.0, rng=_FixedRandom(0.5)) == 45.0  # of the capped delay
    rng = random.Random(7)
    delays = [backoff_delay(attempt=4, first_s=1.0, cap_s=60.0, rng=rng) for _ in range(200)]
    assert all(4.0 <= d < 8.0 for d in delays) and len(set(delays)) > 100


# -- sliding window ---------------------------------------------------------------------------------------------


def test_window_counts_events_younger_than_the_window() -> None:
    """An event is in the window while now - t < window_s: at exactly window_s seconds old it is out."""
    window = SlidingWindow(window_s=10.0)
    for t in (0.0, 4.0, 9.0):
        window.add(t)
    assert window.count(9.0) == 3
    assert window.count(10.0) == 2  # the event at 0 is exactly 10 s old
    assert window.times(14.5) == [9.0]
    assert window.count(19.0) == 0


def test_window_reads_do_not_change_it_and_add_prunes() -> None:
    """count/times/frees_at at a late `now` forget nothing; add() forgets the events out of the window."""
    window = SlidingWindow(window_s=10.0, times=[5.0, 1.0, 3.0])
    assert window.times(100.0) == [] and window.count(100.0) == 0
    assert window.times(6.0) == [1.0, 3.0, 5.0]  # sorted, and still all there
    window.add(12.0)
    assert window.times(12.0) == [3.0, 5.0, 12.0]
    assert window.count(2.0) == 3  # what add() forgot is gone for good (it was out of the window at 12)
    window.add(13.0, now=14.0)  # prune relative to `now`, not to the event's time
    assert window.times(14.0) == [5.0, 12.0, 13.0]
    window.clear()
    assert window.count(14.0) == 0


def test_window_times_is_a_copy() -> None:
    """Changing the list times() returns leaves the window as it was."""
    window = SlidingWindow(window_s=10.0, times=[1.0, 2.0])
    window.times(3.0).clear()
    assert window.count(3.0) == 2


def test_window_frees_at_when_the_limit_th_newest_leaves() -> None:
    """Under the limit it frees now; at it, when the limit-th newest event leaves the window."""
    window = SlidingWindow(window_s=10.0, times=[0.0, 2.0, 5.0])
    assert window.frees_at(6.0, limit=4) == 6.0
    assert window.frees_at(6.0, limit=3) == 10.0  # the oldest (0) leaves at 10
    assert window.frees_at(6.0, limit=2) == 12.0  # two must stay under 2: the one at 2 leaves at 12
    assert window.frees_at(10.0, limit=3) == 10.0  # at 10 only two are left
    with pytest.raises(ValueError):
        window.frees_at(6.0, limit=0)


def test_window_within_a_shorter_span() -> None:
    """within_s counts and frees over the last within_s seconds of a longer window (several limits, one list)."""
    window = SlidingWindow(window_s=3600.0, times=[0.0, 100.0, 3550.0, 3590.0])
    assert window.count(3600.0) == 3 and window.count(3600.0, within_s=60.0) == 2
    assert window.times(3600.0, within_s=60.0) == [3550.0, 3590.0]
    assert window.frees_at(3600.0, limit=2, within_s=60.0) == 3610.0
    assert window.frees_at(3600.0, limit=4, within_s=60.0) == 3600.0


def test_window_future_times_count_as_now() -> None:
    """A time after `now` (the wall clock went back) is in the window and holds it for window_s at most."""
    window = SlidingWindow(window_s=60.0, times=[1000.0])
    assert window.count(10.0) == 1
    assert window.times(10.0) == [10.0]
    assert window.frees_at(10.0, limit=1) == 70.0  # not 1060


# -- pid check --------------------------------------------------------------------------------------------------


def test_pid_alive_for_this_process_and_not_for_bad_pids() -> None:
    """This process is alive; 0, negatives, an absurd pid and a bool are dead, without raising."""
    assert pid_alive(os.getpid())
    assert not any(pid_alive(pid) for pid in (0, -1, -12345, 2**40, 2**63, True))


def test_pid_alive_is_false_for_a_finished_process() -> None:
    """A child that exited and was waited for is dead."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert child.wait(30) == 0
    assert not pid_alive(child.pid)


@pytest.mark.skipif(sys.platform == "win32", reason="no zombies on Windows")
def test_pid_alive_is_false_for_a_zombie() -> None:
    """A child that exited but was not waited for (a zombie: its pid still exists) is dead."""
    import psutil

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        assert psutil.pid_exists(child.pid)  # the pid is still there ...
        assert not pid_alive(child.pid)  # ... but the process is dead
    finally:
        child.wait(30)


# -- directory size ---------------------------------------------------------------------------------------------


def test_directory_size_sums_files_and_never_follows_symlinks(tmp_path: Path) -> None:
    """Files at every depth count; a symlinked directory (and a linked file's content) outside do not."""
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "one").write_bytes(b"x" * 100)
    (tree / "a" / "two").write_bytes(b"x" * 20)
    (tree / "a" / "b" / "three").write_bytes(b"x" * 3)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"x" * 100_000)
    try:
        (tree / "a" / "linked_dir").symlink_to(outside, target_is_directory=True)
        (tree / "linked_file").symlink_to(outside / "big")
    except OSError:
        pytest.skip("symlinks are not allowed here")
    links = os.lstat(tree / "a" / "linked_dir").st_size + os.lstat(tree / "linked_file").st_size
    assert directory_size(tree) == 123 + links
    assert links < 1000  # the links themselves, not what they point at


def test_directory_size_of_missing_or_file_is_zero(tmp_path: Path) -> None:
    """A missing path or a plain file measures 0 bytes, without raising."""
    (tmp_path / "file").write_bytes(b"x" * 10)
    assert directory_size(tmp_path / "missing") == 0
    assert directory_size(tmp_path / "file") == 0


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_directory_size_skips_unreadable_folders(tmp_path: Path) -> None:
    """A folder that cannot be listed is skipped; the rest is still counted."""
    (tmp_path / "ok").write_bytes(b"x" * 7)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "hidden").write_bytes(b"x" * 1000)
    locked.chmod(0)
    try:
        assert directory_size(tmp_path) == 7
    finally:
        locked.chmod(0o700)


# -- JSONL ------------------------------------------------------------------------------------------------------


def test_parse_jsonl_keeps_objects_and_skips_the_rest() -> None:
    """Objects come back in order; blank, broken, non-object, undecodable and absurdly nested lines are skipped."""
    data = b'{"a":1}\n\nnot json\n[1,2]\n"s"\n\xff\xfe\n' + b"[" * 100_000 + b'\n{"b":2}\n{"c":3'
    assert parse_jsonl(data) == [{"a": 1}, {"b": 2}]
    assert parse_json_line('{"x": "y"}') == {"x": "y"} and parse_json_line("3") is None


def _events(*names: str, ts: float = 1.0) -> str:
    return "".join(json.dumps({"ts": ts, "event": name}) + "\n" for name in names)


def test_read_events_since_limit_and_last_bytes(tmp_path: Path) -> None:
    """Newer than `since`, the last `limit`, and from the last max_bytes only (the cut first line skipped)."""
    path = tmp_path / "events.jsonl"
    assert read_events(path) == []
    lines = [json.dumps({"ts": float(i), "event": f"e{i}"}) for i in range(1, 11)]
    path.write_text("\n".join(lines) + '\n{"ts":"11","event":"string ts"}\nbroken\n', encoding="utf-8")
    assert [e["event"] for e in read_events(path)] == [f"e{i}" for i in range(1, 11)]
    assert [e["event"] for e in read_events(path, since=7.0)] == ["e8", "e9", "e10"]
    assert [e["event"] for e in read_events(path, since=2.0, limit=2)] == ["e9", "e10"]
    tail = len(lines[-1]) + len(lines[-2]) + 2 + len('{"ts":"11","event":"string ts"}\nbroken\n') + 3
    assert [e["event"] for e in read_events(path, max_bytes=tail)] == ["e9", "e10"]  # e8 is cut: skipped


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def test_follower_starts_at_the_end_and_returns_complete_lines(tmp_path: Path) -> None:
    """Only lines appended after it started, and only once their newline is written."""
    path = tmp_path / "events.jsonl"
    path.write_text(_events("old"))
    follower = JsonlFollower(path)
    assert follower.read_lines() == []
    _append(path, '{"event":"a"}\npartial')
    assert follower.read_lines() == [b'{"event":"a"}']
    assert follower.read_lines() == []
    _append(path, " line\n")
    assert follower.read_text() == ["partial line"]


def test_follower_waits_for_a_missing_file_and_reads_it_from_the_start(tmp_path: Path) -> None:
    """A file that does not exist yet is read from its first line once it appears; from_start reads old lines."""
    path = tmp_path / "worker.log"
    follower = JsonlFollower(path)
    assert follower.read_lines() == []
    path.write_text("first\r\nsecond\n")
    assert follower.read_text() == ["first", "second"]
    assert [
        e["event"] for e in JsonlFollower(_write(tmp_path / "x.jsonl", "a", "b"), from_start=True).read_events()
    ] == [
        "a",
        "b",
    ]


def _write(path: Path, *names: str) -> Path:
    path.write_text(_events(*names))
    return path


def test_follower_follows_a_real_rotation(tmp_path: Path) -> None:
    """EventLog renames the file to .1 and starts a new one: the follower reads the old file to its end, then the
    new one from its start, losing and repeating nothing."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path, source="test", clock=lambda: 5.0, max_bytes=300)
    log.emit("before")
    follower = JsonlFollower(path)
    names: list[str] = []
    for index in range(30):  # several rotations (.1, .2, .3), read every few events
        log.emit(f"e{index}")
        if index % 3 == 2:
            names += [e["event"] for e in follower.read_events()]
    names += [e["event"] for e in follower.read_events()]
    assert path.with_name("events.jsonl.1").exists()
    assert names == [f"e{index}" for index in range(30)]


def test_follower_drains_the_old_file_before_the_new_one(tmp_path: Path) -> None:
    """Lines appended to the old file just before it was renamed come first, then the new file's lines."""
    path = _write(tmp_path / "worker.log")
    follower = JsonlFollower(path)
    _append(path, "old 1\nold 2\nunterminated")
    os.replace(path, path.with_name("worker.log.1"))
    path.write_text("new 1\n")
    assert follower.read_text() == ["old 1", "old 2", "unterminated", "new 1"]
    _append(path, "new 2\n")
    assert follower.read_text() == ["new 2"]


def test_follower_follows_a_replaced_or_truncated_file(tmp_path: Path) -> None:
    """A file replaced by another (new identity) or truncated in place is read again from its start."""
    path = _write(tmp_path / "events.jsonl", "a", "b")
    follower = JsonlFollower(path)
    replacement = _write(tmp_path / "new.jsonl", "c")
    os.replace(replacement, path)
    assert [e["event"] for e in follower.read_events()] == ["c"]
    path.write_text('{"event":"d"}\n')  # truncated in place (same file), shorter than what was read
    assert [e["event"] for e in follower.read_events()] == ["d"]


def test_follower_reads_a_big_backlog_in_bounded_steps(tmp_path: Path) -> None:
    """Each read takes at most max_bytes; a line longer than that is skipped, the lines after it are not."""
    path = tmp_path / "events.jsonl"
    path.write_text("")
    follower = JsonlFollower(path, max_bytes=64)
    _append(path, "".join(f"line {i:02}\n" for i in range(20)) + "x" * 200 + "\nafter\n")
    got: list[str] = []
    for _ in range(20):
        step = follower.read_text()
        assert sum(len(line) + 1 for line in step) <= 64
        got += step
    assert got == [f"line {i:02}" for i in range(20)] + ["after"]
