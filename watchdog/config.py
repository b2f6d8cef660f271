"""`continuity.toml`: every key has a default; unknown keys, wrong types and bad values are refused."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ConfigError

POSITIVE = "positive"  # > 0
NON_NEGATIVE = "non-negative"  # >= 0


def _rule(kind: str, choices: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"rule": kind, "choices": choices}


@dataclass(frozen=True)
class WatchdogConfig:
    heartbeat_timeout: float = field(default=120.0, metadata=_rule(POSITIVE))
    startup_grace: float = field(default=120.0, metadata=_rule(POSITIVE))
    check_interval: float = field(default=1.0, metadata=_rule(POSITIVE))
    restart_delay: float = field(default=5.0, metadata=_rule(NON_NEGATIVE))
    restart_delay_max: float = field(default=60.0, metadata=_rule(NON_NEGATIVE))
    stable_after: float = field(default=60.0, metadata=_rule(POSITIVE))
    restart_limit: int = field(default=10, metadata=_rule(POSITIVE))
    restart_window: float = field(default=300.0, metadata=_rule(POSITIVE))
    on_restart_limit: str = field(default="wait", metadata=_rule("choice", ("wait", "exit")))
    stop_timeout: float = field(default=10.0, metadata=_rule(POSITIVE))
    worker_command: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkerConfig:
    heartbeat_interval: float = field(default=10.0, metadata=_rule(POSITIVE))
    backup_interval: float = field(default=30.0, metadata=_rule(POSITIVE))
    max_backups: int = field(default=10, metadata=_rule(POSITIVE))


@dataclass(frozen=True)
class WhatsAppConfig:
    enabled: bool = True  # false: run store, jobs and outbox without a browser (messages wait in the outbox)
    url: str = "https://web.whatsapp.com"
    driver: str = field(default="undetected", metadata=_rule("choice", ("undetected", "selenium")))
    headless: bool = False
    browser_path: str = ""
    driver_path: str = ""
    probe_interval: float = field(default=10.0, metadata=_rule(POSITIVE))
    reconnect_backoff: list[float] = field(default_factory=lambda: [1.0, 60.0], metadata=_rule("pair"))
    session_max_mb: float = field(default=500.0, metadata=_rule(POSITIVE))
    send_min_interval: float = field(default=3.0, metadata=_rule(NON_NEGATIVE))
    send_ack_timeout: float = field(default=30.0, metadata=_rule(POSITIVE))  # s to wait for a message's tick
    loading_timeout: float = field(default=60.0, metadata=_rule(POSITIVE))  # s on "Loading your chats" before reload
    takeover_on_conflict: bool = True  # click "Use here" when WhatsApp is open elsewhere


@dataclass(frozen=True)
class SessionConfig:
    backup_interval: float = field(default=86400.0, metadata=_rule(POSITIVE))
    max_session_backups: int = field(default=5, metadata=_rule(POSITIVE))
    auto_restore: bool = True
    # Passphrase file for the encrypted session backups: an absolute path outside the home, mode 0600
    # ($CONTINUITY_SESSION_KEY wins when set). Empty and no env var: no session backups.
    key_file: str = ""


@dataclass(frozen=True)
class NotifyConfig:
    recipients: list[str] = field(default_factory=list, metadata=_rule("phones"))
    template: str = "New token {symbol} on {chain} ({id})"


@dataclass(frozen=True)
class JobConfig:
    callable: str = field(default="", metadata=_rule("callable"))
    interval: float = field(default=30.0, metadata=_rule(POSITIVE))


@dataclass(frozen=True)
class ApiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = field(default=8765, metadata=_rule("port"))
    token: str = ""  # required for POST; empty: one is generated into run/api_token (mode 0600)
    # Extra Host header names accepted besides the bound address and localhost (e.g. the machine's LAN name
    # when host = "0.0.0.0"); every other Host is refused (DNS-rebinding guard).
    allowed_hosts: list[str] = field(default_factory=list)
    # Seconds a POST of a worker action waits for the worker's answer before replying 202 "queued".
    action_wait: float = field(default=10.0, metadata=_rule(POSITIVE))


@dataclass(frozen=True)
class AlertsConfig:
    webhook_url: str = ""  # http(s) URL; a JSON POST per alert (checked when the watchdog starts)
    telegram_bot_token: str = ""
    telegram_chat_id: str = ""
    telegram_api_base: str = "https://api.telegram.org"  # http(s) URL; tests point it at a local receiver
    offline_alert_after: float = field(default=600.0, metadata=_rule(POSITIVE))  # s offline before an alert
    alert_min_interval: float = field(default=900.0, metadata=_rule(NON_NEGATIVE))  # s between alerts of one kind
    crash_loop_restarts: int = field(default=5, metadata=_rule(POSITIVE))  # worker exits or hangs ...
    crash_loop_window: float = field(default=600.0, metadata=_rule(POSITIVE))  # ... within this many s
    poll_interval: float = field(default=5.0, metadata=_rule(POSITIVE))  # s between looks at logs/events.jsonl


@dataclass(frozen=True)
class Config:
    """The whole configuration of one instance."""

    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    whatsapp: WhatsAppConfig = field(default_factory=WhatsAppConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    jobs: list[JobConfig] = field(default_factory=list)
    api: ApiConfig = field(default_factory=ApiConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    source: Path | None = None

    def replace(self, **sections: Any) -> Config:
        """A copy with some sections replaced (tests and the demo build configs this way)."""
        return dataclasses.replace(self, **sections)


_SECTIONS: dict[str, type[Any]] = {
    "watchdog": WatchdogConfig,
    "worker": WorkerConfig,
    "whatsapp": WhatsAppConfig,
    "session": SessionConfig,
    "notify": NotifyConfig,
    "api": ApiConfig,
    "alerts": AlertsConfig,
}


def load_config(path: str | Path) -> Config:
    """Read `path` (TOML); a missing file gives the defaults. Raises ConfigError naming the file and key."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(document, source=path)


