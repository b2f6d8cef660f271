"""Continuity watchdog: supervises the worker process (never imports selenium)."""

from .instance import AlreadyRunning, Config, ConfigError, ContinuityError, Home, NotRunning, load_config

__version__ = "0.1.0"

__all__ = [
    "AlreadyRunning",
    "Config",
    "ConfigError",
    "ContinuityError",
    "Home",
    "NotRunning",
    "__version__",
    "load_config",
]
