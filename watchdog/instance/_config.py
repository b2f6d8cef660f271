"""`continuity.toml`: every key has a default; unknown keys, wrong types and bad values are refused.

Every number is finite and bounded (seconds at most a week), and every value is checked here, once, by the rule
the runtime applies (recipients: `recipient_id`, which the outbox uses too).

Sections are NamedTuples (immutable, typed) with each key's rule in its `Annotated` hint. Not dataclasses: they
import `inspect`, nearly 1 MB of the long-running watchdog's memory.
"""

from __future__ import annotations

import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from ._checks import alert_problems, template_fields
from ._config_api import allowed_host, host_problem, token_problem, with_api_env
from ._errors import ConfigError

WEEK_S = 7 * 86400.0  # the longest any seconds setting may be (a timer beyond it is a typo, and some overflow)
MAX_COUNT = 1_000_000
MAX_PROFILE_MIB = 1024.0 * 1024.0  # 1 TiB


class Rule(NamedTuple):
    """A check on a key's value beyond its type; `max` (inclusive) is said with `bound` in the refusal."""

    kind: str
    choices: tuple[str, ...] = ()
    max: float | None = None
    bound: str = ""


_A_WEEK = f"{WEEK_S:.0f} s (1 week)"
SECONDS = Rule("positive", max=WEEK_S, bound=_A_WEEK)  # > 0
SECONDS_OR_ZERO = Rule("non-negative", max=WEEK_S, bound=_A_WEEK)  # >= 0
COUNT = Rule("positive", max=MAX_COUNT, bound=f"{MAX_COUNT}")
MIB = Rule("positive", max=MAX_PROFILE_MIB, bound=f"{MAX_PROFILE_MIB:.0f} MiB (1 TiB)")
HOURS = Rule("positive", max=WEEK_S / 3600.0, bound=f"{WEEK_S / 3600.0:.0f} h (1 week)")  # > 0
DAYS_OR_ZERO = Rule("non-negative", max=3650.0, bound="3650 days (10 years)")  # >= 0
PORT = Rule("port")
PAIR = Rule("pair", max=WEEK_S, bound=_A_WEEK)  # [first, cap] seconds
PHONES = Rule("phones")
CALLABLE = Rule("callable")
SELECTOR_OVERRIDES = Rule("selectors")  # [whatsapp.selectors]: role = "CSS selector"
HOST, HOST_NAMES, TOKEN = Rule("host"), Rule("host names"), Rule("token")  # [api]: _config_api.py

# The one phone rule, shared with the outbox (worker/store/_outbox.py normalize_phone): what loads here is sent.
PHONE_HELP = (
    "use 8-15 digits including the country code, e.g. 15551234567 "
    "(a leading '+', spaces and dashes are ignored; no leading 0)"
)
_PHONE_NOISE = re.compile(r"[ -]")  # spaces and dashes, exactly what PHONE_HELP says is ignored


def phone_digits(raw: str) -> str | None:
    """The digits WhatsApp gets for `raw` ("+1 555-123-4567" -> "15551234567"), or None when it is not a phone
    number: 8-15 ASCII digits (not any Unicode digit) with the country code, no leading 0."""
    text = _PHONE_NOISE.sub("", str(raw))
    if text.startswith("+"):
        text = text[1:]
    if not text.isascii() or not text.isdigit() or not 8 <= len(text) <= 15 or text.startswith("0"):
        return None
    return text


# A group is named by its exact title, as the chat list shows it: `group:Token Alerts` (WhatsApp caps a group's
# subject at 100 characters; no line breaks or control characters).
GROUP_PREFIX = "group:"
MAX_GROUP_TITLE = 100
RECIPIENT_HELP = f"{PHONE_HELP}; or {GROUP_PREFIX}NAME with a group's exact title (1-{MAX_GROUP_TITLE} characters)"


def recipient_id(raw: str) -> str | None:
    """What the outbox stores for a recipient: the digits of a phone number (`phone_digits`), or "group:NAME" for a
    group (the title with surrounding spaces removed, 1-100 printable characters); None when it is neither."""
    text = str(raw)
    if not text.startswith(GROUP_PREFIX):
        return phone_digits(text)
    title = text[len(GROUP_PREFIX) :].strip()
    if not 1 <= len(title) <= MAX_GROUP_TITLE or not title.isprintable():
        return None
    return GROUP_PREFIX + title


