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

from continuity.worker.delivery import FAILED, RETRY, SENT, SendOutcome

from .groups import is_group, open_group
from .page import Page, RoleNotFound
from .selectors import TICK_FAILED, TICK_PENDING

CHAT_OPEN_TIMEOUT_S = 20.0
BUBBLE_TIMEOUT_S = 10.0
POLL_S = 0.1


def _left_device(tick: str | None) -> bool:
    """A tick that is neither pending nor failed (msg-check, msg-dblcheck, or one renamed since) means sent."""
    return tick is not None and tick not in (TICK_PENDING, TICK_FAILED)


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
    """Open the chat; returns None when it opened, or the invalid-number popup's text (or why a group cannot be
    found: groups.py opens a "group:NAME" recipient's chat through the search box, with no text prefilled)."""
    if is_group(phone):
        return open_group(page, phone)
    page.open_chat(phone, text)

    def settled() -> str | None:
        markers = page.probe()
        if markers.get("chat_open"):
            return "open"
        if markers.get("popup_buttons") == 1:  # "Phone number shared via url is invalid." + OK
            page.click("popup_button")  # this popup is known: dismiss it, so no probe reports it as unknown
            return "invalid:" + (markers.get("popup_text") or "invalid phone number").strip()
        return None

    outcome = _wait(settled, timeout_s=CHAT_OPEN_TIMEOUT_S, alive=page.alive)
    if outcome is None:
        if page.probe().get("main"):  # logged in, yet no chat: the page no longer looks as we know it
            raise RoleNotFound("chat", step="open the chat")
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
            if _left_device(tick):
                return SendOutcome(SENT, "", {"wa_id": bubbles[-1].get("id"), "found_after_unknown_outcome": True})
            if tick != TICK_FAILED:  # on the clock, or a tick we cannot read: never send it twice
                return SendOutcome(
                    RETRY,
                    "an earlier attempt is still waiting for its tick; not sending it twice",
                    step="confirm delivery",
                    role="tick",
                )
    invalid = _open(page, phone, text)
    if invalid is not None:
        return SendOutcome(FAILED, invalid)
    if page.compose_text() != text.strip():
        page.set_compose(text)
        if page.compose_text() != text.strip():
            return SendOutcome(
                RETRY, "the compose box does not hold the message text", step="type the message", role="compose"
            )
    before = _same_text(page, text)
    note(seen_before=len(before))  # durable before the point of no return
    known = {b.get("id") for b in before}
    if not page.click("send_button"):
        page.press_enter_in_compose()

    def new_bubble() -> dict[str, Any] | None:
        now = _same_text(page, text)
        fresh = now[len(before) :] if "" in known or not known else [b for b in now if b.get("id") not in known]
        return fresh[-1] if fresh else None

    bubble = _wait(new_bubble, timeout_s=BUBBLE_TIMEOUT_S, alive=page.alive)
    if bubble is None:
        return SendOutcome(
            RETRY, "no outgoing bubble appeared after clicking Send", step="confirm the bubble", role="outgoing"
        )
    position = len(before)

    def ticked() -> str | None:
        now = _same_text(page, text)
        ident = bubble.get("id")
        current = next((b for b in now if b.get("id") == ident), None) if ident else None
        if current is None and not ident and len(now) > position:
            current = now[position]
        tick = current.get("tick") if current else None
        return tick if _left_device(tick) or tick == TICK_FAILED else None

    tick = _wait(ticked, timeout_s=ack_timeout_s, alive=page.alive)
    if _left_device(tick):
        return SendOutcome(SENT, "", {"wa_id": bubble.get("id")})
    if tick == TICK_FAILED:
        return SendOutcome(RETRY, "WhatsApp marked the message as failed (msg-failed)", step="deliver")
    return SendOutcome(
        RETRY, f"no tick within {ack_timeout_s:g} s (still on the clock)", step="confirm delivery", role="tick"
    )
