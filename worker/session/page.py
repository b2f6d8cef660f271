"""The WhatsApp Web tab, driven through Selenium with a hard bound on every call (seconds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from .selectors import COMPOSE_TEXT_SCRIPT, OUTGOING_SCRIPT, PROBE_SCRIPT, SELECTORS

T = TypeVar("T")

PROBE_TIMEOUT_S = 5.0
NAVIGATE_TIMEOUT_S = 20.0


class PageHang(TimeoutError):
    """A WebDriver call did not return within its bound (frozen page or hung browser)."""


class Page:
    """One browser tab on WhatsApp Web. Every call sets selenium's HTTP timeout to its own bound first, so a
    frozen page or browser raises within seconds instead of stalling the worker's loop."""

    def __init__(self, driver: Any, *, base_url: str, alive: Callable[[], None] = lambda: None) -> None:
        self.driver = driver
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.alive = alive  # called between polls of a long wait: lets the worker loop beat its heartbeat

    def _bounded(self, timeout_s: float, call: Callable[[], T]) -> T:
        config = getattr(self.driver.command_executor, "_client_config", None)
        if config is not None:
            config.timeout = timeout_s
        started = time.monotonic()
        try:
            return call()
        except Exception as exc:
            if time.monotonic() - started >= timeout_s * 0.95 or "timed out" in str(exc).lower():
                raise PageHang(f"WebDriver call took over {timeout_s:g} s: {type(exc).__name__}") from exc
            raise

    # -- reading ------------------------------------------------------------------------------------------
    def probe(self) -> dict[str, Any]:
        """Every marker of the page in one round trip."""
        result = self._bounded(PROBE_TIMEOUT_S, lambda: self.driver.execute_script(PROBE_SCRIPT, SELECTORS))
        return dict(result or {})

    def outgoing(self) -> list[dict[str, Any]]:
        """The open chat's outgoing bubbles, oldest first: text, tick, id."""
        result = self._bounded(PROBE_TIMEOUT_S, lambda: self.driver.execute_script(OUTGOING_SCRIPT, SELECTORS))
        return list(result or [])

    def compose_text(self) -> str | None:
        return self._bounded(  # type: ignore[no-any-return]
            PROBE_TIMEOUT_S, lambda: self.driver.execute_script(COMPOSE_TEXT_SCRIPT, SELECTORS["compose"])
        )

    # -- acting -------------------------------------------------------------------------------------------
    def open(self, path: str = "") -> None:
        """Navigate to WhatsApp Web (plus `path`, e.g. "send?phone=...")."""
        self._bounded(NAVIGATE_TIMEOUT_S, lambda: self.driver.get(self.base_url + path))

    def open_chat(self, phone: str, text: str | None = None) -> None:
        """/send?phone=...&text=...: what working bots use to open a chat with the text prefilled."""
        path = f"send?phone={quote(phone)}" + (f"&text={quote(text)}" if text else "")
        self.open(path)

    def reload(self) -> None:
        self._bounded(NAVIGATE_TIMEOUT_S, self.driver.refresh)

    def click_first(self, selector: str, *, last: bool = False) -> bool:
        """Click the first (or last) element matching `selector`; False when there is none."""
        script = (
            "const els = document.querySelectorAll(arguments[0]); const el = arguments[1] ? els[els.length - 1]"
            " : els[0]; if (!el) return false; (el.closest('button') || el).click(); return true;"
        )
        return bool(self._bounded(PROBE_TIMEOUT_S, lambda: self.driver.execute_script(script, selector, last)))

    def set_compose(self, text: str) -> None:
        """Replace the compose box's content with `text` by typing (Shift+Enter between lines)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        def type_text() -> None:
            box = self.driver.find_element(By.CSS_SELECTOR, SELECTORS["compose"])
            box.click()
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(Keys.DELETE)
            for index, line in enumerate(text.split("\n")):
                if index:
                    box.send_keys(Keys.SHIFT, Keys.ENTER)
                box.send_keys(line)

        self._bounded(NAVIGATE_TIMEOUT_S, type_text)

    def press_enter_in_compose(self) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self._bounded(
            PROBE_TIMEOUT_S,
            lambda: self.driver.find_element(By.CSS_SELECTOR, SELECTORS["compose"]).send_keys(Keys.ENTER),
        )
