"""Markup variants of the simulated page: how WhatsApp Web's markup drifts, one knob at a time.

A variant changes only the page's markup (static/app.js applies it: `VARIANTS` there, keyed by these names);
the fake phone and the server behave the same. Pages learn the variant from the `hello` call, so a change
takes effect on a page's next load. Each variant is modelled on a kind of change seen on the real page (the
compose box's data-tab went from 6 to 10, the send icon from `send` to `wds-ic-send-filled`, `msg-dblcheck-ack`
appeared for read), except `unrecognized_main`, a stand-in for a redesign nobody has seen yet:
its main screen has none of #side, #pane-side, div[role=grid][aria-label="Chat list"], the data-tab 3 search box,
a progress bar or a QR, only `div[data-panel="chats"]`; an open chat there is the usual #main with its footer
compose box and send button, so sending works once the user overrides the 'main' selector.
"""

from __future__ import annotations

DEFAULT_VARIANT = "default"

# name -> one-line meaning (shown in `continuity simulator --help`)
VARIANTS: dict[str, str] = {
    "default": "today's page: #side, #pane-side, compose data-tab 10, icon wds-ic-send-filled, msg-check ticks",
    "compose_tab_11": "the compose box has data-tab 11 instead of 10 (the send button data-tab 12)",
    "send_icon_renamed": "send icon span[data-icon=ic-paper-plane]; the button keeps aria-label 'Send' (localized)",
    "ticks_renamed": "acked ticks are msg-check-v2 and msg-dblcheck-ack (msg-time and msg-failed unchanged)",
    "side_ids_renamed": "no #side / #pane-side ids; the 'Chat list' grid and the data-tab 3 search box stay",
    "unrecognized_main": "unknown main screen; one stable marker: div[data-panel=\"chats\"] (a 'main' override)",
    "compose_moved": "the composer left the footer (section.composer-v4) and lost role=textbox and its aria-label",
}


def check_variant(name: object) -> str:
    """`name` if it is a known variant; ValueError naming the known ones otherwise."""
    if not isinstance(name, str) or name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known variants: {', '.join(VARIANTS)}")
    return name
