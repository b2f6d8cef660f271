"""Linking by phone number, as the real page does it: "Log in with phone number" on the QR screen, the number
typed (digits only), then an 8-character code (`data-link-code="XXXX-XXXX"`) that lives about 3 minutes and is
refreshed; the phone enters the code (the test control `enter_code`) and the page is linked.

Pure helpers; `SimState` keeps the per-page state under its lock.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any

from ._modes import valid_phone

CODE_ROTATE_S = 180.0  # the real code is refreshed about every 3 minutes
_ALPHABET = "ABCDEFGHJKLMNPQRSTVWXYZ0123456789"  # no I, O, U: as the real codes
WRONG_NUMBER = "This phone number isn't valid or isn't on WhatsApp. Check the number and try again."


class LinkRefused(ValueError):
    """The phone was asked to enter a code no page shows (or one asked for another number)."""


def new_code() -> str:
    """A code shaped like the real one: 4 + 4 characters, shown as "XXXX-XXXX"."""
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def number_problem(phone: str, *, invalid: list[str]) -> str | None:
    """Why the page refuses `phone` (the text it shows), or None. Digits only, no "+", 8-15 of them."""
    if not valid_phone(phone) or phone in invalid:
        return WRONG_NUMBER
    return None


class LinkingMixin:
    """The code flow of `SimState`, per page (a client): phone_entry -> code (refreshed) -> paired. Uses the
    state's lock, clock, clients and modes; `_pair(client)` links a client to a new device."""

    _lock: threading.Lock
    _clock: Callable[[], float]
    _clients: dict[str, Any]
    _modes: dict[str, dict[str, Any]]
    phone: str
    code_rotate_s: float
    fresh_s: float  # a page that has not polled for this long no longer counts as showing its code

    def _client(self, client_id: str, now: float) -> Any:
        raise NotImplementedError

    def _page_status(self, client: Any, token: str | None, now: float) -> dict[str, Any]:
        raise NotImplementedError

    def _pair(self, client: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _link_status(self, client: Any, now: float) -> dict[str, Any]:
        if client.status == "phone_entry":
            return {"status": "phone_entry"}
        while now - client.link_since >= self.code_rotate_s:  # refreshed, as the real code is
            client.link_code, client.link_since = new_code(), client.link_since + self.code_rotate_s
            client.link_codes += 1
        expires = self.code_rotate_s - (now - client.link_since)
        return {"status": "code", "code": client.link_code, "code_expires_in_s": expires}

    def link_start(self, client_id: str) -> dict[str, Any]:
        """The page's "Log in with phone number": the number entry screen (no QR any more)."""
        with self._lock:
            now = self._clock()
            client = self._client(client_id, now)
            if client.status in ("idle", "qr", "code", "phone_entry"):
                client.status, client.qr, client.link_code = "phone_entry", None, None
            return self._page_status(client, None, now)

    def link_phone(self, client_id: str, phone: str) -> dict[str, Any]:
        """The page's "Next" with `phone` typed: a code screen, or the number entry again with the page's error."""
        with self._lock:
            now = self._clock()
            client = self._client(client_id, now)
            if client.status != "phone_entry":
                return self._page_status(client, None, now)
            problem = number_problem(phone, invalid=self._modes.get("invalid_numbers", {}).get("numbers", []))
            if problem is not None:
                return {"status": "phone_entry", "error": problem}
            client.status, client.link_phone = "code", phone
            client.link_code, client.link_since, client.link_codes = new_code(), now, 1
            return self._page_status(client, None, now)

    def _showing_code(self, now: float) -> list[Any]:
        shown = [c for c in self._clients.values() if c.status == "code" and now - c.last_seen <= self.fresh_s]
        for client in shown:
            self._link_status(client, now)
        return sorted(shown, key=lambda c: c.last_seen, reverse=True)

    def enter_code(self, code: str | None = None) -> dict[str, Any]:
        """The phone enters the code a page shows (the newest, or the page showing `code`): that page is linked.
        LinkRefused when no page shows it, or it was asked for another number than this phone's."""
        with self._lock:
            shown = self._showing_code(self._clock())
            if code is not None:
                shown = [c for c in shown if c.link_code == code]
            if not shown:
                raise LinkRefused("no page currently shows " + (f"the code {code!r}" if code else "a linking code"))
            client = shown[0]
            if client.link_phone != self.phone:
                raise LinkRefused(f"the code was asked for +{client.link_phone}, not this phone (+{self.phone})")
            client.link_code = None
            return self._pair(client)

    def link_code(self) -> str | None:
        """The linking code a page shows now (the newest page), or None."""
        with self._lock:
            shown = self._showing_code(self._clock())
            return str(shown[0].link_code) if shown else None
