"""Logging for the processes the CLI starts (library modules only get named loggers and never configure)."""

from __future__ import annotations

import logging
import os
import sys

from .instance import LOG_STDOUT_ENV, Home

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_MAX_BYTES = 5 * 1024 * 1024  # per file; x LOG_BACKUPS files: bounded, never the 30 GB PM2 users meet
LOG_BACKUPS = 5


class RotatingFile(logging.FileHandler):
    """Size-rotated log file: path, path.1 ... path.N (the stdlib's logging.handlers costs the watchdog ~1 MB)."""

    def __init__(self, path: str, *, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS) -> None:
        super().__init__(path, encoding="utf-8")
        self.max_bytes = max_bytes
        self.backups = backups

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is not None and self.stream.tell() >= self.max_bytes:
            self._rotate()
        super().emit(record)

    def _rotate(self) -> None:
        if self.stream is not None:
            self.stream.close()
        for index in range(self.backups - 1, 0, -1):
            older = f"{self.baseFilename}.{index}"
            if os.path.exists(older):
                os.replace(older, f"{self.baseFilename}.{index + 1}")
        os.replace(self.baseFilename, f"{self.baseFilename}.1")
        self.stream = self._open()


def _rotating(path: str) -> logging.Handler:
    handler = RotatingFile(path)
    handler.setFormatter(logging.Formatter(_FORMAT))
    return handler


def configure_watchdog_logging(home: Home, *, console: bool) -> None:
    """logs/watchdog.log for the watchdog; logs/worker.log for the worker's captured output (single writer).

    `console` (the foreground): the watchdog's log on stderr too; with $CONTINUITY_LOG_STDOUT=1 on stdout instead,
    the worker's output with it."""
    home.logs_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("continuity")
    root.setLevel(logging.INFO)
    root.addHandler(_rotating(str(home.watchdog_log_file)))
    to_stdout = console and os.environ.get(LOG_STDOUT_ENV) == "1"
    if console:
        stream = logging.StreamHandler(sys.stdout if to_stdout else sys.stderr)
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(stream)
    output = logging.getLogger("continuity.worker.output")
    output.propagate = False
    handler = _rotating(str(home.worker_log_file))
    handler.setFormatter(logging.Formatter("%(message)s"))
    output.addHandler(handler)
    if to_stdout:
        echo = logging.StreamHandler(sys.stdout)
        echo.setFormatter(logging.Formatter("worker: %(message)s"))
        output.addHandler(echo)


def configure_worker_logging() -> None:
    """The worker logs to stderr; its watchdog writes that stream to logs/worker.log."""
    root = logging.getLogger("continuity")
    root.setLevel(logging.INFO)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(stream)
