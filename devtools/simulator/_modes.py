"""Fault and overlay modes of the simulator, and the validation of their parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DEFAULT_WEB_VERSION = "2.3000.1017000000"  # window.Debug.VERSION of the page, as on the real one

# name -> one-line meaning (shown in `continuity simulator --help` and in error messages)
MODES: dict[str, str] = {
    "loading_stuck": "the 'Loading your chats' progress stops at 100 % and never reaches the chats",
    "conflict": "overlay 'WhatsApp is open on another computer or browser' (Log out / Use here)",
    "another_tab": "overlay 'WhatsApp is open in another window' (Close / Use here)",
    "offline": "banner 'Computer not connected'; sends stay on the clock until it clears",
    "phone_offline": "banner 'Trying to reach phone'; sends stay on the clock until it clears",
    "frozen": "the page's JavaScript enters a busy loop on its next poll (WebDriver script calls hang)",
    "slow": "the server delays every page response by `seconds` (default 2.0)",
    "stuck_clock": "sent messages stay on msg-time and are not delivered",
    "send_fail": "sent messages end in msg-failed and are not delivered",
    "locale": "visible text and aria-labels translated (`lang` 'de' or 'pt'; default 'de')",
    "invalid_numbers": "`numbers` (list of digit strings) are treated as not on WhatsApp",
    "update_popup": "popup 'A new version of WhatsApp is available' (Later / Reload) over the main screen; a click "
    "on either button closes it",
    "web_version": f"window.Debug.VERSION is `version` from the next page load (else {DEFAULT_WEB_VERSION!r})",
    "virtual_list": "the chat list holds only its newest `rows` chats (default 10) unless the search box filters "
    "it, as the real list is virtualised (rows out of view are not in the page)",
}

LOCALES = ("de", "pt")
_VERSION = re.compile(r"[0-9][0-9.]{0,39}")
SLOW_MAX_S = 600.0
_DIGITS = re.compile(r"[0-9]{8,15}")


def _only(params: Mapping[str, Any], mode: str, key: str) -> None:
    """Refuse parameters of `mode` other than `key`."""
    extra = set(params) - {key}
    if extra:
        raise ValueError(f"mode {mode!r} takes only {key!r}, got {sorted(extra)}")


def valid_phone(phone: str) -> bool:
    """True for 8 to 15 digits, the shape WhatsApp's /send accepts."""
    return bool(_DIGITS.fullmatch(phone))


def _no_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    if params:
        raise ValueError(f"mode {name!r} takes no parameters, got {sorted(params)}")
    return {}


def _slow(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "slow", "seconds")
    seconds = params.get("seconds", 2.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= SLOW_MAX_S:
        raise ValueError(f"mode 'slow': seconds must be a number in (0, {SLOW_MAX_S:g}], got {seconds!r}")
    return {"seconds": float(seconds)}


def _locale(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "locale", "lang")
    lang = params.get("lang", "de")
    if lang not in LOCALES:
        raise ValueError(f"mode 'locale': lang must be one of {', '.join(LOCALES)}, got {lang!r}")
    return {"lang": lang}


def _invalid_numbers(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "invalid_numbers", "numbers")
    numbers = params.get("numbers")
    if isinstance(numbers, str):
        numbers = [n for n in re.split(r"[,\s]+", numbers) if n]
    if not isinstance(numbers, list | tuple) or not numbers:
        raise ValueError("mode 'invalid_numbers' needs numbers=[digit strings], a non-empty list")
    bad = [n for n in numbers if not isinstance(n, str) or not n.isdigit()]
    if bad:
        raise ValueError(f"mode 'invalid_numbers': numbers must be digit strings, got {bad!r}")
    return {"numbers": sorted(set(numbers))}


def _web_version(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "web_version", "version")
    version = params.get("version")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ValueError(f"mode 'web_version' needs version=DIGITS.AND.DOTS (e.g. 2.3000.1), got {version!r}")
    return {"version": version}


def _virtual_list(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "virtual_list", "rows")
    rows = params.get("rows", 10)
    if isinstance(rows, str) and rows.isdigit():
        rows = int(rows)
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= 1000:
        raise ValueError(f"mode 'virtual_list': rows must be an integer 1-1000, got {rows!r}")
    return {"rows": rows}


def check_mode(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The normalized params of mode `name`; ValueError saying why for an unknown mode or bad params."""
    if name not in MODES:
        raise ValueError(f"unknown mode {name!r}; known modes: {', '.join(sorted(MODES))}")
    if name == "slow":
        return _slow(params)
    if name == "locale":
        return _locale(params)
    if name == "invalid_numbers":
        return _invalid_numbers(params)
    if name == "web_version":
        return _web_version(params)
    if name == "virtual_list":
        return _virtual_list(params)
    return _no_params(name, params)
