"""Reading incoming messages off WhatsApp Web: unread chats in the chat list, incoming bubbles of the open chat.

The scripts find elements through the roles of selectors.py (chat_row, chat_title, unread_badge, incoming,
message_header, message_text, chat_header_title), so a changed page is survived on a fallback and reported like
every other role. The parsing below is pure (tested without a browser)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from .page import PROBE_TIMEOUT_S, Page
from .page_scripts import FIND

MAX_BUBBLES = 300  # the newest incoming bubbles of the open chat read per look (what the page has loaded)

# One round trip: the rows showing an unread badge (title, count) and, when a chat is open, its title and the
# newest incoming bubbles (data-id, text with emoji as their alt text, header).
SCAN_SCRIPT = (
    FIND
    + """
function textOf(el) {
  let out = '';
  el.childNodes.forEach((n) => {
    if (n.nodeType === Node.TEXT_NODE) out += n.data;
    else if (n.nodeName === 'IMG') out += n.getAttribute('alt') || '';
    else if (n.nodeName === 'BR') out += '\\n';
    else out += textOf(n);
  });
  return out;
}
const rows = [];
findAll('chat_row').forEach((row) => {
  const badge = find('unread_badge', row);
  if (!badge) return;
  const title = find('chat_title', row);
  const digits = ((badge.getAttribute('aria-label') || '') + ' ' + (badge.textContent || '')).match(/\\d+/);
  rows.push({title: title ? (title.getAttribute('title') || title.textContent || '') : '',
             unread: digits ? parseInt(digits[0], 10) : 1});
});
const out = {rows: rows, open: null, bubbles: []};
const head = find('chat_header_title');
if (head) {
  out.open = head.getAttribute('title') || head.textContent || '';
  const outs = findAll('outgoing');
  const lastOut = outs.length ? outs[outs.length - 1] : null;
  out.bubbles = findAll('incoming').slice(-arguments[1]).map((el) => {
    const idEl = el.closest('[data-id]') || el.querySelector('[data-id]');
    const textEl = find('message_text', el);
    const header = find('message_header', el);
    return {data_id: idEl ? idEl.getAttribute('data-id') : '', text: textEl ? textOf(textEl) : '',
            pre: header ? header.getAttribute('data-pre-plain-text') : '',
            after_out: !!(lastOut && (lastOut.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING))};
  });
}
out.matches = M;
out.bad = BAD;
return out;
"""
)

# The row of the chat titled arguments[1] (a WebElement to click), or null.
ROW_SCRIPT = (
    FIND
    + """
const wanted = arguments[1];
const row = findAll('chat_row').find((r) => {
  const t = find('chat_title', r);
  return t && (t.getAttribute('title') || t.textContent || '') === wanted;
});
return {row: row || null, matches: M, bad: BAD};
"""
)

_PRE = re.compile(r"^\[(?P<when>[^\]]*)\]\s?(?P<name>.*?):\s*$", re.S)


@dataclass(frozen=True)
class Bubble:
    """One incoming bubble as the page shows it."""

    data_id: str
    text: str
    pre: str
    after_out: bool = False  # after the chat's last outgoing bubble (arrived after our last send)


@dataclass(frozen=True)
class Scan:
    """What one look at the page found: unread rows (title, count), the open chat's title and bubbles."""

    unread: list[tuple[str, int]]
    open_title: str | None
    bubbles: list[Bubble]


def parse_data_id(data_id: str) -> dict[str, str] | None:
    """'false_<jid>_<ID>[_<sender jid>]' -> {chat_jid, wa_id, sender_jid}; None for an outgoing or odd one."""
    if not data_id.startswith("false_"):
        return None
    rest = data_id[len("false_") :]
    at = rest.find("@")
    if at < 0:
        return None
    cut = rest.find("_", at)
    if cut < 0:
        return None
    jid, tail = rest[:cut], rest[cut + 1 :]
    wa_id, _, sender = tail.partition("_")
    if not wa_id:
        return None
    return {"chat_jid": jid, "wa_id": wa_id, "sender_jid": sender or jid}


def parse_pre(pre: str) -> tuple[str, str]:
    """'[10:31, 11/30/2026] Alice: ' -> ('10:31, 11/30/2026', 'Alice'); ('', '') when it does not parse."""
    found = _PRE.match(pre or "")
    return (found.group("when").strip(), found.group("name").strip()) if found else ("", "")


