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

if TYPE_CHECKING:  # `name as name`: re-exported for mypy (which cannot see through __getattr__)
    from . import _control as control
    from ._atomicfile import (
        fsync_dir as fsync_dir,
        read_json_or_none as read_json_or_none,
        remove_orphan_temp_files as remove_orphan_temp_files,
        write_bytes_atomic as write_bytes_atomic,
        write_json_atomic as write_json_atomic,
    )
    from ._checks import alert_problems as alert_problems, template_fields as template_fields
    from ._config import (
        AlertsConfig as AlertsConfig,
        ApiConfig as ApiConfig,
        Config as Config,
        InboxConfig as InboxConfig,
        JobConfig as JobConfig,
        NotifyConfig as NotifyConfig,
        OutboxConfig as OutboxConfig,
        SessionConfig as SessionConfig,
        WatchdogConfig as WatchdogConfig,
        WhatsAppConfig as WhatsAppConfig,
        WorkerConfig as WorkerConfig,
        load_config as load_config,
        parse_config as parse_config,
        with_api_env as with_api_env,
    )
    from ._config_api import (
        API_ENV as API_ENV,
        LOOPBACK_NAMES as LOOPBACK_NAMES,
        HostGuard as HostGuard,
        allowed_host as allowed_host,
        host_problem as host_problem,
        is_loopback as is_loopback,
        token_problem as token_problem,
    )
    from ._contract import (
        API_ALLOWED_HOSTS_ENV as API_ALLOWED_HOSTS_ENV,
        API_HOST_ENV as API_HOST_ENV,
        API_PORT_ENV as API_PORT_ENV,
        API_TOKEN_ENV as API_TOKEN_ENV,
        DETACHED_ENV as DETACHED_ENV,
        EX_CONFIG as EX_CONFIG,
        HEADLESS_ENV as HEADLESS_ENV,
        HEARTBEAT_ENV as HEARTBEAT_ENV,
        HOME_ENV as HOME_ENV,
        LOG_STDOUT_ENV as LOG_STDOUT_ENV,
        MODULES_DUMP_ENV as MODULES_DUMP_ENV,
        NO_SANDBOX_ENV as NO_SANDBOX_ENV,
        SESSION_KEY_ENV as SESSION_KEY_ENV,
        STARTUP_PIPE_ENV as STARTUP_PIPE_ENV,
        WATCHDOG_PID_ENV as WATCHDOG_PID_ENV,
    )
    from ._control import (
        DESTRUCTIVE_ACTIONS as DESTRUCTIVE_ACTIONS,
        OUTBOX_ACTIONS as OUTBOX_ACTIONS,
        WORKER_ACTIONS as WORKER_ACTIONS,
        ActionQueued as ActionQueued,
        ActionTimeout as ActionTimeout,
        ActionUnanswered as ActionUnanswered,
        ActionWithdrawn as ActionWithdrawn,
    )
    from ._dirsize import directory_size as directory_size
    from ._errors import (
        AlreadyRunning as AlreadyRunning,
        ConfigError as ConfigError,
        ContinuityError as ContinuityError,
        NotRunning as NotRunning,
    )
    from ._events import (
        KEEP_ROTATED as KEEP_ROTATED,
        MAX_FILE_BYTES as MAX_FILE_BYTES,
        EventLog as EventLog,
        JsonlFollower as JsonlFollower,
        parse_json_line as parse_json_line,
        parse_jsonl as parse_jsonl,
        read_events as read_events,
    )
    from ._heartbeat import (
        Heartbeat as Heartbeat,
        InboxSection as InboxSection,
        OutboxSection as OutboxSection,
        SendingSection as SendingSection,
        TokensSection as TokensSection,
        WhatsAppSection as WhatsAppSection,
        clean_heartbeat as clean_heartbeat,
        read_heartbeat as read_heartbeat,
        write_heartbeat as write_heartbeat,
    )
    from ._home import Home as Home, HomeLayoutError as HomeLayoutError, undecodable_argument as undecodable_argument
    from ._oslock import ExclusiveFileLock as ExclusiveFileLock, LockHeld as LockHeld, is_locked as is_locked
    from ._process import pid_alive as pid_alive
    from ._rules import (
        GROUP_PREFIX as GROUP_PREFIX,
        MAX_GROUP_TITLE as MAX_GROUP_TITLE,
        PHONE_HELP as PHONE_HELP,
        RECIPIENT_HELP as RECIPIENT_HELP,
        phone_digits as phone_digits,
        recipient_id as recipient_id,
    )
    from ._single import (
        home_lost as home_lost,
        running_watchdog as running_watchdog,
        single_instance as single_instance,
    )
    from ._timing import SlidingWindow as SlidingWindow, backoff_delay as backoff_delay

