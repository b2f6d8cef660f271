"""Assembling the worker process: logging, signal handlers, the loop and its turns."""

from __future__ import annotations

from continuity.watchdog.config import Config
from continuity.watchdog.home import Home
from continuity.watchdog.logsetup import configure_worker_logging

from .loop import WorkerLoop


def run_worker(home: Home, config: Config) -> int:
    """Run the worker until it is asked to stop; returns its exit code."""
    configure_worker_logging()
    loop = WorkerLoop(home, config)
    loop.install_signal_handlers()
    return loop.run()
