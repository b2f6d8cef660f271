"""The WhatsApp Web tab, driven through Selenium with a hard bound on every call (seconds)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from .page_scripts import (
    CLICK_LABELLED_SCRIPT,
    CLICK_SCRIPT,
    COMPOSE_TEXT_SCRIPT,
    ELEMENT_SCRIPT,
    OUTGOING_SCRIPT,
    PROBE_SCRIPT,
    VALIDATE_SCRIPT,
)
from .selectors import ROLE_LABELS, ROLES, USE_HERE_LABELS, describe_match, effective_roles

T = TypeVar("T")

PROBE_TIMEOUT_S = 5.0
NAVIGATE_TIMEOUT_S = 20.0


class PageHang(TimeoutError):
    """A WebDriver call did not return within its bound (frozen page or hung browser)."""


class RoleNotFound(LookupError):
    """No selector of a role matched when a step needed it: the page changed, or is not where we think."""

    def __init__(self, role: str, *, step: str) -> None:
        self.role, self.step = role, step
        super().__init__(f"{ROLE_LABELS.get(role, role)} not found (role {role})")


class Page:
    """One browser tab on WhatsApp Web. Every call sets selenium's HTTP timeout to its own bound first, so a
    frozen page or browser raises within seconds instead of stalling the worker's loop. Elements are found by
    role (selectors.py, user overrides first); `matches` keeps which selector of each role matched last."""

    def __init__(
        self,
        driver: Any,
        *,
        base_url: str,
        alive: Callable[[], None] = lambda: None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.driver = driver
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.alive = alive  # called between polls of a long wait: lets the worker loop beat its heartbeat
        self.overrides = dict(overrides or {})
        self.roles = effective_roles(self.overrides)
        self.matches: dict[str, int] = {}
        self.bad_selectors: set[str] = set()

    def _bounded(self, timeout_s: float, call: Callable[[], T]) -> T:
        # Recent selenium (4.51 here) offers RemoteConnection.client_config; older releases only _client_config.
        executor = self.driver.command_executor
        config = getattr(executor, "client_config", None) or getattr(executor, "_client_config", None)
        if config is not None:
            config.timeout = timeout_s
        started = time.monotonic()
        try:
            return call()
        except Exception as exc:
            if time.monotonic() - started >= timeout_s * 0.95 or "timed out" in str(exc).lower():
                raise PageHang(f"WebDriver call took over {timeout_s:g} s: {type(exc).__name__}") from exc
            raise

    def _script(self, script: str, *args: Any, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
        """Run one of selectors.py's role scripts; records which selector of each role matched."""
        result = self._bounded(timeout_s, lambda: self.driver.execute_script(script, self.roles, *args))
        result = dict(result or {})
        self.matches.update({k: int(v) for k, v in (result.pop("matches", None) or {}).items()})
        self.bad_selectors.update(result.pop("bad", None) or ())
        return result

    def role_report(self) -> dict[str, str]:
        """For each role: override, primary, fallback N (selector), none, or not seen yet."""
        return {role: describe_match(role, self.matches.get(role), overridden=role in self.overrides) for role in ROLES}

    def invalid_overrides(self) -> list[tuple[str, str]]:
        """The user's selectors the browser refuses as CSS: (role, the browser's message)."""
        if not self.overrides:
            return []
        bad = self._bounded(PROBE_TIMEOUT_S, lambda: self.driver.execute_script(VALIDATE_SCRIPT, self.overrides))
        return [(str(role), str(message)) for role, message in bad or []]

    def run(self, script: str) -> Any:
        """Run a script of no arguments (the diagnostic outline)."""
        return self._bounded(PROBE_TIMEOUT_S, lambda: self.driver.execute_script(script))

    def screenshot(self, path: Any) -> None:
        self._bounded(PROBE_TIMEOUT_S, lambda: self.driver.save_screenshot(str(path)))

    # -- reading ------------------------------------------------------------------------------------------
    def probe(self) -> dict[str, Any]:
        """Every marker of the page in one round trip."""
        return self._script(PROBE_SCRIPT)

    def outgoing(self) -> list[dict[str, Any]]:
        """The open chat's outgoing bubbles, oldest first: text, tick, id."""
        return list(self._script(OUTGOING_SCRIPT).get("bubbles") or [])

    def compose_text(self) -> str | None:
        """The compose box's text; None when there is no compose box."""
        return self._script(COMPOSE_TEXT_SCRIPT).get("text")

    def element(self, role: str) -> Any:
        """The first element of `role` (a WebElement), or None."""
        return self._script(ELEMENT_SCRIPT, role).get("element")

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

    def click(self, role: str) -> bool:
        """Click the first element of `role` (its enclosing button); False when there is none."""
        return bool(self._script(CLICK_SCRIPT, role).get("clicked"))

    def click_use_here(self) -> bool:
        """Click the popup's button labelled "Use here" (in a known language); False when there is none."""
        return bool(self._script(CLICK_LABELLED_SCRIPT, list(USE_HERE_LABELS)).get("clicked"))

    def _compose_box(self, step: str) -> Any:
        box = self.element("compose")
        if box is None:
            raise RoleNotFound("compose", step=step)
        return box

    def set_compose(self, text: str) -> None:
        """Replace the compose box's content with `text` by typing (Shift+Enter between lines)."""
        from selenium.webdriver.common.keys import Keys

        box = self._compose_box("type the message")

        def type_text() -> None:
            box.click()
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(Keys.DELETE)
            for index, line in enumerate(text.split("\n")):
                if index:
                    box.send_keys(Keys.SHIFT, Keys.ENTER)
                box.send_keys(line)

        self._bounded(NAVIGATE_TIMEOUT_S, type_text)

    def press_enter_in_compose(self) -> None:
        from selenium.webdriver.common.keys import Keys

        box = self._compose_box("press Enter to send")
        self._bounded(PROBE_TIMEOUT_S, lambda: box.send_keys(Keys.ENTER))
