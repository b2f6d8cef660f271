"""`continuity.toml`: every key has a default; unknown keys, wrong types and bad values are refused.

Every number is finite and bounded (seconds at most a week), and every value is checked once, by the rule the
runtime applies (the rules are in _rules.py; recipients: `recipient_id`, which the outbox uses too). Then the
[api] keys the environment sets are applied (with_api_env).

Sections are NamedTuples (immutable, typed) with each key's rule in its `Annotated` hint. Not dataclasses: they
import `inspect`, nearly 1 MB of the long-running watchdog's memory.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from ._checks import alert_problems, template_fields
from ._config_api import API_ENV
from ._errors import ConfigError
from ._rules import (
    CALLABLE,
    COUNT,
    DAYS_OR_ZERO,
    HOST,
    HOST_NAMES,
    HOURS,
    MIB,
    PAIR,
    PHONES,
    PORT,
    SECONDS,
    SECONDS_OR_ZERO,
    SELECTOR_OVERRIDES,
    TOKEN,
    build_section,
    one_of,
)


class WatchdogConfig(NamedTuple):
    heartbeat_timeout: Annotated[float, SECONDS] = 120.0
    startup_grace: Annotated[float, SECONDS] = 120.0
    check_interval: Annotated[float, SECONDS] = 1.0  # s between looks at run/, where the kernel cannot report
    # Linux: the kernel reports each heartbeat write (inotify), so the watchdog sleeps until something happens.
    # false: look at the heartbeat every check_interval instead.
    watch_heartbeat: bool = True
    restart_delay: Annotated[float, SECONDS_OR_ZERO] = 5.0
    restart_delay_max: Annotated[float, SECONDS_OR_ZERO] = 60.0
    stable_after: Annotated[float, SECONDS] = 60.0
    restart_limit: Annotated[int, COUNT] = 10
    restart_window: Annotated[float, SECONDS] = 300.0
    on_restart_limit: Annotated[str, one_of("wait", "exit")] = "wait"
    stop_timeout: Annotated[float, SECONDS] = 10.0
    worker_command: tuple[str, ...] = ()


class WorkerConfig(NamedTuple):
    heartbeat_interval: Annotated[float, SECONDS] = 10.0
    backup_interval: Annotated[float, SECONDS] = 30.0
    max_backups: Annotated[int, COUNT] = 10


class WhatsAppConfig(NamedTuple):
    enabled: bool = True  # false: run store, jobs and outbox without a browser (messages wait in the outbox)
    url: str = "https://web.whatsapp.com"
    driver: Annotated[str, one_of("undetected", "selenium")] = "undetected"
    headless: bool = False
    browser_path: str = ""
    driver_path: str = ""
    probe_interval: Annotated[float, SECONDS] = 10.0
    reconnect_backoff: Annotated[tuple[float, ...], PAIR] = (1.0, 60.0)
    session_max_mb: Annotated[float, MIB] = 500.0  # MiB (2**20 bytes), as the profile trimmer and health count
    # Recycling: the browser is restarted cleanly (login kept) at a quiet moment when the RSS of its whole process
    # tree is over browser_max_rss_mb (MiB, measured every 60 s) or it has run for browser_max_age_h (hours).
    browser_max_rss_mb: Annotated[float, MIB] = 1500.0
    browser_max_age_h: Annotated[float, HOURS] = 24.0
    send_min_interval: Annotated[float, SECONDS_OR_ZERO] = 3.0
    # Sending limits over sliding windows (a minute, an hour, a day): accounts that message many unknown numbers
    # get banned (reports speak of ~150-200 such messages), so a burst waits instead of going out at full speed.
    # Over a limit, messages wait in the outbox (never fail); the heartbeat's sending.paced_until says until when.
    max_per_minute: Annotated[int, COUNT] = 10
    max_per_hour: Annotated[int, COUNT] = 120
    max_per_day: Annotated[int, COUNT] = 1000
    send_ack_timeout: Annotated[float, SECONDS] = 30.0  # s to wait for a message's tick
    loading_timeout: Annotated[float, SECONDS] = 60.0  # s on "Loading your chats" before reload
    takeover_on_conflict: bool = True  # click "Use here" when WhatsApp is open elsewhere
    send_stall_after: Annotated[float, SECONDS] = 120.0  # s of failing sends (messages waiting) -> send_stalled
    unrecognized_after: Annotated[float, SECONDS] = 60.0  # s on a loaded page showing no known screen
    diagnostic_screenshots: bool = False  # a screenshot beside the redacted diagnostic of an unrecognized page
    # [whatsapp.selectors] role = "CSS selector": tried before the built-in selectors of that role (selectors.py)
    selectors: Annotated[tuple[tuple[str, str], ...], SELECTOR_OVERRIDES] = ()


class SessionConfig(NamedTuple):
    backup_interval: Annotated[float, SECONDS] = 86400.0
    max_session_backups: Annotated[int, COUNT] = 5
    auto_restore: bool = True
    # Passphrase file for the encrypted session backups: an absolute path outside the home, mode 0600
    # ($CONTINUITY_SESSION_KEY wins when set). Empty and no env var: no session backups.
    key_file: str = ""


class NotifyConfig(NamedTuple):
    recipients: Annotated[tuple[str, ...], PHONES] = ()
    template: str = "New token {symbol} on {chain} ({id})"


class OutboxConfig(NamedTuple):
    keep_sent_days: Annotated[float, DAYS_OR_ZERO] = 30.0  # days a sent message is kept whole; 0: for ever


class JobConfig(NamedTuple):
    callable: Annotated[str, CALLABLE] = ""
    interval: Annotated[float, SECONDS] = 30.0
    # "interval": function(ctx) every `interval` s; "message": function(ctx, message) for each incoming message
    on: Annotated[str, one_of("interval", "message")] = "interval"


class InboxConfig(NamedTuple):
    enabled: bool = True  # store incoming messages in data/inbox.* (worker/inbox.py)
    scan_interval: Annotated[float, SECONDS] = 2.0  # s between looks at the chat list's unread badges
    webhook_url: str = ""  # http(s) URL: a signed JSON POST per incoming message, retried until a 2xx
    webhook_secret: str = ""  # HMAC-SHA256 key of the X-Continuity-Signature header
    webhook_timeout: Annotated[float, SECONDS] = 10.0
    webhook_backoff: Annotated[tuple[float, ...], PAIR] = (1.0, 300.0)  # [first, cap] s between attempts


class ApiConfig(NamedTuple):
    enabled: bool = True
    host: Annotated[str, HOST] = "127.0.0.1"  # "0.0.0.0": every interface (a container), only when set
    port: Annotated[int, PORT] = 8765
    token: Annotated[str, TOKEN] = ""  # required for POST; empty: one is generated into run/api_token (mode 0600)
    # Extra Host header names accepted besides the bound address and localhost (e.g. the machine's LAN name
    # when host = "0.0.0.0"); every other Host is refused (DNS-rebinding guard).
    allowed_hosts: Annotated[tuple[str, ...], HOST_NAMES] = ()
    # Seconds a POST of a worker action waits for the worker's answer before replying 202 "queued".
    action_wait: Annotated[float, SECONDS] = 10.0


class AlertsConfig(NamedTuple):
    webhook_url: str = ""  # http(s) URL; a JSON POST per alert (checked at load)
    telegram_bot_token: str = ""
    telegram_chat_id: str = ""
    telegram_api_base: str = "https://api.telegram.org"  # http(s) URL; tests point it at a local receiver
    offline_alert_after: Annotated[float, SECONDS] = 600.0  # s offline before an alert
    alert_min_interval: Annotated[float, SECONDS_OR_ZERO] = 900.0  # s between alerts of one kind
    crash_loop_restarts: Annotated[int, COUNT] = 5  # worker exits or hangs ...
    crash_loop_window: Annotated[float, SECONDS] = 600.0  # ... within this many s
    poll_interval: Annotated[float, SECONDS] = 5.0  # s between looks at logs/events.jsonl


class Config(NamedTuple):
    """The whole configuration of one instance."""

    watchdog: WatchdogConfig = WatchdogConfig()
    worker: WorkerConfig = WorkerConfig()
    whatsapp: WhatsAppConfig = WhatsAppConfig()
    session: SessionConfig = SessionConfig()
    notify: NotifyConfig = NotifyConfig()
    outbox: OutboxConfig = OutboxConfig()
    jobs: tuple[JobConfig, ...] = ()
    inbox: InboxConfig = InboxConfig()
    api: ApiConfig = ApiConfig()
    alerts: AlertsConfig = AlertsConfig()
    source: Path | None = None

    def replace(self, **sections: Any) -> Config:
        """A copy with some sections replaced (tests and the demo build configs this way)."""
        return self._replace(**sections)


_SECTIONS: dict[str, type[Any]] = {
    "watchdog": WatchdogConfig,
    "worker": WorkerConfig,
    "whatsapp": WhatsAppConfig,
    "session": SessionConfig,
    "notify": NotifyConfig,
    "outbox": OutboxConfig,
    "api": ApiConfig,
    "alerts": AlertsConfig,
    "inbox": InboxConfig,
}


def load_config(path: str | Path) -> Config:
    """Read `path` (TOML; a missing file gives the defaults), then the [api] keys set in the environment
    (config_api.API_ENV). Raises ConfigError naming the file and key, or the variable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return with_api_env(Config())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return with_api_env(parse_config(document, source=path))  # then $CONTINUITY_API_*


