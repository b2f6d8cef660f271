"""The JavaScript run in WhatsApp Web's page, one WebDriver round trip each. Those built on FIND are given the
effective role table (selectors.py, a user's overrides first) as arguments[0] and report which selector matched
for each role they looked at."""

from __future__ import annotations

# Shared by every script: find(role) / findAll(role, root) try the role's selectors in order and record in M which
# one matched (-1: none); BAD lists the selectors the browser refused as invalid.
FIND = """
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
    FIND
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
    FIND
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
    FIND
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
ELEMENT_SCRIPT = FIND + "return {element: find(arguments[1]), matches: M, bad: BAD};"

# Click the element of one role (its enclosing button, if any); {clicked, matches}.
CLICK_SCRIPT = (
    FIND
    + """
const el = find(arguments[1]);
if (el) { (el.closest('button') || el).click(); }
return {clicked: !!el, matches: M, bad: BAD};
"""
)

# Click the popup button whose label is one of arguments[1] (lower case); never one chosen by position.
CLICK_LABELLED_SCRIPT = (
    FIND
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