def one_of(*choices: str) -> Rule:
    return Rule("choice", choices)


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
            sections["jobs"] = tuple(_build(JobConfig, item, where, f"jobs[{i}]") for i, item in enumerate(value))
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
    hints = typing.get_type_hints(cls, include_extras=True)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in cls._fields:
            known = ", ".join(sorted(cls._fields))
            raise ConfigError(f"{where}: unknown key {section}.{key} (known keys in [{section}]: {known})")
        hint, rule = hints[key], None
        if typing.get_origin(hint) is Annotated:
            hint, rule = typing.get_args(hint)[:2]
        values[key] = _check_value(value, hint, rule, where, f"{section}.{key}")
    return cls(**values)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def _check_value(value: Any, hint: Any, rule: Rule | None, where: str, key: str) -> Any:
    if rule is SELECTOR_OVERRIDES:
        return _check_selectors(value, where, key)
    if typing.get_origin(hint) is tuple:  # tuple[X, ...]: a TOML array of X
        item_hint = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list of {_type_name(item_hint)}, got {value!r}")
        value = tuple(_check_scalar(item, item_hint, where, f"{key}[{i}]") for i, item in enumerate(value))
    elif isinstance(hint, types.UnionType):  # pragma: no cover - no optional keys yet
        raise ConfigError(f"{where}: {key}: unsupported type")
    else:
        value = _check_scalar(value, hint, where, key)
    return value if rule is None else _check_rule(value, rule, where, key)


def _check_scalar(value: Any, hint: Any, where: str, key: str) -> Any:
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {key} must be a finite number, got {value!r}")
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (bool, str) and isinstance(value, hint):
        return value
    raise ConfigError(f"{where}: {key} must be {_type_name(hint)}, got {type(value).__name__} {value!r}")


def _check_rule(value: Any, rule: Rule, where: str, key: str) -> Any:
    kind = rule.kind
    if kind == "positive" and not value > 0:
        raise ConfigError(f"{where}: {key} must be greater than 0, got {value!r}")
    if kind == "non-negative" and value < 0:
        raise ConfigError(f"{where}: {key} must not be negative, got {value!r}")
    if kind in ("positive", "non-negative") and rule.max is not None and value > rule.max:
        raise ConfigError(f"{where}: {key} must be at most {rule.bound}, got {value!r}")
    if kind == "choice" and value not in rule.choices:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(map(repr, rule.choices))}, got {value!r}")
    if kind == "port" and not 0 <= value <= 65535:
        raise ConfigError(f"{where}: {key} must be a TCP port 0-65535, got {value!r}")
    if kind == "pair" and (len(value) != 2 or not 0 < value[0] <= value[1] <= WEEK_S):
        raise ConfigError(
            f"{where}: {key} must be [first, cap] seconds, 0 < first <= cap, each at most {rule.bound}, "
            f"got {list(value)!r}"
        )
    if kind == "phones":  # phone numbers or group:NAME, by the outbox's own rule
        digits = tuple(recipient_id(phone) for phone in value)
        for index, (phone, found) in enumerate(zip(value, digits, strict=True)):
            if found is None:
                raise ConfigError(
                    f"{where}: {key}[{index}]: {phone!r} is not a phone number or a group: {RECIPIENT_HELP}"
                )
        return digits
    if kind in ("host", "token"):
        problem = host_problem(value) if kind == "host" else token_problem(value)
        if problem:
            raise ConfigError(f"{where}: {key} {problem}")
    if kind == "host names":
        try:
            return tuple(allowed_host(name) for name in value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None
    if kind == "callable" and value and ":" not in value:
        raise ConfigError(f'{where}: {key} must look like "package.module:function", got {value!r}')
    return value


def _check_selectors(value: Any, where: str, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: [{key}] must be a table of role = "CSS selector"')
    for role, selector in value.items():
        if not isinstance(selector, str):
            raise ConfigError(f"{where}: {key}.{role} must be a CSS selector string, got {selector!r}")
    if value:  # the role table is a leaf module of plain strings (nothing of the browser is imported)
        from continuity.worker.session.selectors import check_overrides

        problems = check_overrides(value)
        if problems:
            raise ConfigError(f"{where}: {problems[0]}")
    return tuple(value.items())


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
