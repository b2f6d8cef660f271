"""Sending one message through the page, acked only on a tick, never twice after a crash.

Before clicking Send, the number of bubbles in the chat that already hold the same text is noted durably in
the outbox (`seen_before`). A later attempt (the worker died after clicking, or no tick came) first opens the
chat: more such bubbles than noted means the earlier attempt went out (acked: done; still on the clock: wait
for WhatsApp to deliver it; failed: send again). No timestamps or localized text are needed for this.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from continuity.worker.sending import FAILED, RETRY, SENT, SendOutcome

from .page import Page
from .selectors import SELECTORS, TICK_FAILED, TICK_PENDING, TICKS_ACKED

CHAT_OPEN_TIMEOUT_S = 20.0
BUBBLE_TIMEOUT_S = 10.0
POLL_S = 0.1


def _wait(
    check: Callable[[], Any],
    *,
    timeout_s: float,
    alive: Callable[[], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        alive()
        sleep(POLL_S)


def _open(page: Page, phone: str, text: str | None) -> str | None:
    """Open the chat; returns None when it opened, or the invalid-number popup's text."""
    page.open_chat(phone, text)

    def settled() -> str | None:
        markers = page.probe()
        if markers.get("chat_open"):
            return "open"
        if markers.get("popup_buttons") == 1:  # "Phone number shared via url is invalid." + OK
            return "invalid:" + (markers.get("popup_text") or "invalid phone number").strip()
        return None

    outcome = _wait(settled, timeout_s=CHAT_OPEN_TIMEOUT_S, alive=page.alive)
    if outcome is None:
        raise TimeoutError(f"the chat with {phone} did not open within {CHAT_OPEN_TIMEOUT_S:g} s")
    return None if outcome == "open" else outcome[len("invalid:") :]


def _same_text(page: Page, text: str) -> list[dict[str, Any]]:
    return [b for b in page.outgoing() if b.get("text", "").strip() == text.strip()]


def send_message(page: Page, message: dict[str, Any], note: Callable[..., Any], *, ack_timeout_s: float) -> SendOutcome:
    """Deliver one outbox message; SENT only once its bubble shows at least one tick."""
    phone, text = message["phone"], message["text"]
    earlier = message.get("seen_before")
    if earlier is not None:  # an earlier attempt may have gone out: look before sending again
        invalid = _open(page, phone, None)
        if invalid is not None:
            return SendOutcome(FAILED, invalid)
        bubbles = _same_text(page, text)
        if len(bubbles) > int(earlier):
            tick = bubbles[-1].get("tick")
            if tick in TICKS_ACKED:
                return SendOutcome(SENT, "", {"wa_id": bubbles[-1].get("id"), "found_after_unknown_outcome": True})
            if tick == TICK_PENDING:
                return SendOutcome(RETRY, "an earlier attempt is still waiting for its tick; not sending it twice")
    invalid = _open(page, phone, text)
    if invalid is not None:
        return SendOutcome(FAILED, invalid)
    if page.compose_text() != text.strip():
        page.set_compose(text)
        if page.compose_text() != text.strip():
            return SendOutcome(RETRY, "the compose box does not hold the message text")
    before = _same_text(page, text)
    note(seen_before=len(before))  # durable before the point of no return
    known = {b.get("id") for b in before}
    if not page.click_first(SELECTORS["send_icon"]):
        page.press_enter_in_compose()

    def new_bubble() -> dict[str, Any] | None:
        fresh = [b for b in _same_text(page, text) if b.get("id") not in known]
        return fresh[-1] if fresh else None

    bubble = _wait(new_bubble, timeout_s=BUBBLE_TIMEOUT_S, alive=page.alive)
    if bubble is None:
        return SendOutcome(RETRY, "no outgoing bubble appeared after clicking Send")

    def ticked() -> str | None:
        current = next((b for b in _same_text(page, text) if b.get("id") == bubble.get("id")), None)
        tick = current.get("tick") if current else None
        return tick if tick in (*TICKS_ACKED, TICK_FAILED) else None

    tick = _wait(ticked, timeout_s=ack_timeout_s, alive=page.alive)
    if tick in TICKS_ACKED:
        return SendOutcome(SENT, "", {"wa_id": bubble.get("id")})
    if tick == TICK_FAILED:
        return SendOutcome(RETRY, "WhatsApp marked the message as failed (msg-failed)")
    return SendOutcome(RETRY, f"no tick within {ack_timeout_s:g} s (still on the clock)")
