"""The watchdog seen from another process (`continuity start --detach`, `continuity stop`): start one in the
background and wait until it holds its lock, ask a running one to stop and wait until it is gone. The lock decides
whether one runs (`run/watchdog.lock`), never `run/watchdog.json`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .instance import (
    DETACHED_ENV,
    STARTUP_PIPE_ENV,
    AlreadyRunning,
    ContinuityError,
    Home,
    is_locked,
    pid_alive,
    running_watchdog,
)
from .run import runner_argv

STARTUP_TIMEOUT_S = 15.0


class LifecycleError(ContinuityError, RuntimeError):
    """The watchdog could not be started, asked to stop, or looked at; the message says why in one line (or the
    watchdog's own last words)."""


def running(home: Home) -> dict[str, Any] | None:
    """running_watchdog, with a lock file that cannot be looked at turned into one clear LifecycleError."""
    try:
        return running_watchdog(home)
    except OSError as exc:
        raise LifecycleError(f"cannot tell whether a watchdog runs for {home.root}: {exc}") from None


def start_detached(home: Home, *, if_not_running: bool) -> list[str]:
    """Start the watchdog of `home` in the background (its own session; stdout to logs/watchdog.out) and return
    once it holds its lock: the lines to tell the user. AlreadyRunning when one runs (unless `if_not_running`:
    then it says so), LifecycleError when it did not come up (with its reason)."""
    existing = running(home)
    if existing is not None:
        if if_not_running:
            return [f"a watchdog is already running for {home.root} (pid {existing['pid']}); nothing to do"]
        raise AlreadyRunning(
            f"a watchdog is already running for {home.root} (pid {existing['pid']})", pid=existing["pid"]
        )
    argv = runner_argv(home, if_not_running=if_not_running)
    out_path = home.watchdog_out_file
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":  # pragma: no cover - Windows only
        kwargs["creationflags"] = (
            subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        )
    else:
        kwargs["start_new_session"] = True
    try:
        out = open(out_path, "ab")  # noqa: SIM115 - handed to the child, closed right after
    except OSError as exc:
        raise LifecycleError(f"cannot write {out_path}: {exc}") from None
    with out:  # stderr: a pipe until the watchdog is up, so its reason to fail is seen even on a full disk
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            cwd=home.root,
            env={**os.environ, DETACHED_ENV: "1", STARTUP_PIPE_ENV: "1"},
            **kwargs,
        )
    said = _first_words(child, out_path)
    deadline = time.monotonic() + 2.0
    while (code := child.poll()) is None and time.monotonic() < deadline:
        info = running(home)
        if info is not None and info["pid"] == child.pid:
            return [
                f"watchdog started in the background (pid {child.pid}) for {home.root}",
                f"logs: {home.logs_dir}; status: continuity --home {home.root} status",
            ]
        time.sleep(0.05)
    if code is None:
        raise LifecycleError(
            f"the watchdog (pid {child.pid}) did not come up within {STARTUP_TIMEOUT_S:g} s; see {out_path}"
        )
    if code == 0 and if_not_running:  # another start won the race: it said "nothing to do"
        return said
    raise LifecycleError(_why_not_started(home, code, said or _tail(out_path), out_path))


def _first_words(child: subprocess.Popen[bytes], out_path: Path) -> list[str]:
    """What the watchdog wrote on stderr until it was up (the pipe closes) or gone, kept in the out file too."""
    chunks: list[bytes] = []
    stream = child.stderr
    if stream is not None:
        reader = threading.Thread(target=lambda: chunks.extend(stream), name="first-words", daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT_S)
    data = b"".join(chunks)
    if data:
        with contextlib.suppress(OSError), open(out_path, "ab") as out:
            out.write(data)
    return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]


def _tail(path: Path, count: int = 5) -> list[str]:
    """The last lines of the out file; never read from a device (a link to /dev/full would never end)."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return []
            handle.seek(max(0, info.st_size - 4096))
            data = handle.read(4096)
    except OSError:
        return []
    return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()][-count:]


def _why_not_started(home: Home, code: int, lines: list[str], out_path: Path) -> str:
    """One line when the watchdog said one thing (its "Error: " dropped), else its last words, else a guess."""
    said = [line.removeprefix("Error: ") for line in lines[-5:]]
    if len(said) == 1:
        return f"the watchdog did not start (exit code {code}): {said[0]}"
    if said:
        return f"the watchdog exited at once (exit code {code}):\n" + "\n".join(said)
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(home.root).free
        if free < 1 << 20:
            return f"the watchdog exited at once (exit code {code}); the disk of {home.root} is full ({free} B free)"
    return f"the watchdog exited at once (exit code {code}) without a word; see {out_path} and its logs"


def request_stop(home: Home, pid: int | None) -> None:
    """Ask the watchdog to stop: run/stop.request (how Windows asks) and, where there are signals, SIGTERM to
    `pid`. LifecycleError when neither can be done."""
    try:
        home.stop_request_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
    except OSError as exc:  # a full disk: the signal alone will do, when the pid is known
        if pid is None:
            raise LifecycleError(f"cannot ask the watchdog to stop: {exc}") from None
    if pid is not None and os.name != "nt":
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def wait_stopped(home: Home, pid: int | None, timeout_s: float) -> bool:
    """Wait until the watchdog let its lock go, then until its process has ended (a zombie its parent has not
    reaped yet has ended); False after `timeout_s` s."""
    deadline = time.monotonic() + timeout_s
    while is_locked(home.watchdog_lock_file) or (pid is not None and pid_alive(pid)):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
