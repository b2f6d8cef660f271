"""Spawning the worker in its own process group, and killing its whole tree (psutil kill_proc_tree recipe)."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from .instance import pid_alive
from .profile_procs import wait_gone

logger = logging.getLogger("continuity.watchdog")

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Linux: adopt orphaned descendants, so a grandchild left by a crashed worker is still ours to kill."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _alive(proc: psutil.Process) -> bool:
    """Whether this very process runs (not a zombie, and its pid not reused since `proc` was made)."""
    # Not pid_alive alone: is_running() is an identity check (pid + start time) that a bare pid cannot make.
    return proc.is_running() and pid_alive(proc.pid)


def _send(procs: Sequence[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.send_signal(sig)


def _killpg(pgid: int, sig: int) -> None:
    """POSIX: signal a whole process group (the worker's session). Callers are platform-guarded themselves: the
    POSIX-only signal numbers they pass (SIGCONT, SIGKILL) do not exist on Windows."""
    if sys.platform != "win32":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


class StopReport:
    """What stopping a tree took: pids that exited after TERM and those that needed KILL."""

    def __init__(self) -> None:
        self.terminated: list[int] = []
        self.killed: list[int] = []


class WorkerProcess:
    """One spawned worker: own process group (POSIX session / Windows group + Job Object), exit seen at once."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path,
        on_output: Callable[[str, int], None] | None = None,
        on_exit: Callable[[WorkerProcess], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._job: Any = None
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True
        self.popen = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=None if on_output is None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **kwargs,
        )
        self.pid = self.popen.pid
        self.started_at = clock()
        self.returncode: int | None = None
        self.exited = threading.Event()
        if sys.platform == "win32":
            self._assign_job()
        self._on_exit = on_exit
        threading.Thread(target=self._wait, name=f"wait-worker-{self.pid}", daemon=True).start()
        self.output_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._pump: threading.Thread | None = None
        if on_output is not None:
            self._pump = threading.Thread(
                target=self._pump_output, args=(on_output,), name="worker-output", daemon=True
            )
            self._pump.start()

    def _pump_output(self, on_output: Callable[[str, int], None]) -> None:
        """Each line the worker (or anything in its tree) prints: kept in `output_tail` and passed on."""
        stream = self.popen.stdout
        if stream is None:
            return
        for raw in stream:  # blocks in read(): a wakeup per line the worker writes, none while it is quiet
            line = raw.decode("utf-8", "replace").rstrip()
            self.output_tail.append(line)
            on_output(line, self.pid)
        stream.close()

    def last_words(self, *, timeout_s: float) -> list[str]:
        """The last lines of output once the pipe has ended (its tree is dead), waiting up to `timeout_s` s."""
        if self._pump is not None:
            self._pump.join(timeout_s)
        return list(self.output_tail)

    def _assign_job(self) -> None:  # pragma: no cover - Windows only
        from ._winjob import JobObject

        try:
            self._job = JobObject()
            self._job.assign(int(self.popen._handle))  # type: ignore[attr-defined]
        except OSError as exc:
            logger.warning("could not put the worker in a Job Object (%s); tree kill falls back to psutil", exc)

    def _wait(self) -> None:
        self.returncode = self.popen.wait()  # a blocking wait: the exit is noticed at once, never by a tick
        self.exited.set()
        if self._on_exit is not None:
            self._on_exit(self)

    def descendants(self) -> list[psutil.Process]:
        """The worker's live descendants, deepest first; after a crash, the orphans it left behind."""
        found: dict[int, psutil.Process] = {}
        with contextlib.suppress(psutil.NoSuchProcess):
            for proc in psutil.Process(self.pid).children(recursive=True):
                found[proc.pid] = proc
        # Orphans: with the subreaper bit (Linux) they are re-parented to us; else they keep the worker's group.
        with contextlib.suppress(psutil.NoSuchProcess):
            for proc in psutil.Process().children(recursive=True):
                if proc.pid != self.pid and self._belongs(proc):
                    found[proc.pid] = proc
        return list(reversed(found.values()))

    def _belongs(self, proc: psutil.Process) -> bool:
        if sys.platform == "win32":
            return True
        try:
            return os.getpgid(proc.pid) == self.pid or proc.ppid() == os.getpid()
        except (ProcessLookupError, psutil.NoSuchProcess):
            return False

    def stop_tree(self, *, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> StopReport:
        """TERM the worker (SIGCONT too, in case it is stopped), then its descendants; KILL what is left by
        `timeout_s`. Bottom-up, whole group; every process of the tree is reaped before returning."""
        deadline = clock() + timeout_s
        report = StopReport()
        tree = self.descendants()
        if not self.exited.is_set():
            self._signal_worker(graceful=True)
            self.exited.wait(max(0.0, deadline - clock()))
            tree = _merge(tree, self.descendants())  # what it started while shutting down
        _send(tree, signal.SIGTERM)  # Windows: psutil terminates (TerminateProcess)
        if sys.platform != "win32":  # killpg, SIGCONT, SIGKILL: POSIX only (on Windows the Job Object ends the tree)
            _killpg(self.pid, signal.SIGTERM)
            _killpg(self.pid, signal.SIGCONT)  # a stopped (SIGSTOP) process acts on TERM only once continued
            _send(tree, signal.SIGCONT)
        gone, alive = wait_gone(tree, max(0.0, deadline - clock()), reap=True)
        report.terminated = [p.pid for p in gone]
        alive = [p for p in _merge(alive, self.descendants()) if _alive(p)]
        if not self.exited.is_set():
            report.killed.append(self.pid)
            self._signal_worker(graceful=False)
        report.killed += [p.pid for p in alive]
        if sys.platform == "win32":  # pragma: no cover - Windows only
            _send(alive, signal.SIGTERM)
            if self._job is not None:
                self._job.terminate()
        else:
            _send(alive, signal.SIGKILL)
            _killpg(self.pid, signal.SIGKILL)
        self.exited.wait(5.0)
        wait_gone(alive, 5.0, reap=True)
        if self.exited.is_set() and self.pid not in report.killed:
            report.terminated.insert(0, self.pid)
        if self._job is not None:  # pragma: no cover - Windows only
            self._job.close()
        return report

    def _signal_worker(self, *, graceful: bool) -> None:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            with contextlib.suppress(OSError):
                if graceful:
                    self.popen.send_signal(signal.CTRL_BREAK_EVENT)
                else:
                    self.popen.kill()
            return
        if graceful:
            # TERM only the worker, so it can close its browser cleanly; CONT the group, since a hung worker may be
            # stopped (SIGSTOP) and can act on TERM only once it is continued.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            _killpg(self.pid, signal.SIGCONT)
        else:
            _killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _merge(first: list[psutil.Process], second: list[psutil.Process]) -> list[psutil.Process]:
    seen = {p.pid for p in first}
    return first + [p for p in second if p.pid not in seen]


def describe_exit(returncode: int | None) -> str:
    """'exit code 3' / 'killed by SIGKILL' for logs and events."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"
