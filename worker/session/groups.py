"""Opening a group's chat by its exact title: through the search box (the chat list is virtualised: a row outside
the view is not in the page), else through the rows the chat list shows.

A recipient "group:NAME" (`recipient_id`, watchdog/instance/_config.py) is sent like a person's message once its
chat is open (sender.py); an unknown group fails for good with a reason that says what to check.
"""

from __future__ import annotations

import time
from typing import Any

from continuity.watchdog.instance import GROUP_PREFIX

from .page import Page, RoleNotFound
from .page_scripts import FIND

SEARCH_WAIT_S = 6.0  # s for the search results to show the group (the page filters as one types)
MAIN_WAIT_S = 20.0
CHAT_OPEN_TIMEOUT_S = 20.0
POLL_S = 0.1

# The chat list rows whose title is exactly arguments[1]; arguments[2]: click the first one.
_ROWS_SCRIPT = (
    FIND
    + """
const wanted = arguments[1];
const rows = findAll('chat_row');
const hits = rows.filter((row) => {
  const el = find('chat_title', row);
  const title = el ? (el.getAttribute('title') || el.textContent || '') : '';
  return title.trim() === wanted;
});
if (hits.length && arguments[2]) {
  const target = hits[0];
  ['mousedown', 'mouseup'].forEach((type) => target.dispatchEvent(new MouseEvent(type, {bubbles: true})));
  target.click();
}
return {rows: rows.length, hits: hits.length, list: !!find('chat_list'), matches: M, bad: BAD};
"""
)

# The open chat's title (its header), or null.
_HEADER_SCRIPT = (
    FIND
    + """
const el = find('chat') ? find('chat_header_title') : null;
const title = el ? (el.getAttribute('title') || el.textContent || '').trim() : null;
return {title: title, matches: M, bad: BAD};
"""
)


def is_group(recipient: str) -> bool:
    """True for a "group:NAME" recipient."""
    return recipient.startswith(GROUP_PREFIX)


def group_title(recipient: str) -> str:
    return recipient[len(GROUP_PREFIX) :]


def _wait(check: Any, *, timeout_s: float, page: Page) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        page.alive()
        time.sleep(POLL_S)


def _rows(page: Page, title: str, *, click: bool) -> dict[str, Any]:
    return page._script(_ROWS_SCRIPT, title, click)


def open_title(page: Page) -> str | None:
    """The title of the chat open now (None: no chat open)."""
    title = page._script(_HEADER_SCRIPT).get("title")
    return None if title is None else str(title)


def _type_search(page: Page, text: str) -> bool:
    """Replace the search box's text with `text`; False when the page has no search box."""
    from selenium.webdriver.common.keys import Keys

    box = page.element("search_box")
    if box is None:
        return False

    def typing() -> None:
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        if text:
            box.send_keys(text)

    page._bounded(CHAT_OPEN_TIMEOUT_S, typing)
    return True


def open_group(page: Page, recipient: str) -> str | None:
    """Open the chat of group `recipient` ("group:NAME"); None when it is open, else the reason it never will be
    (no group with that exact title). Raises TimeoutError / RoleNotFound for what a later attempt may overcome."""
    title = group_title(recipient)
    if open_title(page) == title:
        return None
    if not page.probe().get("main"):
        page.open()  # e.g. still on a /send page that failed: back to the chat list
        if not _wait(lambda: page.probe().get("main"), timeout_s=MAIN_WAIT_S, page=page):
            raise TimeoutError(f"the chat list did not show within {MAIN_WAIT_S:g} s (to open {recipient!r})")
    searched = _type_search(page, title)
    try:
        found = _wait(lambda: _rows(page, title, click=False)["hits"], timeout_s=SEARCH_WAIT_S, page=page)
        if not found:
            listing = _rows(page, title, click=False)
            if not listing["list"] and not searched:
                raise RoleNotFound("search_box", step="find the group")
            return (
                f"no group titled {title!r} in WhatsApp's chat list (searched for it): a {GROUP_PREFIX} recipient "
                "must be a group this account is in, named by its exact title (case and spaces count)"
            )
        _rows(page, title, click=True)
        opened = _wait(lambda: open_title(page) == title, timeout_s=CHAT_OPEN_TIMEOUT_S, page=page)
    finally:
        if searched:
            _type_search(page, "")  # the chat list unfiltered again (the inbox reads its rows and badges)
    if not opened:
        raise TimeoutError(f"the chat of group {title!r} did not open within {CHAT_OPEN_TIMEOUT_S:g} s")
    return None