def _digits(jid: str) -> str | None:
    user, _, server = jid.partition("@")
    return user if server == "c.us" and user.isdigit() else None


def to_message(bubble: Bubble, *, chat_title: str) -> dict[str, Any] | None:
    """The inbox record of a bubble (id = WhatsApp's message key), or None when its data-id does not parse."""
    parts = parse_data_id(bubble.data_id)
    if parts is None:
        return None
    when, name = parse_pre(bubble.pre)
    group = parts["chat_jid"].endswith("@g.us")
    person = _digits(parts["chat_jid"])
    return {
        "id": bubble.data_id,
        "wa_id": parts["wa_id"],
        "chat_jid": parts["chat_jid"],
        "chat": chat_title if group or person is None else person,
        "group": group,
        "chat_title": chat_title,
        "sender": name or chat_title,
        "sender_jid": parts["sender_jid"],
        "sender_phone": _digits(parts["sender_jid"]),
        "text": bubble.text,
        "sent_at_text": when,
    }


def select_new(bubbles: list[Bubble], known: set[str], *, unread: int, baseline: set[str] | None) -> list[Bubble]:
    """The bubbles of an open chat to store, oldest first: the last `unread` ones, those after the newest one
    already stored, and (for a chat watched while open) those not in its `baseline`; never one in `known`."""
    chosen: set[int] = set()
    if unread > 0:
        chosen.update(range(max(0, len(bubbles) - unread), len(bubbles)))
    last_known = max((i for i, b in enumerate(bubbles) if b.data_id in known), default=None)
    if last_known is not None:
        chosen.update(range(last_known + 1, len(bubbles)))
    if baseline is not None:
        chosen.update(i for i, b in enumerate(bubbles) if b.data_id not in baseline)
    return [b for i, b in enumerate(bubbles) if i in chosen and b.data_id and b.data_id not in known]


def first_sight_baseline(bubbles: list[Bubble], *, unread: int) -> set[str]:
    """For a chat found open (the sender opened it, which read it): the bubbles taken as old. Not old: the last
    `unread` (its badge at the scan before) and those after the last outgoing bubble (they came after our send,
    and were read only because the chat was open). Errs towards storing: an old message after our last send is
    stored once, never a new one missed."""
    old = {b.data_id for b in bubbles if not b.after_out}
    if unread > 0:
        old -= {b.data_id for b in bubbles[-unread:]}
    return old


def scan(page: Page) -> Scan:
    """One look: unread rows and the open chat."""
    result = page._script(SCAN_SCRIPT, MAX_BUBBLES)
    rows = [(str(r.get("title") or ""), int(r.get("unread") or 0)) for r in result.get("rows") or []]
    bubbles = [
        Bubble(str(b.get("data_id") or ""), str(b.get("text") or ""), str(b.get("pre") or ""), bool(b.get("after_out")))
        for b in result.get("bubbles") or []
    ]
    open_title = result.get("open")
    return Scan([(t, n) for t, n in rows if t], str(open_title) if open_title is not None else None, bubbles)


def open_row(page: Page, title: str, *, min_bubbles: int = 0, timeout_s: float = 8.0) -> Scan | None:
    """Click the chat row titled `title` and wait until that chat is open and shows `min_bubbles` incoming
    bubbles (as many as it has, after `timeout_s`); its scan, or None (no such row, or it did not open)."""
    row = page._script(ROW_SCRIPT, title).get("row")
    if row is None:
        return None
    page._bounded(PROBE_TIMEOUT_S, row.click)
    deadline = time.monotonic() + timeout_s
    opened: Scan | None = None
    while time.monotonic() < deadline:
        found = scan(page)
        if found.open_title == title:
            opened = found
            if len(found.bubbles) >= min(min_bubbles, MAX_BUBBLES):
                return found
        page.alive()
        time.sleep(0.05)
    return opened


def close_chat(page: Page) -> None:
    """Press Escape: WhatsApp Web closes the open chat, so new messages show as unread badges again."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page._bounded(PROBE_TIMEOUT_S, lambda: ActionChains(page.driver).send_keys(Keys.ESCAPE).perform())
