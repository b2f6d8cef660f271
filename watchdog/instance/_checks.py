"""Rules on config values that are more than a type or a range, shared by the config loader (refusing them at load)
and the parts that use the values (the notify job, the alert sender): one rule, checked once, at load."""

from __future__ import annotations

import string
from typing import Any

from ._errors import ConfigError


def template_fields(template: str) -> list[str]:
    """The record fields a notify template uses; ConfigError for a template that cannot be formatted."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"notify.template {template!r} is not a valid template: {exc}") from exc
    fields = []
    for _literal, name, _spec, conversion in parsed:
        if name is None:
            continue
        if conversion not in (None, "r", "s", "a"):
            raise ConfigError(f"notify.template {template!r}: unknown conversion !{conversion} (use !r, !s or !a)")
        if not name.isidentifier():
            raise ConfigError(
                f"notify.template: {{{name}}} must name a token field, like {{symbol}} or {{id}} "
                "(no positions, attributes or indexes)"
            )
        fields.append(name)
    return fields


def alert_problems(cfg: Any) -> list[str]:
    """Problems with the alert destinations of an AlertsConfig (naming the key, never quoting a secret)."""
    problems = []
    for key, url in (("webhook_url", cfg.webhook_url), ("telegram_api_base", cfg.telegram_api_base)):
        if url:
            from urllib.parse import urlsplit  # only when a URL is set: the idle watchdog stays lean

            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(f"[alerts] {key} must be an http:// or https:// URL")
    if bool(cfg.telegram_bot_token) != bool(cfg.telegram_chat_id):
        problems.append("[alerts] telegram_bot_token and telegram_chat_id must be set together")
    return problems
