"""Errors raised by Continuity; each subclasses the builtin it means."""

from __future__ import annotations


class ContinuityError(Exception):
    """Base class for every error Continuity raises on purpose."""


class ConfigError(ContinuityError, ValueError):
    """The configuration is wrong: restarting cannot help (worker exit code 78)."""


class AlreadyRunning(ContinuityError, RuntimeError):
    """Another watchdog already supervises this home."""

    def __init__(self, message: str, *, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


class NotRunning(ContinuityError, RuntimeError):
    """No watchdog is running for this home."""
