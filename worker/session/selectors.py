"""Everything this project knows about WhatsApp Web's page, in one table of roles (page_scripts.py holds the
scripts that use it in the browser).

Each role (the compose box, the send button, the chat list, ...) has an ordered list of selectors, most stable
first: ids and element structure, then attributes (data-icon, data-tab), then localized text and aria-labels
(English). The first that matches wins, and which one matched is reported (`continuity whatsapp inspect`, the
heartbeat's `whatsapp.selectors`, health). A user's `[whatsapp.selectors]` entry for a role is tried before the
table's. When WhatsApp changes its page, this is the file to update.

A selector is CSS; an entry of the table may add ` :: text|other text`: then the element must also contain one of
those texts (case-insensitive, in its text or aria-label).
"""

from __future__ import annotations

from collections.abc import Mapping

# The table: a role's line is `name: what it is` (for messages: "compose box not found (role compose)"), then its
# selectors, indented, most stable first; `#` lines are comments.
_TABLE = """
# QR screen: div[data-ref] holds the QR payload and wraps the canvas.
qr: QR code
    div[data-ref]
    canvas[aria-label][role='img'] :: QR
qr_reload: QR reload button
    span[data-icon='refresh-large']
    span[data-icon='refresh-l-light']
    span[data-icon^='refresh']
    button :: reload QR
# Loading: a <progress> bar and "Loading your chats".
loading: loading bar
    progress
# Main screen (logged in).
main: main screen
    #side
    #pane-side
    div[role='grid'][aria-label]
    [contenteditable='true'][data-tab='3'], input[data-tab='3']
    div[aria-label='Chat list']
chat_list: chat list
    #pane-side [role='grid']
    #pane-side
    div[role='grid'][aria-label]
    div[aria-label='Chat list']
offline_banner: offline banner
    span[data-icon='alert-computer'], span[data-icon='alert-phone']
    span[data-icon^='alert-']
    div :: Computer not connected|Trying to reach phone
# Popups (conflict, another tab, invalid number, "Starting chat").
popup: popup
    div[data-animate-modal-popup='true']
    [role='dialog']
popup_button: popup button
    div[data-animate-modal-popup='true'] button
    [role='dialog'] button
# An open chat.
chat: open chat
    #main
    div:has(> footer [contenteditable='true'][role='textbox'])
compose: compose box
    #main footer div[contenteditable='true'][role='textbox']
    footer div[contenteditable='true'][role='textbox']
    div[contenteditable='true'][data-tab='10']
    footer [contenteditable='true']
    div[contenteditable='true'][aria-label='Type a message']
send_button: send button
    #main footer span[data-icon='wds-ic-send-filled']
    #main footer span[data-icon='send']
    #main footer span[data-icon*='send']
    #main footer button[aria-label='Send']
outgoing: outgoing message
    #main div.message-out
    #main [data-id^='true_']
message_text: message text
    span.selectable-text
    [data-pre-plain-text] span[dir]
    [data-pre-plain-text]
tick: delivery tick
    span[data-icon^='msg-']
    [data-icon*='check']
    [data-icon*='time']
# The inbox (worker/session/incoming.py): chat rows with their unread badges, incoming bubbles.
chat_row: chat list row
    #pane-side div[aria-label][role='grid'] div[role='row']
    #pane-side [role='row']
    div[aria-label='Chat list'] [role='row']
    [role='grid'][aria-label] [role='row']
chat_title: chat title
    span[title]
    [title]
# The badge's aria-label is localized: English first, then the structure (a span labelled with a number).
unread_badge: unread badge
    span[aria-label$='unread message'], span[aria-label$='unread messages']
    span[aria-label*='unread' i]
    span[aria-label*='ungelesen' i], span[aria-label*='não lida' i], span[aria-label*='no leído' i]
incoming: incoming message
    #main div.message-in
    #main [data-id^='false_']
message_header: message header
    div.copyable-text[data-pre-plain-text]
    [data-pre-plain-text]
chat_header_title: open chat's title
    #main header span[title]
    #main header [title]
# Groups (worker/session/groups.py): the chat list's search box (a lexical editor; an <input> in some builds).
search_box: chat search box
    #side [contenteditable='true'][data-tab='3']
    [contenteditable='true'][data-tab='3']
    input[data-tab='3']
    [contenteditable='true'][role='textbox'][aria-label*='Search' i]
    input[type='search']
# Linking by phone number (worker/session/linking.py): QR screen button, number field, Next, code screen.
link_with_phone: 'Log in with phone number' button
    [role='button'] :: Log in with phone number|Link with phone number
    button :: Log in with phone number|Link with phone number
link_phone_input: phone number field
    input[aria-label='Type your phone number.']
    input[aria-label*='phone number' i]
    input[type='tel']
link_next: 'Next' button
    [role='button'] :: Next
    button :: Next
link_code: linking code
    [aria-details='link-device-phone-number-code-screen-instructions']
    [data-link-code]
link_error: error message
    [role='alert']
    [aria-live='assertive']
"""


