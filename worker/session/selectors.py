"""Everything this project knows about WhatsApp Web's page, in one table of roles.

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

ROLES: dict[str, tuple[str, ...]] = {
    # QR screen: div[data-ref] holds the QR payload and wraps the canvas.
    "qr": ("div[data-ref]", "canvas[aria-label][role='img'] :: QR"),
    "qr_reload": (
        "span[data-icon='refresh-large']",
        "span[data-icon='refresh-l-light']",
        "span[data-icon^='refresh']",
        "button :: reload QR",
    ),
    # Loading: a <progress> bar and "Loading your chats".
    "loading": ("progress",),
    # Main screen (logged in).
    "main": (
        "#side",
        "#pane-side",
        "div[role='grid'][aria-label]",
        "[contenteditable='true'][data-tab='3'], input[data-tab='3']",
        "div[aria-label='Chat list']",
    ),
    "chat_list": (
        "#pane-side [role='grid']",
        "#pane-side",
        "div[role='grid'][aria-label]",
        "div[aria-label='Chat list']",
    ),
    "offline_banner": (
        "span[data-icon='alert-computer'], span[data-icon='alert-phone']",
        "span[data-icon^='alert-']",
        "div :: Computer not connected|Trying to reach phone",
    ),
    # Popups (conflict, another tab, invalid number, "Starting chat").
    "popup": ("div[data-animate-modal-popup='true']", "[role='dialog']"),
    "popup_button": ("div[data-animate-modal-popup='true'] button", "[role='dialog'] button"),
    # An open chat.
    "chat": ("#main", "div:has(> footer [contenteditable='true'][role='textbox'])"),
    "compose": (
        "#main footer div[contenteditable='true'][role='textbox']",
        "footer div[contenteditable='true'][role='textbox']",
        "div[contenteditable='true'][data-tab='10']",
        "footer [contenteditable='true']",
        "div[contenteditable='true'][aria-label='Type a message']",
    ),
    "send_button": (
        "#main footer span[data-icon='wds-ic-send-filled']",
        "#main footer span[data-icon='send']",
        "#main footer span[data-icon*='send']",
        "#main footer button[aria-label='Send']",
    ),
    "outgoing": ("#main div.message-out", "#main [data-id^='true_']"),
    "message_text": ("span.selectable-text", "[data-pre-plain-text] span[dir]", "[data-pre-plain-text]"),
    "tick": ("span[data-icon^='msg-']", "[data-icon*='check']", "[data-icon*='time']"),
    # The inbox (worker/session/incoming.py): chat rows with their unread badges, incoming bubbles.
    "chat_row": (
        "#pane-side div[aria-label][role='grid'] div[role='row']",
        "#pane-side [role='row']",
        "div[aria-label='Chat list'] [role='row']",
        "[role='grid'][aria-label] [role='row']",
    ),
    "chat_title": ("span[title]", "[title]"),
    # The badge's aria-label is localized: English first, then the structure (a span labelled with a number).
    "unread_badge": (
        "span[aria-label$='unread message'], span[aria-label$='unread messages']",
        "span[aria-label*='unread' i]",
        "span[aria-label*='ungelesen' i], span[aria-label*='não lida' i], span[aria-label*='no leído' i]",
    ),
    "incoming": ("#main div.message-in", "#main [data-id^='false_']"),
    "message_header": ("div.copyable-text[data-pre-plain-text]", "[data-pre-plain-text]"),
    "chat_header_title": ("#main header span[title]", "#main header [title]"),
    # Groups (worker/session/groups.py): the chat list's search box (a lexical editor; an <input> in some builds).
    "search_box": (
        "#side [contenteditable='true'][data-tab='3']",
        "[contenteditable='true'][data-tab='3']",
        "input[data-tab='3']",
        "[contenteditable='true'][role='textbox'][aria-label*='Search' i]",
        "input[type='search']",
    ),
    # Linking by phone number (worker/session/linking.py): QR screen button, number field, Next, code screen.
    "link_with_phone": (
        "[role='button'] :: Log in with phone number|Link with phone number",
        "button :: Log in with phone number|Link with phone number",
    ),
    "link_phone_input": (
        "input[aria-label='Type your phone number.']",
        "input[aria-label*='phone number' i]",
        "input[type='tel']",
    ),
    "link_next": ("[role='button'] :: Next", "button :: Next"),
    "link_code": ("[aria-details='link-device-phone-number-code-screen-instructions']", "[data-link-code]"),
    "link_error": ("[role='alert']", "[aria-live='assertive']"),
}

# The roles every probe looks for (the others only while a chat is open or a message is being sent).
PROBE_ROLES = ("qr", "qr_reload", "loading", "main", "chat_list", "offline_banner", "popup", "chat")

# What each role is, for messages ("compose box not found (role compose)").
ROLE_LABELS: dict[str, str] = {
    "qr": "QR code",
    "qr_reload": "QR reload button",
    "loading": "loading bar",
    "main": "main screen",
    "chat_list": "chat list",
    "offline_banner": "offline banner",
    "popup": "popup",
    "popup_button": "popup button",
    "chat": "open chat",
    "compose": "compose box",
    "send_button": "send button",
    "outgoing": "outgoing message",
    "message_text": "message text",
    "tick": "delivery tick",
    "chat_row": "chat list row",
    "chat_title": "chat title",
    "unread_badge": "unread badge",
    "incoming": "incoming message",
    "message_header": "message header",
    "chat_header_title": "open chat's title",
    "search_box": "chat search box",
    "link_with_phone": "'Log in with phone number' button",
    "link_phone_input": "phone number field",
    "link_next": "'Next' button",
    "link_code": "linking code",
    "link_error": "error message",
}

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


# Shared by every script: find(role) / findAll(role, root) try the role's selectors in order and record in M which
# one matched (-1: none); BAD lists the selectors the browser refused as invalid.
_FIND = """
const R = arguments[0];
const M = {};
const BAD = [];
function matchesText(el, texts) {
  const hay = ((el.textContent || '') + ' ' + (el.getAttribute('aria-label') || '')).toLowerCase();
  return texts.some((t) => hay.includes(t.toLowerCase()));
}
function findAll(role, root) {
  const list = R[role] || [];
  for (let i = 0; i < list.length; i++) {
    const parts = list[i].split(' :: ');
    let found;
    try { found = Array.from((root || document).querySelectorAll(parts[0])); }
    catch (e) { BAD.push(role + ': ' + list[i]); continue; }
    if (parts.length > 1) { found = found.filter((el) => matchesText(el, parts[1].split('|'))); }
    if (found.length) { if (!root || M[role] === undefined || M[role] < 0) M[role] = i; return found; }
  }
  if (M[role] === undefined) M[role] = -1;
  return [];
}
function find(role, root) { return findAll(role, root)[0] || null; }
"""

# One script reads every marker at once: one WebDriver round trip per probe.
PROBE_SCRIPT = (
    _FIND
    + """
