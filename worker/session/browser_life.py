"""The browser under a WhatsApp session: start, close, restart (with work done while it is closed: session backups,
a restored login), whether its process still lives, and its recycling (a clean restart when its memory or age is
over the limit: recycle.py decides). A mixin of WhatsAppSession (session.py)."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil

from continuity.watchdog.instance import ConfigError

from ..browser.memory import tree_rss_bytes
from .page import Page
from .recycle import RecyclePolicy
from .states import WhatsAppState

if TYPE_CHECKING:
    from continuity.watchdog.instance import Config, EventLog, Home, WhatsAppConfig

    from ..delivery import OutboxSender
    from .backup import SessionBackups, Staged

logger = logging.getLogger("continuity.whatsapp")


class BrowserLife:
    """Browser lifecycle methods; the attributes below are WhatsAppSession's."""

    home: Home
    config: Config
    wa: WhatsAppConfig
    events: EventLog
    backups: SessionBackups
    browser: Any
    page: Page | None
    browser_restarts: int
    restart_failures: int
    recycle: RecyclePolicy
    sender: OutboxSender | None
    _pending_step: str | None
    _launcher: Callable[..., Any] | None
    _alive: Callable[[], None]
    _clock: Callable[[], float]
    _next_action_at: float
    _next_probe: float

    def _set_state(self, state: WhatsAppState, reason: str = "") -> None:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def _browser_alive(self) -> bool:
        pid = getattr(self.browser, "browser_pid", None)
        if pid is None:
            return True
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    # -- the browser --------------------------------------------------------------------------------------
    def _start_browser(self) -> None:
        self._set_state(WhatsAppState.STARTING)
        launcher = self._launcher or _default_launcher()
        try:
            self.browser = launcher(
                self.home, self.wa, events=self.events, page_load_timeout_s=20.0, script_timeout_s=5.0
            )
            self.page = Page(
                self.browser.driver,
                base_url=self.wa.url,
                alive=lambda: self._alive(),
                overrides=dict(self.wa.selectors),
            )
            self.page.open()
            bad = self.page.invalid_overrides()
            self.restart_failures = 0
            self.recycle.browser_started()
        except Exception as exc:
            self.restart_failures += 1
            self._close_browser()
            wait = min(self.wa.reconnect_backoff[1], self.wa.reconnect_backoff[0] * 2 ** min(self.restart_failures, 10))
            wait *= 0.5 + 0.5 * random.random()
            logger.error(
                "cannot start the browser (%d in a row): %s; retrying in %.0f s", self.restart_failures, exc, wait
            )
            self.events.emit("browser_start_failed", error=str(exc)[:500], failures=self.restart_failures)
            self._set_state(WhatsAppState.BROWSER_DEAD, "cannot start the browser")
            self._next_action_at = self._clock() + wait
            return
        if bad:  # the browser refuses a user's selector: a configuration error, the worker exits 78
            self._close_browser()
            role, message = bad[0]
            raise ConfigError(
                f"{self.config.source or 'continuity.toml'}: whatsapp.selectors.{role} = "
                f"{dict(self.wa.selectors)[role]!r} is not a valid CSS selector ({message})"
            )

    def _close_browser(self) -> None:
        browser, self.browser, self.page = self.browser, None, None
        self.recycle.browser_stopped()
        if browser is not None:
            with contextlib.suppress(Exception):
                browser.close()

    def _restart_browser(
        self, *, reason: str, counted: bool = True, while_closed: Callable[[], object] | None = None
    ) -> None:
        if counted:
            self.browser_restarts += 1
        self.events.emit("browser_restart", reason=reason, count=self.browser_restarts)
        self._close_browser()
        if while_closed is not None:
            while_closed()
        self._start_browser()

    # -- recycling (recycle.py): a clean restart when the browser's memory or age is over its limit -----------
    def _recycle_if_due(self) -> bool:
        """Measure the browser's tree when due (psutil, every RSS_MEASURE_EVERY_S s); when a limit is crossed at a
        quiet moment, restart it cleanly, login kept (not a failure: `browser_recycles`, not `browser_restarts`).
        Called from the turn, never during a send. True when the browser was restarted."""
        policy = self.recycle
        if policy.measure_due():
            pid = getattr(self.browser, "browser_pid", None)
            rss = None if pid is None else tree_rss_bytes(pid)
            policy.observe_rss(None if rss is None else round(rss / 2**20, 1))
        due = policy.due(ready=self.ready() and self._pending_step is None, sends_waiting=self._sends_waiting)
        if due is None:
            return False
        policy.recycling()
        logger.info("recycling the browser (%s: %s)", due.reason, due.details)
        self.events.emit("browser_recycled", reason=due.reason, count=policy.recycles, **due.details)
        backup = self._backup_closed if self.backups.due() else None  # due anyway: taken while it is closed
        self._restart_browser(reason=f"recycle ({due.reason})", counted=False, while_closed=backup)
        self._next_probe = self._clock()  # see the new page at once (no "starting" for a probe interval)
        return True

    def _sends_waiting(self) -> bool:
        return self.sender is not None and self.sender.outbox.open_count() > 0

    # -- session backups (backup.py): taken and restored only while Chromium is closed ----------------------
    def _backup_closed(self, reason: str = "periodic") -> None:
        if self.backups.passphrase() is not None:
            self.backups.create_quietly(reason=reason)

    def _restore_login(self, staged: Staged | None) -> bool:
        """Close the browser, put the staged backup's login storage into the profile, relaunch."""
        if staged is None:
            return False
        self._close_browser()
        try:
            self.backups.apply(staged)
        except OSError as exc:
            logger.error("cannot put backup %s into the profile: %s", staged.source, exc)
            self.events.emit("session_restore_error", file=str(staged.source), error=str(exc)[:500])
            return False
        finally:
            self._start_browser()
        return True

    def close(self) -> None:
        """Close the browser cleanly (the worker is stopping)."""
        self._close_browser()


def _default_launcher() -> Callable[..., Any]:
    from continuity.worker.browser import launch

    return launch
