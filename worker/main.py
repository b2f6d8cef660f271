"""Assembling the worker process: logging, signal handlers, the loop and its turns."""

from __future__ import annotations

import sys

from continuity.watchdog._errors import ConfigError
from continuity.watchdog.config import Config, load_config
from continuity.watchdog.home import Home
from continuity.watchdog.logsetup import configure_worker_logging

from .loop import WorkerLoop

EX_CONFIG = 78  # the configuration is wrong: the watchdog will not restart this worker


def run_worker(home: Home, config: Config) -> int:
    """Run the worker until it is asked to stop; returns its exit code."""
    configure_worker_logging()
    loop = WorkerLoop(home, config)
    loop.install_signal_handlers()
    return loop.run()


def main(home: Home | None = None) -> int:
    """Load the config of `home` (default: $CONTINUITY_HOME or the current directory) and run; 78 on bad config."""
    home = home or Home.resolve(None)
    try:
        config = load_config(home.config_file)
        return run_worker(home, config)
    except ConfigError as exc:
        print(f"continuity worker: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
