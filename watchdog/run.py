"""The watchdog process itself: `python -m continuity.watchdog.run --home DIR [--if-not-running]`.

`continuity start` validates the configuration and then becomes this (exec on POSIX), so the long-running
process carries no CLI framework: only what supervision needs (RSS under 18 MB, one wakeup a second).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable

import psutil

from .instance import (
    DETACHED_ENV,
    EX_CONFIG,
    MODULES_DUMP_ENV,
    STARTUP_PIPE_ENV,
    AlreadyRunning,
    Config,
    ConfigError,
    EventLog,
    Home,
    home_lost,
    load_config,
    single_instance,
    undecodable_argument,
)
from .logsetup import configure_watchdog_logging
from .signal_relay import relay_signals
from .states import WatchdogState
from .supervisor import Supervisor


def _say(text: str) -> None:
    """One line on stderr; a closed pipe or a full disk must not turn it into a traceback."""
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr, flush=True)


def _startup_done() -> None:
    """Detached: from now on stderr is logs/watchdog.out too, and `start --detach` sees the pipe close."""
    if os.environ.pop(STARTUP_PIPE_ENV, None) == "1":
        with contextlib.suppress(OSError):
            sys.stderr.flush()
            os.dup2(sys.stdout.fileno(), sys.stderr.fileno())


def _install_stop_signals(supervisor: Supervisor) -> None:
    """SIGTERM, SIGINT, SIGHUP (SIGBREAK on Windows) ask the supervisor to stop, through a relay thread (setting
    the supervisor's wake Event from the handler itself deadlocked the watchdog: `continuity stop` waited in vain)."""
    relay_signals(
        ("SIGTERM", "SIGINT", "SIGHUP", "SIGBREAK"),
        lambda signum: supervisor.request_stop(f"received {signal.Signals(signum).name}"),
        thread_name="stop-signals",
    )


def reap_orphans(worker_pid: int | None) -> list[int]:
    """Reap this process's zombie children but the worker: the orphans it adopts as subreaper (Chromium's crashpad
    handlers and zygotes, after each browser restart). Never the worker, whose exit status its Popen waits for: not
    its pid, and no session leader (the worker is spawned in a session of its own, so one that exits before its pid
    is known is skipped too). Returns the pids reaped."""
    reaped: list[int] = []
    if sys.platform == "win32":  # no zombies there
        return reaped
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children():
            try:
                if child.pid == worker_pid or child.status() != psutil.STATUS_ZOMBIE:
                    continue
                if os.getsid(child.pid) == child.pid:
                    continue
                if os.waitpid(child.pid, os.WNOHANG)[0]:
                    reaped.append(child.pid)
            except (psutil.Error, OSError):
                continue
    return reaped


def _install_orphan_reaper(supervisor: Supervisor) -> None:
    """POSIX: reap adopted orphans as they exit (else every browser restart leaves about four zombies until the
    worker restarts). SIGCHLD goes through a relay thread, which reaps: one wakeup per exit of a child, no timer."""
    if sys.platform == "win32":
        return

    def reap(_signum: int) -> None:
        worker = supervisor.worker
        reap_orphans(worker.pid if worker is not None else None)

    relay_signals(("SIGCHLD",), reap, thread_name="reap-orphans")


def _dumping_modules(path: str, check: Callable[[], str | None]) -> Callable[[], str | None]:
    """$CONTINUITY_DEBUG_MODULES (tests only): `check` (the home check, run at each wakeup) that first rewrites
    `path` with this process's sorted sys.modules, so a test reads what the idle watchdog has loaded."""

    def dump_then_check() -> str | None:
        try:
            with open(f"{path}.tmp", "w", encoding="utf-8") as handle:
                handle.write("".join(f"{name}\n" for name in sorted(sys.modules)))
            os.replace(f"{path}.tmp", path)
        except OSError:
            pass
        return check()

    return dump_then_check


def _start_operator_surface(home: Home, config: Config, supervisor: Supervisor) -> list[Callable[[], None]]:
    """The HTTP API and the alert threads (each optional); returns their stop functions."""
    stops: list[Callable[[], None]] = []
    if config.api.enabled:  # imported only when used: every module costs the watchdog's RSS
        from .api_server import start_api

        try:
            api = start_api(home, config, supervisor, events=supervisor.events)
        except OSError as exc:  # e.g. run/api_token cannot be written (a full disk): the API is off, nothing else
            logging.getLogger("continuity.api").error(
                "API not started: %s. The watchdog keeps supervising without the API.", exc
            )
            supervisor.events.emit("api_unavailable", host=config.api.host, port=config.api.port, error=str(exc))
            api = None
        if api is not None:
            stops.append(api.stop)
    if config.alerts.webhook_url or config.alerts.telegram_bot_token or config.alerts.telegram_chat_id:
        from .alerts import start_alerts

        alerts = start_alerts(home.events_file, home.heartbeat_file, config.alerts, events=supervisor.events)
        if alerts is not None:
            stops.append(alerts.stop)
    return stops


def run(home: Home, *, if_not_running: bool = False) -> int:
    """Supervise `home` until stopped; prints why when it gives up. Returns the process exit code."""
    try:
        config = load_config(home.config_file)
    except ConfigError as exc:
        _say(f"Error: {exc}")
        return 1
    supervisor: Supervisor | None = None
    try:
        home.ensure()
        with single_instance(home) as lock:
            configure_watchdog_logging(home, console=os.environ.get(DETACHED_ENV) != "1")
            supervisor = Supervisor(home, config, events=EventLog(home.events_file, source="watchdog"))
            supervisor.home_check = lambda: home_lost(home, lock)
            if dump_to := os.environ.get(MODULES_DUMP_ENV):
                supervisor.home_check = _dumping_modules(dump_to, supervisor.home_check)
            _install_stop_signals(supervisor)
            _install_orphan_reaper(supervisor)
            stops = _start_operator_surface(home, config, supervisor)
            _startup_done()
            try:
                code = supervisor.run()
            finally:
                for stop in stops:
                    stop()
    except AlreadyRunning as exc:
        if if_not_running:
            print(f"{exc}; nothing to do")
            return 0
        _say(f"Error: {exc}. Stop it with `continuity --home {home.root} stop`.")
        return 1
    except OSError as exc:  # the home cannot hold us (full disk, a directory where a file goes, ...): say so
        if supervisor is not None and supervisor.worker is not None:
            supervisor.worker.stop_tree(timeout_s=config.watchdog.stop_timeout)
        _say(f"Error: cannot run the watchdog: {exc}")
        return 1
    if supervisor.home_lost is not None:
        _say(f"continuity: stopped: {supervisor.home_lost}; the worker's tree was stopped")
    if supervisor.state is WatchdogState.FATAL:
        _say(f"continuity: gave up: {supervisor.reason}")
        if code == EX_CONFIG:
            _say(f"Check {home.config_file} and {home.worker_log_file}, then start again.")
    return code


def runner_argv(home: Home, *, if_not_running: bool) -> list[str]:
    """The command line of the watchdog process for `home`."""
    argv = [sys.executable, "-m", "continuity.watchdog.run", "--home", str(home.root)]
    return argv + (["--if-not-running"] if if_not_running else [])


def main(argv: list[str] | None = None) -> int:
    """Entry point; arguments are internal (`continuity start` builds them)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if complaint := undecodable_argument(args):
        _say(f"Error: {complaint}")
        return 2
    if_not_running = "--if-not-running" in args
    if "--home" not in args or args.index("--home") + 1 >= len(args):
        print("usage: python -m continuity.watchdog.run --home DIR [--if-not-running]", file=sys.stderr)
        return 2
    return run(Home.resolve(args[args.index("--home") + 1]), if_not_running=if_not_running)


if __name__ == "__main__":
    sys.exit(main())
