"""The watchdog process itself: `python -m continuity.watchdog.run --home DIR [--if-not-running]`.

`continuity start` validates the configuration and then becomes this (exec on POSIX), so the long-running
process carries no CLI framework: only what supervision needs (RSS under 18 MB, one wakeup a second).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from ._errors import AlreadyRunning, ConfigError
from .config import load_config
from .events import EventLog
from .home import Home
from .instance import single_instance
from .logsetup import configure_watchdog_logging
from .states import WatchdogState
from .supervisor import EX_CONFIG, Supervisor

DETACHED_ENV = "CONTINUITY_DETACHED"


def _install_stop_signals(supervisor: Supervisor) -> None:
    def handler(signum: int, _frame: Any) -> None:
        supervisor.request_stop(f"received {signal.Signals(signum).name}")

    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


def run(home: Home, *, if_not_running: bool = False) -> int:
    """Supervise `home` until stopped; prints why when it gives up. Returns the process exit code."""
    try:
        config = load_config(home.config_file)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    home.ensure()
    try:
        with single_instance(home):
            configure_watchdog_logging(home, console=os.environ.get(DETACHED_ENV) != "1")
            supervisor = Supervisor(home, config, events=EventLog(home.events_file, source="watchdog"))
            _install_stop_signals(supervisor)
            code = supervisor.run()
    except AlreadyRunning as exc:
        if if_not_running:
            print(f"{exc}; nothing to do")
            return 0
        print(f"Error: {exc}. Stop it with `continuity --home {home.root} stop`.", file=sys.stderr)
        return 1
    if supervisor.state is WatchdogState.FATAL:
        print(f"continuity: gave up: {supervisor.reason}", file=sys.stderr)
        if code == EX_CONFIG:
            print(
                f"Check {home.config_file} and {home.logs_dir / 'worker.log'}, then start again.",
                file=sys.stderr,
            )
    return code


def runner_argv(home: Home, *, if_not_running: bool) -> list[str]:
    """The command line of the watchdog process for `home`."""
    argv = [sys.executable, "-m", "continuity.watchdog.run", "--home", str(home.root)]
    return argv + (["--if-not-running"] if if_not_running else [])


def main(argv: list[str] | None = None) -> int:
    """Entry point; arguments are internal (`continuity start` builds them)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if_not_running = "--if-not-running" in args
    if "--home" not in args or args.index("--home") + 1 >= len(args):
        print("usage: python -m continuity.watchdog.run --home DIR [--if-not-running]", file=sys.stderr)
        return 2
    return run(Home.resolve(args[args.index("--home") + 1]), if_not_running=if_not_running)


if __name__ == "__main__":
    sys.exit(main())
