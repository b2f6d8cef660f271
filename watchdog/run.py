"""The watchdog process itself: `python -m continuity.watchdog.run --home DIR [--if-not-running]`.

`continuity start` validates the configuration and then becomes this (exec on POSIX), so the long-running
process carries no CLI framework: only what supervision needs (RSS under 18 MB, one wakeup a second).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from ._errors import AlreadyRunning, ConfigError
from .config import Config, load_config
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


def _start_operator_surface(home: Home, config: Config, supervisor: Supervisor) -> list[Callable[[], None]]:
    """The HTTP API and the alert threads (each optional); returns their stop functions."""
    stops: list[Callable[[], None]] = []
    if config.api.enabled:  # imported only when used: every module costs the watchdog's RSS
        from .api_server import start_api

        api = start_api(home, config, supervisor, events=supervisor.events)
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
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    home.ensure()
    try:
        with single_instance(home):
            configure_watchdog_logging(home, console=os.environ.get(DETACHED_ENV) != "1")
            supervisor = Supervisor(home, config, events=EventLog(home.events_file, source="watchdog"))
            _install_stop_signals(supervisor)
            stops = _start_operator_surface(home, config, supervisor)
            try:
                code = supervisor.run()
            finally:
                for stop in stops:
                    stop()
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
