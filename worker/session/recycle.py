"""When to restart a healthy browser to give back the memory Chromium gathers over days of uptime (a *recycle*):
the RSS of its whole process tree over `[whatsapp] browser_max_rss_mb` (MiB), or its age over `browser_max_age_h`
(hours since this browser started). Pure: time is the injected monotonic `clock`, in seconds; the caller measures
the RSS (worker/browser/memory.py) when `measure_due()` says so and hands it in.

A recycle happens only at a quiet moment: the page ready (not in a recovery) and no message waiting to go out. A
waiting message holds it back for at most `max_defer_s` seconds (a backlog that never drains, or a message that
keeps failing, must not keep a bloated browser forever; the session's turn never runs during a send, so even then
nothing is in flight). An RSS recycle needs a measurement of *this* browser and comes no sooner than
`min_interval_s` seconds after it started: a limit below what a fresh Chromium takes gives one recycle per
`min_interval_s`, never a restart storm. The age limit is its own rate (a recycle starts a new browser, of age 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from continuity.watchdog.instance import WhatsAppConfig

RSS_MEASURE_EVERY_S = 60.0  # s between two measurements of the browser's process tree
MIN_INTERVAL_S = 600.0  # s: an RSS recycle comes at least this long after the browser started
MAX_DEFER_S = 300.0  # s a recycle waits at most for the messages waiting to go out


class Recycle(NamedTuple):
    """Why a browser is recycled: `reason` "rss" (details rss_mib, limit_mib) or "age" (age_h, limit_h)."""

    reason: str
    details: dict[str, float]


@dataclass(kw_only=True)
class RecyclePolicy:
    """Decides when the running browser is recycled; one instance per session, told of each browser's start/stop."""

    max_rss_mib: float
    max_age_s: float
    clock: Callable[[], float] = time.monotonic
    min_interval_s: float = MIN_INTERVAL_S
    measure_every_s: float = RSS_MEASURE_EVERY_S
    max_defer_s: float = MAX_DEFER_S
    started_at: float | None = field(default=None, init=False)  # this browser's start (None: none, or recycling)
    rss_mib: float | None = field(default=None, init=False)  # the last measurement of this browser's tree, MiB
    recycles: int = field(default=0, init=False)
    _measured_at: float | None = field(default=None, init=False)
    _deferred_since: float | None = field(default=None, init=False)

    @classmethod
    def for_config(cls, wa: WhatsAppConfig, *, clock: Callable[[], float] = time.monotonic) -> RecyclePolicy:
        """The policy of `[whatsapp] browser_max_rss_mb` (MiB) and `browser_max_age_h` (hours)."""
        return cls(max_rss_mib=wa.browser_max_rss_mb, max_age_s=wa.browser_max_age_h * 3600.0, clock=clock)

    # -- what the session tells it ------------------------------------------------------------------------
    def browser_started(self) -> None:
        """A new browser runs: its age counts from now and nothing measured of the previous one counts."""
        self.started_at = self.clock()
        self.rss_mib = self._measured_at = self._deferred_since = None

    def browser_stopped(self) -> None:
        """The browser was closed (or died): no age, no memory."""
        self.started_at = self.rss_mib = self._measured_at = self._deferred_since = None

    def measure_due(self) -> bool:
        """True when the browser's RSS should be measured now (a browser runs, the last look is old enough)."""
        if self.started_at is None:
            return False
        return self._measured_at is None or self.clock() - self._measured_at >= self.measure_every_s

    def observe_rss(self, mib: float | None) -> None:
        """The RSS of the browser's tree in MiB, just measured (None: it could not be)."""
        self.rss_mib = mib
        self._measured_at = self.clock()

    # -- the decision -------------------------------------------------------------------------------------
    def age_s(self) -> float | None:
        """Seconds since this browser started, or None when none runs."""
        return None if self.started_at is None else self.clock() - self.started_at

    def crossed(self) -> Recycle | None:
        """The limit this browser is over (age first), or None."""
        age = self.age_s()
        if age is None:
            return None
        if age >= self.max_age_s:
            return Recycle("age", {"age_h": round(age / 3600.0, 4), "limit_h": round(self.max_age_s / 3600.0, 4)})
        if self.rss_mib is not None and self.rss_mib > self.max_rss_mib and age >= self.min_interval_s:
            return Recycle("rss", {"rss_mib": self.rss_mib, "limit_mib": self.max_rss_mib})
        return None

    def due(self, *, ready: bool, sends_waiting: Callable[[], bool]) -> Recycle | None:
        """The recycle to do now, or None: a limit is crossed, the page is `ready`, and no message waits to go out
        (`sends_waiting` is asked only then), or one has waited `max_defer_s` s already. Call `recycling()` next."""
        crossed = self.crossed()
        if crossed is None or not ready:
            return None
        if sends_waiting():
            now = self.clock()
            if self._deferred_since is None:
                self._deferred_since = now
            if now - self._deferred_since < self.max_defer_s:
                return None
        return crossed

    def recycling(self) -> None:
        """The session is recycling this browser: counted, and nothing more is due until the next one starts."""
        self.recycles += 1
        self.browser_stopped()

    def status(self) -> dict[str, Any]:
        """The heartbeat's fields (whatsapp section): MiB, hours, a count."""
        age = self.age_s()
        return {
            "browser_rss_mib": self.rss_mib,
            "browser_age_h": None if age is None else round(age / 3600.0, 3),
            "browser_recycles": self.recycles,
        }