const ref = find('qr');
const popup = find('popup');
const buttons = popup ? Array.from(popup.querySelectorAll('button, [role="button"]')) : [];
let version = null;
try { version = (window.Debug && window.Debug.VERSION) ? String(window.Debug.VERSION) : null; } catch (e) {}
const out = {
  url: location.href,
  ready_state: document.readyState,
  qr: ref ? (ref.closest('[data-ref]') ? ref.closest('[data-ref]').getAttribute('data-ref') : '') : null,
  qr_idle: !!find('qr_reload'),
  loading: !!find('loading'),
  main: !!find('main'),
  chat_list: !!find('chat_list'),
  offline: !!find('offline_banner'),
  popup_text: popup ? (popup.innerText || '').slice(0, 300) : null,
  popup_buttons: buttons.length,
  popup_labels: buttons.map((b) => (b.innerText || b.getAttribute('aria-label') || '').trim().slice(0, 40)),
  chat_open: !!find('chat'),
  version: version,
};
const linkCode = find('link_code');  // linking by phone number: the code screen, or the number entry screen
if (linkCode) {
  const holder = linkCode.closest('[data-link-code]') || linkCode.querySelector('[data-link-code]') || linkCode;
  out.link_code = (holder.getAttribute('data-link-code') || holder.textContent || '').trim();
}
if (find('link_phone_input')) {
  out.link_phone_input = true;
  const error = find('link_error');
  out.link_error = error ? (error.innerText || error.textContent || '').trim().slice(0, 300) : null;
}
if (out.chat_open) { out.compose = !!find('compose'); }
out.matches = M;
out.bad = BAD;
return out;
"""
)

# The outgoing bubbles of the open chat: text, tick and WhatsApp's message id (on the bubble or an ancestor).
OUTGOING_SCRIPT = (
    _FIND
    + """
const bubbles = findAll('outgoing').map((el) => {
  const textEl = find('message_text', el);
  const tick = find('tick', el);
  const idEl = el.closest('[data-id]') || el.querySelector('[data-id]');
  return {
    id: idEl ? idEl.getAttribute('data-id') : '',
    text: textEl ? textEl.textContent : '',
    tick: tick ? tick.getAttribute('data-icon') : null,
  };
});
return {bubbles: bubbles, matches: M, bad: BAD};
"""
)

# The compose box's text, as lines joined by newlines (the lexical editor keeps one <p> a line); null: no box.
COMPOSE_TEXT_SCRIPT = (
    _FIND
    + """
const box = find('compose');
let text = null;
if (box) {
  const paragraphs = box.querySelectorAll('p');
  const lines = paragraphs.length ? Array.from(paragraphs).map((p) => p.textContent) : [box.textContent];
  text = lines.join('\\n').replace(/\\u00a0/g, ' ').trim();
}
return {text: text, matches: M, bad: BAD};
"""
)

# The element of one role (a WebElement for Selenium), or null.
ELEMENT_SCRIPT = _FIND + "return {element: find(arguments[1]), matches: M, bad: BAD};"

# Click the element of one role (its enclosing button, if any); {clicked, matches}.
CLICK_SCRIPT = (
    _FIND
    + """
const el = find(arguments[1]);
if (el) { (el.closest('button') || el).click(); }
return {clicked: !!el, matches: M, bad: BAD};
"""
)

# Click the popup button whose label is one of arguments[1] (lower case); never one chosen by position.
CLICK_LABELLED_SCRIPT = (
    _FIND
    + """
const popup = find('popup');
const wanted = arguments[1];
const buttons = popup ? Array.from(popup.querySelectorAll('button, [role="button"]')) : [];
const label = (b) => (b.innerText || b.getAttribute('aria-label') || '').trim().toLowerCase();
const hit = buttons.find((b) => wanted.includes(label(b)));
if (hit) { hit.click(); }
return {clicked: !!hit, matches: M, bad: BAD};
"""
)

# Which of the given selectors the browser refuses as CSS (a user's overrides, checked at start).
VALIDATE_SCRIPT = """
const bad = [];
for (const [role, sel] of Object.entries(arguments[0])) {
  try { document.querySelector(sel); } catch (e) { bad.push([role, String(e.message || e)]); }
}
return bad;
"""
