"""Sending limits: at most `max_per_minute`, `max_per_hour` and `max_per_day` messages over sliding windows.

Accounts that message many unknown numbers get banned, so a burst waits instead of going out at full speed. Pure:
a sliding window of send times (epoch seconds, from an injected clock) and the limits; no I/O. Over a limit,
messages simply wait in the outbox (never fail): `wait_s` says for how long. The times survive a restart because
they are read back from the outbox's `sent_at` (`SendPacer.load`), so a restart does not reset the day's count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from continuity.watchdog.instance import SlidingWindow

MINUTE_S, HOUR_S, DAY_S = 60.0, 3600.0, 86400.0


class Limit(NamedTuple):
    """At most `max` sends within any `window_s` seconds; `key` names the config key (for people)."""

    key: str
    window_s: float
    max: int


class SendPacer:
    """When the next message may go out under every limit. Times are epoch seconds (they must survive a
    restart); a time in the future (the wall clock went back) counts as now, so it cannot hold sends forever."""

    def __init__(self, limits: Iterable[Limit], *, clock: Callable[[], float] = time.time) -> None:
        self.limits = tuple(limits)
        for limit in self.limits:
            if not limit.window_s > 0 or limit.max < 1:
                raise ValueError(f"{limit.key}: a limit needs a window > 0 s and a max >= 1, got {limit}")
        self._clock = clock
        span = max((limit.window_s for limit in self.limits), default=0.0)
        self._sent = SlidingWindow(window_s=span)  # send times within the longest limit's window

    @classmethod
    def for_config(cls, wa: Any, *, clock: Callable[[], float] = time.time) -> SendPacer:
        """The limits of a `[whatsapp]` config section (max_per_minute, max_per_hour, max_per_day)."""
        return cls(
            [
                Limit("max_per_minute", MINUTE_S, int(wa.max_per_minute)),
                Limit("max_per_hour", HOUR_S, int(wa.max_per_hour)),
                Limit("max_per_day", DAY_S, int(wa.max_per_day)),
            ],
            clock=clock,
        )

    def load(self, times: Iterable[Any]) -> int:
        """Take earlier send times (e.g. the outbox's `sent_at`; non-numbers are skipped); returns how many fall
        within the longest window."""
        now = self._clock()
        fresh = [float(t) for t in times if isinstance(t, int | float) and not isinstance(t, bool)]
        kept = [t for t in fresh if t > now - self._sent.window_s]
        for t in kept:
            self._sent.add(t, now=now)
        return len(kept)

    def record(self, when: float | None = None) -> None:
        """A message went out (at `when`, default now)."""
        now = self._clock()
        self._sent.add(now if when is None else float(when), now=now)

    def held_by(self, now: float | None = None) -> tuple[float, str | None]:
        """(seconds until a send is allowed, the key of the limit that holds it); (0.0, None) when one may go now."""
        now = self._clock() if now is None else now
        self._sent.prune(now)
        wait, key = 0.0, None
        for limit in self.limits:
            # the send may go once enough of the oldest sends in the window have left it
            free_at = self._sent.frees_at(now, limit=limit.max, within_s=limit.window_s)
            if free_at - now > wait:
                wait, key = free_at - now, limit.key
        return (wait, key) if wait > 0 else (0.0, None)

    def wait_s(self, now: float | None = None) -> float:
        """Seconds until a send is allowed under every limit (0.0: now)."""
        return self.held_by(now)[0]

    def counts(self, now: float | None = None) -> dict[str, int]:
        """Sends within each limit's window, by its key."""
        now = self._clock() if now is None else now
        return {limit.key: self._sent.count(now, within_s=limit.window_s) for limit in self.limits}

    def status(self, *, waiting: bool) -> dict[str, Any]:
        """For the heartbeat's "sending" section: `paced_until` (epoch s) and `paced_by` (the limit's key) when
        messages are waiting for a limit, else None; `sent_last` (sends in each window)."""
        now = self._clock()
        wait, key = self.held_by(now)
        paced = waiting and wait > 0
        return {
            "paced_until": round(now + wait, 3) if paced else None,
            "paced_by": key if paced else None,
            "limits": {limit.key: limit.max for limit in self.limits},
            "sent_last": self.counts(now),
        }


def pacer_from_outbox(wa: Any, outbox: Any, *, clock: Callable[[], float] = time.time) -> SendPacer:
    """The limits of `wa` with the send times the outbox remembers (`sent_at` of its sent messages): a restarted
    worker goes on counting the day's messages where the last one stopped."""
    pacer = SendPacer.for_config(wa, clock=clock)
    pacer.load(message.get("sent_at") for message in outbox.list(state="sent"))
    return pacer