def parse_config(document: dict[str, Any], *, source: Path | None = None) -> Config:
    """Build a Config from a parsed TOML document; every problem names the file and the key."""
    where = str(source) if source else "<config>"
    sections: dict[str, Any] = {}
    for name, value in document.items():
        if name == "jobs":
            if not isinstance(value, list):
                raise ConfigError(f"{where}: [[jobs]] must be an array of tables ([[jobs]] ... )")
            sections["jobs"] = [_build(JobConfig, item, where, f"jobs[{i}]") for i, item in enumerate(value)]
        elif name in _SECTIONS:
            sections[name] = _build(_SECTIONS[name], value, where, name)
        else:
            known = ", ".join(sorted([*_SECTIONS, "jobs"]))
            raise ConfigError(f"{where}: unknown section [{name}] (known sections: {known})")
    for index, job in enumerate(sections.get("jobs", [])):
        if not job.callable:
            raise ConfigError(f'{where}: jobs[{index}].callable is required ("package.module:function")')
    config = Config(**sections, source=source)
    _check_cross_field(config, where)
    return config


def _build(cls: type[Any], table: Any, where: str, section: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {section} must be a table, got {type(table).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key {section}.{key} (known keys in [{section}]: {known})")
        values[key] = _check_value(value, hints[key], fields[key].metadata, where, f"{section}.{key}")
    return cls(**values)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def _check_value(value: Any, hint: Any, meta: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list of {_type_name(item_hint)}, got {value!r}")
        value = [_check_scalar(item, item_hint, where, f"{key}[{i}]") for i, item in enumerate(value)]
    elif isinstance(hint, types.UnionType):  # pragma: no cover - no optional keys yet
        raise ConfigError(f"{where}: {key}: unsupported type")
    else:
        value = _check_scalar(value, hint, where, key)
    return _check_rule(value, meta, where, key)


def _check_scalar(value: Any, hint: Any, where: str, key: str) -> Any:
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (bool, str) and isinstance(value, hint):
        return value
    raise ConfigError(f"{where}: {key} must be {_type_name(hint)}, got {type(value).__name__} {value!r}")


def _check_rule(value: Any, meta: Any, where: str, key: str) -> Any:
    rule = meta.get("rule") if meta else None
    if rule == POSITIVE and not value > 0:
        raise ConfigError(f"{where}: {key} must be greater than 0, got {value!r}")
    if rule == NON_NEGATIVE and value < 0:
        raise ConfigError(f"{where}: {key} must not be negative, got {value!r}")
    if rule == "choice" and value not in meta["choices"]:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(map(repr, meta['choices']))}, got {value!r}")
    if rule == "port" and not 0 <= value <= 65535:
        raise ConfigError(f"{where}: {key} must be a TCP port 0-65535, got {value!r}")
    if rule == "pair" and (len(value) != 2 or not 0 < value[0] <= value[1]):
        raise ConfigError(f"{where}: {key} must be [first, cap] seconds with 0 < first <= cap, got {value!r}")
    if rule == "phones":
        for phone in value:
            if not (phone.isdigit() and 8 <= len(phone) <= 15):
                raise ConfigError(
                    f"{where}: {key}: {phone!r} is not a phone number (digits with country code, 8-15 digits)"
                )
    if rule == "callable" and value and ":" not in value:
        raise ConfigError(f'{where}: {key} must look like "package.module:function", got {value!r}')
    return value


def _check_cross_field(config: Config, where: str) -> None:
    wd = config.watchdog
    if wd.restart_delay_max < wd.restart_delay:
        raise ConfigError(
            f"{where}: watchdog.restart_delay_max ({wd.restart_delay_max:g}) must be >= "
            f"watchdog.restart_delay ({wd.restart_delay:g})"
        )