def _parse(table: str) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """(ROLES, ROLE_LABELS) from the table's text."""
    chains: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    for line in table.splitlines():
        if line.startswith("    "):
            chains[next(reversed(chains))].append(line.strip())
        elif line.strip() and not line.startswith("#"):
            role, _, label = line.partition(": ")
            chains[role], labels[role] = [], label
    return {role: tuple(chain) for role, chain in chains.items()}, labels


ROLES, ROLE_LABELS = _parse(_TABLE)  # role -> its selectors, in order; role -> what it is

# The roles every probe looks for (the others only while a chat is open or a message is being sent).
PROBE_ROLES = ("qr", "qr_reload", "loading", "main", "chat_list", "offline_banner", "popup", "chat")

# Delivery ticks of an outgoing bubble (data-icon values). Any other tick means the message left the device.
TICK_PENDING = "msg-time"
TICK_FAILED = "msg-failed"

# Popups: the conflict popup is told apart by its text (English) or by a "Use here" button in a known language;
# the button clicked is always the one labelled "Use here", never one chosen by position.
CONFLICT_TEXTS = ("open on another computer", "open in another window")
USE_HERE_LABELS = ("use here", "hier verwenden", "usar aqui", "usar aquí", "utiliser ici", "usa qui", "gebruik hier")

MAX_OVERRIDE_CHARS = 500


def check_overrides(overrides: Mapping[str, str]) -> list[str]:
    """Problems with `[whatsapp.selectors]` found without a browser (unknown roles, selectors that cannot be
    CSS); the browser checks the syntax again when it starts."""
    problems = []
    for role, selector in overrides.items():
        if role not in ROLES:
            problems.append(f"whatsapp.selectors.{role}: unknown role (known roles: {', '.join(sorted(ROLES))})")
        elif not selector.strip() or len(selector) > MAX_OVERRIDE_CHARS:
            problems.append(f"whatsapp.selectors.{role}: a CSS selector of 1-{MAX_OVERRIDE_CHARS} characters")
        elif (why := _syntax_problem(selector)) is not None:
            problems.append(f"whatsapp.selectors.{role}: {selector!r} is not a valid CSS selector ({why})")
    return problems


def _syntax_problem(selector: str) -> str | None:
    closing = {"[": "]", "(": ")"}
    stack: list[str] = []
    quote: str | None = None
    for char in selector:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in closing:
            stack.append(closing[char])
        elif char in ")]":
            if not stack or stack.pop() != char:
                return f"unbalanced {char!r}"
        elif char in "{};":
            return f"{char!r} is not allowed"
    if quote or stack:
        return "unclosed quote or bracket"
    if selector.rstrip()[-1] in ">+~,":
        return "ends with a combinator"
    return None


def effective_roles(overrides: Mapping[str, str]) -> dict[str, list[str]]:
    """The table with each override tried first."""
    return {role: ([overrides[role]] if role in overrides else []) + list(chain) for role, chain in ROLES.items()}


def describe_match(role: str, index: int | None, *, overridden: bool) -> str:
    """ "override", "primary", "fallback N (selector)", "none" or "not seen yet" for a matched index."""
    if index is None:
        return "not seen yet"
    if index < 0:
        return "none"
    if overridden:
        if index == 0:
            return "override"
        index -= 1
    if index == 0:
        return "primary"
    return f"fallback {index} ({ROLES[role][index]})"