# private module -> the names it defines that the contract exports
_EXPORTS: dict[str, tuple[str, ...]] = {
    "_atomicfile": (
        "fsync_dir",
        "read_json_or_none",
        "remove_orphan_temp_files",
        "write_bytes_atomic",
        "write_json_atomic",
    ),
    "_checks": (
        "alert_problems",
        "template_fields",
    ),
    "_config": (
        "AlertsConfig",
        "ApiConfig",
        "Config",
        "InboxConfig",
        "JobConfig",
        "NotifyConfig",
        "OutboxConfig",
        "SessionConfig",
        "WatchdogConfig",
        "WhatsAppConfig",
        "WorkerConfig",
        "load_config",
        "parse_config",
        "with_api_env",
    ),
    "_config_api": (
        "API_ENV",
        "LOOPBACK_NAMES",
        "HostGuard",
        "allowed_host",
        "host_problem",
        "is_loopback",
        "token_problem",
    ),
    "_contract": (
        "API_ALLOWED_HOSTS_ENV",
        "API_HOST_ENV",
        "API_PORT_ENV",
        "API_TOKEN_ENV",
        "DETACHED_ENV",
        "EX_CONFIG",
        "HEADLESS_ENV",
        "HEARTBEAT_ENV",
        "HOME_ENV",
        "LOG_STDOUT_ENV",
        "MODULES_DUMP_ENV",
        "NO_SANDBOX_ENV",
        "SESSION_KEY_ENV",
        "STARTUP_PIPE_ENV",
        "WATCHDOG_PID_ENV",
    ),
    "_control": (
        "DESTRUCTIVE_ACTIONS",
        "OUTBOX_ACTIONS",
        "WORKER_ACTIONS",
        "ActionQueued",
        "ActionTimeout",
        "ActionUnanswered",
        "ActionWithdrawn",
    ),
    "_dirsize": ("directory_size",),
    "_errors": (
        "AlreadyRunning",
        "ConfigError",
        "ContinuityError",
        "NotRunning",
    ),
    "_events": (
        "KEEP_ROTATED",
        "MAX_FILE_BYTES",
        "EventLog",
        "JsonlFollower",
        "parse_json_line",
        "parse_jsonl",
        "read_events",
    ),
    "_heartbeat": (
        "Heartbeat",
        "InboxSection",
        "OutboxSection",
        "SendingSection",
        "TokensSection",
        "WhatsAppSection",
        "clean_heartbeat",
        "read_heartbeat",
        "write_heartbeat",
    ),
    "_home": (
        "Home",
        "HomeLayoutError",
        "undecodable_argument",
    ),
    "_oslock": (
        "ExclusiveFileLock",
        "LockHeld",
        "is_locked",
    ),
    "_process": ("pid_alive",),
    "_rules": (
        "GROUP_PREFIX",
        "MAX_GROUP_TITLE",
        "PHONE_HELP",
        "RECIPIENT_HELP",
        "phone_digits",
        "recipient_id",
    ),
    "_single": (
        "home_lost",
        "running_watchdog",
        "single_instance",
    ),
    "_timing": (
        "SlidingWindow",
        "backoff_delay",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

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


__all__ = ["control", *_WHERE]  # every exported name, from the table above
