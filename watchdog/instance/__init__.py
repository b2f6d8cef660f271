"""The instance contract: what the watchdog and the worker (and the CLI) share about one home.

The home's layout (Home: every path), the configuration and its rules, the heartbeat, the events, the control
actions (`control`: the request/answer files), exit codes and environment variable names, atomic files, the OS
lock, and the one-watchdog-per-home lock. The worker imports the watchdog side only through this package
(tests/test_structure.py checks it).

Small private modules, re-exported here (filelock's layout). A name is imported on first use (`__getattr__`), so
importing one name costs only its module: the watchdog loads only what it uses (its idle set stays lean,
tests/test_structure.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import _control as control
    from ._atomicfile import (
        fsync_dir,
        read_json_or_none,
        remove_orphan_temp_files,
        write_bytes_atomic,
        write_json_atomic,
    )
    from ._checks import (
        alert_problems,
        template_fields,
    )
    from ._config import (
        GROUP_PREFIX,
        MAX_GROUP_TITLE,
        PHONE_HELP,
        RECIPIENT_HELP,
        AlertsConfig,
        ApiConfig,
        Config,
        InboxConfig,
        JobConfig,
        NotifyConfig,
        OutboxConfig,
        SessionConfig,
        WatchdogConfig,
        WhatsAppConfig,
        WorkerConfig,
        load_config,
        parse_config,
        phone_digits,
        recipient_id,
    )
    from ._config_api import (
        API_ENV,
        LOOPBACK_NAMES,
        HostGuard,
        allowed_host,
        host_problem,
        is_loopback,
        token_problem,
        with_api_env,
    )
    from ._contract import (
        API_ALLOWED_HOSTS_ENV,
        API_HOST_ENV,
        API_PORT_ENV,
        API_TOKEN_ENV,
        DETACHED_ENV,
        EX_CONFIG,
        HEADLESS_ENV,
        HEARTBEAT_ENV,
        HOME_ENV,
        LOG_STDOUT_ENV,
        MODULES_DUMP_ENV,
        NO_SANDBOX_ENV,
        SESSION_KEY_ENV,
        STARTUP_PIPE_ENV,
        WATCHDOG_PID_ENV,
    )
    from ._control import (
        DESTRUCTIVE_ACTIONS,
        OUTBOX_ACTIONS,
        WORKER_ACTIONS,
        ActionQueued,
        ActionTimeout,
        ActionUnanswered,
        ActionWithdrawn,
    )
    from ._errors import (
        AlreadyRunning,
        ConfigError,
        ContinuityError,
        NotRunning,
    )
    from ._events import (
        KEEP_ROTATED,
        MAX_FILE_BYTES,
        EventLog,
        read_events,
    )
    from ._heartbeat import (
        Heartbeat,
        InboxSection,
        OutboxSection,
        SendingSection,
        TokensSection,
        WhatsAppSection,
        clean_heartbeat,
        read_heartbeat,
        write_heartbeat,
    )
    from ._home import (
        Home,
        HomeLayoutError,
        undecodable_argument,
    )
    from ._oslock import (
        ExclusiveFileLock,
        LockHeld,
        is_locked,
    )
    from ._single import (
        home_lost,
        running_watchdog,
        single_instance,
    )

# name -> the private module that defines it
_WHERE: dict[str, str] = {
    "fsync_dir": "_atomicfile",
    "read_json_or_none": "_atomicfile",
    "remove_orphan_temp_files": "_atomicfile",
    "write_bytes_atomic": "_atomicfile",
    "write_json_atomic": "_atomicfile",
    "alert_problems": "_checks",
    "template_fields": "_checks",
    "GROUP_PREFIX": "_config",
    "MAX_GROUP_TITLE": "_config",
    "PHONE_HELP": "_config",
    "RECIPIENT_HELP": "_config",
    "AlertsConfig": "_config",
    "ApiConfig": "_config",
    "Config": "_config",
    "InboxConfig": "_config",
    "JobConfig": "_config",
    "NotifyConfig": "_config",
    "OutboxConfig": "_config",
    "SessionConfig": "_config",
    "WatchdogConfig": "_config",
    "WhatsAppConfig": "_config",
    "WorkerConfig": "_config",
    "load_config": "_config",
    "parse_config": "_config",
    "phone_digits": "_config",
    "recipient_id": "_config",
    "API_ENV": "_config_api",
    "LOOPBACK_NAMES": "_config_api",
    "HostGuard": "_config_api",
    "allowed_host": "_config_api",
    "host_problem": "_config_api",
    "is_loopback": "_config_api",
    "token_problem": "_config_api",
    "with_api_env": "_config_api",
    "API_ALLOWED_HOSTS_ENV": "_contract",
    "API_HOST_ENV": "_contract",
    "API_PORT_ENV": "_contract",
    "API_TOKEN_ENV": "_contract",
    "DETACHED_ENV": "_contract",
    "EX_CONFIG": "_contract",
    "HEADLESS_ENV": "_contract",
    "HEARTBEAT_ENV": "_contract",
    "HOME_ENV": "_contract",
    "LOG_STDOUT_ENV": "_contract",
    "MODULES_DUMP_ENV": "_contract",
    "NO_SANDBOX_ENV": "_contract",
    "SESSION_KEY_ENV": "_contract",
    "STARTUP_PIPE_ENV": "_contract",
    "WATCHDOG_PID_ENV": "_contract",
    "DESTRUCTIVE_ACTIONS": "_control",
    "OUTBOX_ACTIONS": "_control",
    "WORKER_ACTIONS": "_control",
    "ActionQueued": "_control",
    "ActionTimeout": "_control",
    "ActionUnanswered": "_control",
    "ActionWithdrawn": "_control",
    "AlreadyRunning": "_errors",
    "ConfigError": "_errors",
    "ContinuityError": "_errors",
    "NotRunning": "_errors",
    "KEEP_ROTATED": "_events",
    "MAX_FILE_BYTES": "_events",
    "EventLog": "_events",
    "read_events": "_events",
    "Heartbeat": "_heartbeat",
    "InboxSection": "_heartbeat",
    "OutboxSection": "_heartbeat",
    "SendingSection": "_heartbeat",
    "TokensSection": "_heartbeat",
    "WhatsAppSection": "_heartbeat",
    "clean_heartbeat": "_heartbeat",
    "read_heartbeat": "_heartbeat",
    "write_heartbeat": "_heartbeat",
    "Home": "_home",
    "HomeLayoutError": "_home",
    "undecodable_argument": "_home",
    "ExclusiveFileLock": "_oslock",
    "LockHeld": "_oslock",
    "is_locked": "_oslock",
    "home_lost": "_single",
    "running_watchdog": "_single",
    "single_instance": "_single",
}

if not TYPE_CHECKING:  # hidden from mypy, which would take any name as found (Any) from a module __getattr__

    def __getattr__(name: str) -> Any:
        """Import the module holding `name` on first use; `control` is the control-action module itself."""
        if name == "control":
            value: Any = importlib.import_module(f"{__name__}._control")
        elif name in _WHERE:
            value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "API_ALLOWED_HOSTS_ENV",
    "API_ENV",
    "API_HOST_ENV",
    "API_PORT_ENV",
    "API_TOKEN_ENV",
    "DESTRUCTIVE_ACTIONS",
    "DETACHED_ENV",
    "EX_CONFIG",
    "GROUP_PREFIX",
    "HEADLESS_ENV",
    "HEARTBEAT_ENV",
    "HOME_ENV",
    "KEEP_ROTATED",
    "LOG_STDOUT_ENV",
    "LOOPBACK_NAMES",
    "MAX_FILE_BYTES",
    "MAX_GROUP_TITLE",
    "MODULES_DUMP_ENV",
    "NO_SANDBOX_ENV",
    "OUTBOX_ACTIONS",
    "PHONE_HELP",
    "RECIPIENT_HELP",
    "SESSION_KEY_ENV",
    "STARTUP_PIPE_ENV",
    "WATCHDOG_PID_ENV",
    "WORKER_ACTIONS",
    "ActionQueued",
    "ActionTimeout",
    "ActionUnanswered",
    "ActionWithdrawn",
    "AlertsConfig",
    "AlreadyRunning",
    "ApiConfig",
    "Config",
    "ConfigError",
    "ContinuityError",
    "EventLog",
    "ExclusiveFileLock",
    "Heartbeat",
    "Home",
    "HomeLayoutError",
    "HostGuard",
    "InboxConfig",
    "InboxSection",
    "JobConfig",
    "LockHeld",
    "NotRunning",
    "NotifyConfig",
    "OutboxConfig",
    "OutboxSection",
    "SendingSection",
    "SessionConfig",
    "TokensSection",
    "WatchdogConfig",
    "WhatsAppConfig",
    "WhatsAppSection",
    "WorkerConfig",
    "alert_problems",
    "allowed_host",
    "clean_heartbeat",
    "control",
    "fsync_dir",
    "home_lost",
    "host_problem",
    "is_locked",
    "is_loopback",
    "load_config",
    "parse_config",
    "phone_digits",
    "read_events",
    "read_heartbeat",
    "read_json_or_none",
    "recipient_id",
    "remove_orphan_temp_files",
    "running_watchdog",
    "single_instance",
    "template_fields",
    "token_problem",
    "undecodable_argument",
    "with_api_env",
    "write_bytes_atomic",
    "write_heartbeat",
    "write_json_atomic",
]
