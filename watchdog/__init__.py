"""Continuity watchdog: supervises the worker process (never imports selenium)."""

from ._errors import AlreadyRunning, ConfigError, ContinuityError, NotRunning
from .config import Config, load_config
from .home import Home

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
