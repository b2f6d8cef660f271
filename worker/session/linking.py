"""Linking by phone number instead of a QR: `continuity whatsapp link --phone DIGITS` (the control action
`link-phone`).

On the QR screen the session clicks "Log in with phone number", types the number (digits only, no "+"; set with
the input's native value setter and an input event, as React pages need) and clicks "Next"; the code screen then
shows an 8-character code (`data-link-code="XXXX-XXXX"`), which WhatsApp refreshes about every 3 minutes. The code
is in the heartbeat (`whatsapp.pairing_code`) as soon as the page shows it, for the CLI and the dashboard to print;
the user types it on the phone (Linked devices > Link a device > Link with phone number instead). It ends when the
session is ready. A number the page refuses (its error text) or no code within CODE_WAIT_S is a clear error. The
number is asked for at most MAX_REQUESTS times per request: WhatsApp rate-limits code requests.

Driven by the session's probes while it shows the QR or a linking screen (rules.classify counts those as "qr").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from continuity.watchdog.instance import EventLog, phone_digits

from .page_scripts import FIND
from .states import WhatsAppState

if TYPE_CHECKING:
    from .page import Page
    from .session import WhatsAppSession

logger = logging.getLogger("continuity.whatsapp")

CODE_WAIT_S = 30.0  # s after "Next" for the code (or the page's error) to show
LINK_TTL_S = 900.0  # s a request stays active without the session becoming ready
MAX_REQUESTS = 3  # times the number is submitted for one request (a reloaded page shows the QR again)

# Type the number into the phone field as React expects (native value setter + input event); {typed, matches}.
_TYPE_SCRIPT = (
    FIND
    + """
const input = find('link_phone_input');
if (input) {
  input.focus();
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  setter.call(input, arguments[1]);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new Event('change', {bubbles: true}));
}
return {typed: !!input && input.value.replace(/[^0-9]/g, '') === arguments[1], matches: M, bad: BAD};
"""
)


class PhoneLinking:
    """One phone-number linking request at a time; `status()` is merged into the heartbeat's whatsapp section."""

    def __init__(self, events: EventLog, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.events = events
        self._clock = clock
        self.phone: str | None = None
        self.state = "idle"  # idle | starting | number_sent | code_shown | linked | failed
        self.code: str | None = None
        self.error: str | None = None
        self.started_at = 0.0
        self._submitted_at: float | None = None
        self._requests = 0

    @property
    def active(self) -> bool:
        return self.state in ("starting", "number_sent", "code_shown")

    def start(self, phone: str) -> None:
        """Begin linking `phone` (digits) from the next probe that shows the QR."""
        self.phone, self.state, self.code, self.error = phone, "starting", None, None
        self.started_at, self._submitted_at, self._requests = self._clock(), None, 0
        self.events.emit("pairing_started", phone_digits=len(phone))

    def _fail(self, reason: str, page: Page | None = None) -> None:
        self.state, self.error, self.code = "failed", reason, None
        logger.error("linking by phone number failed: %s", reason)
        self.events.emit("pairing_failed", reason=reason)
        if page is not None:
            try:
                page.open()  # back to the QR screen (a scan, or another try, can link it)
            except Exception as exc:  # the next probe judges the page
                logger.warning("reopening WhatsApp Web after a failed linking: %s", exc)

    def on_ready(self) -> None:
        """The session is ready: a request in progress is done (the phone entered the code)."""
        if self.active:
            self.state, self.code = "linked", None
            self.events.emit("pairing_linked", by="phone_number")

    def step(self, page: Page | None, markers: dict[str, Any]) -> None:
        """One probe's worth of the flow, on a page that shows the QR or a linking screen."""
        if not self.active or page is None:
            return
        now = self._clock()
        if now - self.started_at > LINK_TTL_S:
            self._fail(f"not linked within {LINK_TTL_S:g} s; ask again with `continuity whatsapp link --phone`")
            return
        code = markers.get("link_code")
        if code:
            if code != self.code:
                first = self.code is None
                self.code, self.state = str(code), "code_shown"
                self.events.emit("pairing_code_shown" if first else "pairing_code_refreshed")
            return
        if markers.get("link_phone_input"):
            self._on_number_screen(page, markers, now)
        elif markers.get("qr") is not None or markers.get("qr_idle"):
            self._on_qr_screen(page)

    def _on_qr_screen(self, page: Page) -> None:
        if self._requests >= MAX_REQUESTS:
            self._fail(f"the number was sent {MAX_REQUESTS} times without a code (WhatsApp limits code requests)")
            return
        if not page.click("link_with_phone"):
            self._fail("the QR screen has no 'Log in with phone number' button (role link_with_phone)")
            return
        self.state, self.code, self._submitted_at = "starting", None, None

    def _on_number_screen(self, page: Page, markers: dict[str, Any], now: float) -> None:
        assert self.phone is not None
        if self._submitted_at is not None:
            error = markers.get("link_error")
            if error:
                self._fail(f"WhatsApp did not accept the number +{self.phone}: {error}", page)
            elif now - self._submitted_at > CODE_WAIT_S:
                self._fail(f"no linking code within {CODE_WAIT_S:g} s after sending the number +{self.phone}", page)
            return
        typed = page._script(_TYPE_SCRIPT, self.phone).get("typed")
        if not typed:
            self._fail("could not type the number into the phone number field (role link_phone_input)", page)
            return
        if not page.click("link_next"):
            self._fail("the phone number screen has no 'Next' button (role link_next)", page)
            return
        self._requests += 1
        self._submitted_at, self.state = now, "number_sent"

    def status(self) -> dict[str, Any]:
        """pairing_code (the code to type on the phone, while shown), pairing_state, pairing_error."""
        return {
            "pairing_code": self.code if self.state == "code_shown" else None,
            "pairing_state": self.state,
            "pairing_error": self.error,
        }

    def news(self) -> tuple[object, ...]:
        return (self.state, self.code, self.error)


def link_phone_handler(session: WhatsAppSession) -> Callable[[dict[str, Any]], tuple[bool, str, dict[str, Any]]]:
    """The control action `link-phone` {"phone": DIGITS}: starts the code flow; the code follows in the heartbeat."""

    def link_phone(params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        raw = params.get("phone")
        digits = phone_digits(str(raw)) if isinstance(raw, str | int) and not isinstance(raw, bool) else None
        if digits is None:
            return False, f"{raw!r} is not a phone number: digits with the country code, e.g. 15551234567", {}
        if session.state is WhatsAppState.READY:
            return False, "WhatsApp is already linked and ready (clear-session first to link another phone)", {}
        session.linking.start(digits)
        if session.page is not None and session.state in (WhatsAppState.QR, WhatsAppState.LOGGED_OUT):
            session.probe_soon()  # drive it from the next turn
        return True, f"linking +{digits} by phone number: the code shows in `status` (whatsapp.pairing_code)", {}

    return link_phone
