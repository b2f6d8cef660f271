"""The rules a `continuity.toml` value is checked by: bounds (seconds at most a week), choices, ports, phone numbers
and groups (the outbox's own rule), the [api] host and token rules (_config_api.py), and `build_section`, which
checks a TOML table against a section's `Annotated` hints. _config.py holds the sections themselves."""

from __future__ import annotations

import math
import re
import types
import typing
from typing import Annotated, Any, NamedTuple

from ._config_api import allowed_host, host_problem, token_problem
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


def build_section(cls: type[Any], table: Any, where: str, section: str) -> Any:
    """An instance of the NamedTuple `cls` from a TOML table, each key checked by its type and `Annotated` rule."""
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