def parse_config(document: dict[str, Any], *, source: Path | None = None) -> Config:
    """Build a Config from a parsed TOML document; every problem names the file and the key."""
    where = str(source) if source else "<config>"
    sections: dict[str, Any] = {}
    for name, value in document.items():
        if name == "jobs":
            if not isinstance(value, list):
                raise ConfigError(f"{where}: [[jobs]] must be an array of tables ([[jobs]] ... )")
            sections["jobs"] = tuple(
                build_section(JobConfig, item, where, f"jobs[{i}]") for i, item in enumerate(value)
            )
        elif name in _SECTIONS:
            sections[name] = build_section(_SECTIONS[name], value, where, name)
        else:
            known = ", ".join(sorted([*_SECTIONS, "jobs"]))
            raise ConfigError(f"{where}: unknown section [{name}] (known sections: {known})")
    for index, job in enumerate(sections.get("jobs", [])):
        if not job.callable:
            raise ConfigError(f'{where}: jobs[{index}].callable is required ("package.module:function")')
    config = Config(**sections, source=source)
    _check_cross_field(config, where)
    return config


def _check_cross_field(config: Config, where: str) -> None:
    try:
        template_fields(config.notify.template)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    problems = alert_problems(config.alerts)
    if problems:
        raise ConfigError(f"{where}: {problems[0]}")
    hook = config.inbox.webhook_url
    if hook and not re.match(r"https?://[^\s/]+", hook):
        raise ConfigError(f"{where}: inbox.webhook_url must be an http(s) URL, got {hook!r}")
    wd = config.watchdog
    if wd.restart_delay_max < wd.restart_delay:
        raise ConfigError(
            f"{where}: watchdog.restart_delay_max ({wd.restart_delay_max:g}) must be >= "
            f"watchdog.restart_delay ({wd.restart_delay:g})"
        )


def with_api_env(config: Config, environ: Mapping[str, str] | None = None) -> Config:
    """`config` with the [api] keys the environment sets (API_ENV), each checked by its key's rule."""
    environ = os.environ if environ is None else environ
    api = config.api
    for variable, key in API_ENV.items():
        raw = environ.get(variable, "")
        if not raw.strip():
            continue
        value: object = raw.strip()
        if key == "port":
            if not raw.strip().isascii() or not raw.strip().isdigit():
                raise ConfigError(f"environment: {variable} must be a TCP port 0-65535, got {raw!r}")
            value = int(raw)
        elif key == "allowed_hosts":
            value = [part.strip() for part in raw.split(",") if part.strip()]
        try:
            checked = build_section(type(api), {key: value}, "environment", "api")
        except ConfigError as exc:  # name the variable, not the key
            raise ConfigError(str(exc).replace(f"environment: api.{key}", f"environment: {variable}", 1)) from None
        api = api._replace(**{key: getattr(checked, key)})
    return config.replace(api=api) if api is not config.api else config
