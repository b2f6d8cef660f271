"""The browser under a WhatsApp session: launch it on the instance's profile with a Page on WhatsApp Web, tell
whether its process still lives, close it, restart it (with work done while it is closed: a session backup, a
restored login), and wait longer after each launch that fails in a row (the shared backoff)."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil

from continuity.watchdog.instance import ConfigError, backoff_delay

from ..browser.memory import tree_rss_bytes
from .page import Page

if TYPE_CHECKING:
    from continuity.watchdog.instance import Config, EventLog, Home

    from .recycle import RecyclePolicy

logger = logging.getLogger("continuity.whatsapp")


class BrowserSlot:
    """One browser at a time: `browser` and its `page` (None while none runs). `on_starting()` is called before
    each launch, `on_start_failed(wait_s)` after a launch that failed (the next try is due in `wait_s` s);
    `recycle` is told of each browser's start and stop."""

    def __init__(
        self,
        home: Home,
        config: Config,
        *,
        events: EventLog,
        recycle: RecyclePolicy,
        on_starting: Callable[[], None],
        on_start_failed: Callable[[float], None],
        launcher: Callable[..., Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.browser: Any = None
        self.page: Page | None = None
        self.restarts = 0  # restarts counted as recoveries (heartbeat whatsapp.browser_restarts)
        self.failures = 0  # launches failed in a row (heartbeat whatsapp.restart_failures)
        self.beat: Callable[[], None] = lambda: None  # the worker loop's beat_if_due, once attached
        self.home, self.config, self.wa, self.events = home, config, config.whatsapp, events
        self.recycle, self.launcher, self.rng = recycle, launcher, rng or random.Random()
        self.on_starting, self.on_start_failed = on_starting, on_start_failed

    @property
    def pid(self) -> int | None:
        """The browser's process id (None: none runs, or the launcher does not say)."""
        pid: int | None = getattr(self.browser, "browser_pid", None)
        return pid

    def alive(self) -> bool:
        """False once the browser process is gone or a zombie (no WebDriver call; True when its pid is unknown)."""
        pid = self.pid
        if pid is None:
            return True
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def tree_rss_mib(self) -> float | None:
        """The RSS of the browser's whole process tree in MiB (None: it cannot be measured)."""
        pid = self.pid
        rss = None if pid is None else tree_rss_bytes(pid)
        return None if rss is None else round(rss / 2**20, 1)

    def start(self) -> bool:
        """Launch the browser and open WhatsApp Web; False when that failed (`on_start_failed` was called). A user
        selector the browser refuses raises ConfigError (the worker exits 78)."""
        self.on_starting()
        launcher = self.launcher or _default_launcher()
        try:
            self.browser = launcher(
                self.home, self.wa, events=self.events, page_load_timeout_s=20.0, script_timeout_s=5.0
            )
            self.page = Page(
                self.browser.driver,
                base_url=self.wa.url,
                alive=lambda: self.beat(),
                overrides=dict(self.wa.selectors),
            )
            self.page.open()
            bad = self.page.invalid_overrides()
            self.failures = 0
            self.recycle.browser_started()
        except Exception as exc:
            self.failures += 1
            self.close()
            first_s, cap_s = self.wa.reconnect_backoff
            wait = backoff_delay(attempt=self.failures + 1, first_s=first_s, cap_s=cap_s, rng=self.rng)
            logger.error("cannot start the browser (%d in a row): %s; retrying in %.0f s", self.failures, exc, wait)
            self.events.emit("browser_start_failed", error=str(exc)[:500], failures=self.failures)
            self.on_start_failed(wait)
            return False
        if bad:  # the browser refuses a user's selector: a configuration error, the worker exits 78
            self.close()
            role, message = bad[0]
            raise ConfigError(
                f"{self.config.source or 'continuity.toml'}: whatsapp.selectors.{role} = "
                f"{dict(self.wa.selectors)[role]!r} is not a valid CSS selector ({message})"
            )
        return True

    def close(self) -> None:
        """Close the browser (quietly: it may be gone already)."""
        browser, self.browser, self.page = self.browser, None, None
        self.recycle.browser_stopped()
        if browser is not None:
            with contextlib.suppress(Exception):
                browser.close()

    def restart(self, *, reason: str, counted: bool = True, while_closed: Callable[[], object] | None = None) -> bool:
        """Close, run `while_closed` (Chromium's files are consistent then), start again; `counted`: a recovery
        (browser_restarts), not a clean restart (a backup, a durable login, a recycle). False: the start failed."""
        if counted:
            self.restarts += 1
        self.events.emit("browser_restart", reason=reason, count=self.restarts)
        self.close()
        if while_closed is not None:
            while_closed()
        return self.start()


def _default_launcher() -> Callable[..., Any]:
    from continuity.worker.browser import launch

    return launch
