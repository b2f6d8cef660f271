"""Everything this project knows about WhatsApp Web's page, in one table.

When WhatsApp changes its page, this is the file to update. Markers that survive translation come first
(ids, data-ref, data-icon, data-tab, element structure); visible text and aria-labels are localized and used
only as a fallback.
"""

from __future__ import annotations

SELECTORS: dict[str, str] = {
    # QR screen: div[data-ref] holds the QR payload and wraps the canvas.
    "qr_ref": "div[data-ref]",
    "qr_canvas": "div[data-ref] canvas",
    "qr_reload": "span[data-icon='refresh-large'], span[data-icon='refresh-l-light']",
    # Loading: a <progress> bar and "Loading your chats".
    "loading": "progress",
    # Main screen.
    "main": "#side, #pane-side",
    "chat_list": "#pane-side",
    # Banners.
    "offline_banner": "span[data-icon='alert-computer'], span[data-icon='alert-phone']",
    # Popups (conflict, another tab, invalid number, "Starting chat").
    "popup": "div[data-animate-modal-popup='true']",
    "popup_buttons": "div[data-animate-modal-popup='true'] button",
    # Chat.
    "chat": "#main",
    "compose": "#main footer div[contenteditable='true'][role='textbox'][data-tab='10']",
    "send_icon": "#main footer span[data-icon='wds-ic-send-filled'], #main footer span[data-icon='send']",
    "outgoing": "#main div.message-out",
}

# Delivery ticks of an outgoing bubble (data-icon values).
TICK_PENDING = "msg-time"
TICKS_ACKED = ("msg-check", "msg-dblcheck")
TICK_FAILED = "msg-failed"

# Text fallbacks (English) for popups whose structure alone does not tell them apart.
CONFLICT_TEXTS = ("open on another computer", "open in another window")

# One script reads every marker at once: one WebDriver round trip per probe.
PROBE_SCRIPT = """
const S = arguments[0];
const q = (sel) => document.querySelector(sel);
const ref = q(S.qr_ref);
const popup = q(S.popup);
const buttons = popup ? popup.querySelectorAll('button').length : 0;
return {
  url: location.href,
  ready_state: document.readyState,
  qr: ref ? ref.getAttribute('data-ref') : null,
  qr_canvas: !!q(S.qr_canvas),
  qr_idle: !!q(S.qr_reload),
  loading: !!q(S.loading),
  main: !!q(S.main),
  offline: !!q(S.offline_banner),
  popup_text: popup ? (popup.innerText || '').slice(0, 300) : null,
  popup_buttons: buttons,
  chat_open: !!q(S.chat),
};
"""

# The outgoing bubbles of the open chat: text, tick and WhatsApp's message id.
OUTGOING_SCRIPT = """
const S = arguments[0];
return Array.from(document.querySelectorAll(S.outgoing)).map((el) => {
  const textEl = el.querySelector('span.selectable-text');
  const tick = el.querySelector('span[data-icon^="msg-"]');
  const pre = el.querySelector('[data-pre-plain-text]');
  return {
    id: el.getAttribute('data-id') || '',
    text: textEl ? textEl.innerText : '',
    tick: tick ? tick.getAttribute('data-icon') : null,
    pre: pre ? pre.getAttribute('data-pre-plain-text') : '',
  };
});
"""

# The compose box's text, as lines joined by newlines (the lexical editor keeps one <p> a line).
COMPOSE_TEXT_SCRIPT = """
const box = document.querySelector(arguments[0]);
if (!box) return null;
const paragraphs = box.querySelectorAll('p');
const lines = paragraphs.length ? Array.from(paragraphs).map((p) => p.textContent) : [box.textContent];
return lines.join('\\n').replace(/\\u00a0/g, ' ').trim();
"""
