"""The watchdog's supervision loop: spawn the worker, notice its exit or hang, kill its tree, restart it.

Over 300 lines on purpose: every state change goes through `Supervisor.transition` (supervisor's process.py
model), so the events that cause them stay in this one class; the policy, the states, the process tree and the
heartbeat monitor are modules of their own."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from . import __version__
from .heartbeat_monitor import HeartbeatMonitor
from .instance import EX_CONFIG, HEARTBEAT_ENV, HOME_ENV, WATCHDOG_PID_ENV, Config, EventLog, Home, write_json_atomic
from .policy import RestartPolicy
from .proctree import WorkerProcess, become_subreaper, describe_exit
from .profile_procs import sweep_profile
from .states import FINAL_STATES, WatchdogState, transition_label

logger = logging.getLogger("continuity.watchdog")
output_logger = logging.getLogger("continuity.worker.output")

MAX_WAIT_S = 60.0  # with run/ watched, the loop still looks once a minute whatever the kernel says
DEADLINE_SLACK_S = 0.002  # wake just after a deadline, not just before it


def builtin_worker_command() -> list[str]:
    """The built-in worker: this interpreter running `continuity.worker` (no console script needed)."""
    return [sys.executable, "-m", "continuity.worker"]


class Supervisor:
    """Supervises one worker for one home. `run()` returns the watchdog's exit code."""

    def __init__(
        self,
        home: Home,
        config: Config,
        *,
        events: EventLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.home = home
        self.cfg = config.watchdog
        self.argv = list(self.cfg.worker_command) or builtin_worker_command()
        self.events = events or EventLog(home.events_file, source="watchdog")
        self._clock = clock
        self._wall = wall_clock
        self.policy = RestartPolicy.from_config(self.cfg)
        self.monitor = HeartbeatMonitor(
            home.heartbeat_file,
            timeout_s=self.cfg.heartbeat_timeout,
            grace_s=self.cfg.startup_grace,
            clock=clock,
        )
        self.state = WatchdogState.STOPPED
        self.worker: WorkerProcess | None = None
        self.restarts_total = 0
        self.last_exit: dict[str, Any] | None = None
        self.next_start_at: float | None = None
        self.exit_code = 0
        self.reason = ""
        self.started_at = wall_clock()
        self._create_time = psutil.Process().create_time()
        self._wake = threading.Event()
        self._stop_reason: str | None = None
        self._restart_request: tuple[str, int] | None = None  # (reason, the pid of the worker it was made for)
        self._restart_lock = threading.Lock()
        self.on_state_change: list[Callable[[Supervisor], None]] = []
        self.home_check: Callable[[], str | None] | None = None  # why the home is no longer ours (set by run.py)
        self.home_lost: str | None = None

    # -- control -------------------------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to stop the worker's tree and exit 0 (from any thread; never from a signal handler: see
        run._install_stop_signals)."""
        self._stop_reason = reason
        self._wake.set()

    def request_restart(self, reason: str = "restart requested", *, pid: int) -> None:
        """Ask the loop to kill the tree of worker `pid` and start a new worker now (API "restart-worker"). If that
        worker is gone when the loop gets to it, the request is dropped (event `restart_request_dropped`): the
        worker started after its death is not killed for it."""
        with self._restart_lock:
            self._restart_request = (reason, pid)
        self._wake.set()

    def transition(self, new: WatchdogState, detail: str = "") -> None:
        """The one place the state changes; every change is labelled, logged, recorded and written to run/."""
        label = transition_label(self.state, new)
        self.reason = f"{label}: {detail}" if detail else label
        logger.info("state %s -> %s (%s)", self.state.value, new.value, self.reason)
        self.events.emit("state", old=self.state.value, new=new.value, reason=self.reason)
        self.state = new
        self.write_state()
        for callback in self.on_state_change:
            callback(self)

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Supervise until stopped, or until giving up; returns 0 (stopped), 1 (budget, "exit") or 78 (config)."""
        self.home.ensure()
        become_subreaper()
        if self.cfg.watch_heartbeat:
            self.monitor.watch(on_other=self._on_run_dir_change)
        self.events.emit("watchdog_started", pid=os.getpid(), command=self.argv, version=__version__)
        self.transition(WatchdogState.STARTING)
        try:
            self._spawn()
            while self.state not in FINAL_STATES:
                self._wake.wait(self._seconds_until_next_check())
                self._wake.clear()
                self.tick()
        finally:
            self.monitor.close()
        self.events.emit("watchdog_exited", code=self.exit_code, state=self.state.value, reason=self.reason)
        return self.exit_code

    def _on_run_dir_change(self, names: set[str] | None) -> None:
        """From the run/ watch thread: wake the loop when a stop is requested (run/stop.request)."""
        if names is None or self.home.stop_request_file.name in names:
            self._wake.set()

    def _seconds_until_next_check(self) -> float:
        """Polling: check_interval. Watching run/: sleep until the heartbeat could be stale (or a restart is due)."""
        if not self.monitor.watching:
            wait = self.cfg.check_interval
        elif self.state is WatchdogState.RUNNING:
            wait = min(MAX_WAIT_S, max(0.0, -self.monitor.overdue_s()) + DEADLINE_SLACK_S)
        else:
            wait = MAX_WAIT_S
        if self.next_start_at is not None and self.state in (
            WatchdogState.BACKOFF,
            WatchdogState.BUDGET_SPENT,
        ):
            wait = min(wait, max(0.0, self.next_start_at - self._clock()))
        return wait

    def tick(self) -> None:
        """One pass: home still ours, stop request, worker exit, heartbeat staleness, due restart."""
        if self.home_lost is None and self.home_check is not None and (lost := self.home_check()) is not None:
            self._on_home_lost(lost)
            return
        if self._stop_reason is None and self.home.stop_request_file.exists():
            self._stop_reason = "stop requested (run/stop.request)"
        if self._stop_reason is not None:
            self._stop()
            return
        with self._restart_lock:
            restart, self._restart_request = self._restart_request, None
        if restart is not None and self._restart_applies(*restart) and self.worker is not None:
            self._on_restart_request(self.worker, restart[0])
        elif self.state is WatchdogState.RUNNING and self.worker is not None:
            if self.worker.exited.is_set():
                self._on_worker_exit(self.worker)
            else:
                self.monitor.check()
                if self.monitor.is_stale():
                    self._on_hang(self.worker)
        elif (
            self.state in (WatchdogState.BACKOFF, WatchdogState.BUDGET_SPENT)
            and self.next_start_at is not None
            and self._clock() >= self.next_start_at
        ):
            self._restart()

    # -- steps ---------------------------------------------------------------------------------------------
    def _spawn(self) -> None:
        env = dict(os.environ)
        env.update(
            {
                HOME_ENV: str(self.home.root),
                HEARTBEAT_ENV: str(self.home.heartbeat_file),
                WATCHDOG_PID_ENV: str(os.getpid()),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.home.heartbeat_file.unlink(missing_ok=True)  # the old worker's heartbeat says nothing of the new one
        self.monitor.reset()
        try:
            worker = WorkerProcess(
                self.argv,
                env=env,
                cwd=self.home.root,
                on_output=lambda line, pid: output_logger.info("%s", line, extra={"worker_pid": pid}),
                on_exit=lambda _w: self._wake.set(),
                clock=self._clock,
            )
        except OSError as exc:
            self.exit_code = EX_CONFIG
            self.events.emit("spawn_failed", command=self.argv, error=str(exc))
            self.transition(WatchdogState.FATAL, f"cannot start worker command {self.argv!r}: {exc}")
            return
        self.worker = worker
        self.events.emit("worker_spawned", pid=worker.pid, command=self.argv, restarts_total=self.restarts_total)
        self.monitor.start_grace()
        self.transition(WatchdogState.RUNNING, f"pid {worker.pid}")

    def _on_worker_exit(self, worker: WorkerProcess) -> None:
        code = worker.returncode
        uptime = self._clock() - worker.started_at
        description = describe_exit(code)
        self.events.emit("worker_exited", pid=worker.pid, code=code, description=description, uptime_s=round(uptime, 3))
        logger.warning("worker pid %d exited (%s) after %.1f s", worker.pid, description, uptime)
        self._kill_tree(worker, why="worker exited")
        self.last_exit = {"pid": worker.pid, "code": code, "description": description, "at": self._wall()}
        if code == EX_CONFIG:
            self.exit_code = EX_CONFIG
            tail = "\n".join(worker.last_words(timeout_s=2.0))
            self.events.emit("config_error", pid=worker.pid, output=tail)
            self.transition(
                WatchdogState.FATAL,
                "the worker says its configuration is wrong; fix it and start again (not restarting)"
                + (f"\n{tail}" if tail else ""),
            )
            return
        self._schedule_restart(uptime, f"worker {description}")

    def _on_hang(self, worker: WorkerProcess) -> None:
        age = self.monitor.age_s()
        what = "no first heartbeat" if age is None else f"heartbeat unchanged for {age:.1f} s"
        self.events.emit("heartbeat_stale", pid=worker.pid, age_s=None if age is None else round(age, 3))
        logger.warning("worker pid %d hangs (%s); killing its tree", worker.pid, what)
        self._kill_tree(worker, why="heartbeat stale")
        uptime = self._clock() - worker.started_at
        self.last_exit = {
            "pid": worker.pid,
            "code": worker.returncode,
            "description": f"hung ({what}); {describe_exit(worker.returncode)}",
            "at": self._wall(),
        }
        self._schedule_restart(uptime, f"worker hung ({what})")

    def _restart_applies(self, reason: str, pid: int) -> bool:
        """Is worker `pid` the one running now? Else the request is dropped, with an event."""
        worker = self.worker
        running = self.state is WatchdogState.RUNNING and worker is not None and not worker.exited.is_set()
        if running and worker is not None and worker.pid == pid:
            return True
        current = worker.pid if worker is not None and not worker.exited.is_set() else None
        logger.info("%s for worker pid %d dropped: that worker is gone (now: %s)", reason, pid, current)
        self.events.emit("restart_request_dropped", pid=pid, current_pid=current, reason=reason)
        return False

    def _on_restart_request(self, worker: WorkerProcess, reason: str) -> None:
        self.events.emit("restart_requested", pid=worker.pid, reason=reason)
        self._kill_tree(worker, why=reason)
        self.last_exit = {"pid": worker.pid, "code": worker.returncode, "description": reason, "at": self._wall()}
        self.next_start_at = self._clock()
        self.transition(WatchdogState.BACKOFF, f"{reason}; restarting now")

    def _kill_tree(self, worker: WorkerProcess, *, why: str) -> None:
        report = worker.stop_tree(timeout_s=self.cfg.stop_timeout, clock=self._clock)
        self.events.emit("tree_killed", pid=worker.pid, why=why, terminated=report.terminated, killed=report.killed)
        swept = sweep_profile(self.home) if self.home.profile_dir.exists() else []
        if swept:
            self.events.emit("profile_swept", pids=swept)

    def _schedule_restart(self, uptime_s: float, what: str) -> None:
        delay = self.policy.delay_after_exit(uptime_s=uptime_s)
        due = self._clock() + delay
        self.next_start_at = due
        self.events.emit("restart_scheduled", delay_s=round(delay, 3), early_failures=self.policy.early_failures)
        self.transition(WatchdogState.BACKOFF, f"{what}; restart in {delay:g} s")
        if not self.policy.budget.allows(due):
            self._budget_spent(due)

    def _budget_spent(self, now: float) -> None:
        budget = self.policy.budget
        resumes = budget.frees_at(now)
        detail = f"{budget.limit} restarts within {budget.window_s:g} s"
        self.events.emit(
            "budget_spent",
            limit=budget.limit,
            window_s=budget.window_s,
            action=self.cfg.on_restart_limit,
            resumes_in_s=round(resumes - self._clock(), 3),
        )
        if self.cfg.on_restart_limit == "exit":
            self.exit_code = 1
            self.transition(WatchdogState.FATAL, f"{detail}; on_restart_limit = exit")
            return
        self.next_start_at = resumes
        self.transition(WatchdogState.BUDGET_SPENT, f"{detail}; resuming in {resumes - self._clock():.0f} s")

    def _restart(self) -> None:
        now = self._clock()
        if not self.policy.budget.allows(now):
            if self.state is not WatchdogState.BUDGET_SPENT:
                self._budget_spent(now)
            else:
                self.next_start_at = self.policy.budget.frees_at(now)
            return
        self.policy.budget.record(now)
        self.restarts_total += 1
        self.next_start_at = None
        self.transition(WatchdogState.STARTING, f"restart #{self.restarts_total}")
        self._spawn()

    def _stop(self) -> None:
        reason = self._stop_reason or "stop requested"
        self.home.stop_request_file.unlink(missing_ok=True)
        self.transition(WatchdogState.STOPPING, reason)
        if self.worker is not None:
            self._kill_tree(self.worker, why=reason)
        self.exit_code = 0
        self.transition(WatchdogState.STOPPED)

    def _on_home_lost(self, why: str) -> None:
        """The home was deleted or replaced: stop the worker's tree (no profile sweep: a browser on that path may be
        another watchdog's now) and exit 1, writing nothing more there (a deleted home is never made again)."""
        logger.error("%s; stopping the worker's tree and exiting", why)
        if self.home.root.is_dir():
            self.events.emit("home_lost", pid=os.getpid(), reason=why)
        self.home_lost = why
        self.events = EventLog(os.devnull, source="watchdog")
        self.transition(WatchdogState.STOPPING, why)
        if self.worker is not None:
            self.worker.stop_tree(timeout_s=self.cfg.stop_timeout, clock=self._clock)
        self.exit_code = 1
        self.transition(WatchdogState.STOPPED)

    # -- run/watchdog.json ---------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The watchdog's state as written to run/watchdog.json (wall-clock times, seconds)."""
        now, wall = self._clock(), self._wall()
        worker = self.worker
        worker_alive = worker is not None and not worker.exited.is_set()
        return {
            "pid": os.getpid(),
            "pid_create_time": self._create_time,
            "version": __version__,
            "home": str(self.home.root),
            "state": self.state.value,
            "reason": self.reason,
            "started_at": self.started_at,
            "updated_at": wall,
            "worker_pid": worker.pid if worker_alive and worker else None,
            "worker_started_at": wall - (now - worker.started_at) if worker_alive and worker else None,
            "command": self.argv,
            "restarts_total": self.restarts_total,
            "restarts_in_window": self.policy.budget.used(now),
            "restart_limit": self.cfg.restart_limit,
            "restart_window_s": self.cfg.restart_window,
            "heartbeat_timeout_s": self.cfg.heartbeat_timeout,
            "last_exit": self.last_exit,
            "next_restart_at": None if self.next_start_at is None else wall + (self.next_start_at - now),
            "exit_code": self.exit_code if self.state in FINAL_STATES else None,
        }

    def write_state(self) -> None:
        """Replace run/watchdog.json (atomic, not fsynced: it is rewritten on every change)."""
        if self.home_lost is not None:
            return
        try:
            write_json_atomic(self.home.watchdog_state_file, self.snapshot(), durable=False)
        except OSError as exc:
            logger.warning("could not write %s: %s", self.home.watchdog_state_file, exc)
