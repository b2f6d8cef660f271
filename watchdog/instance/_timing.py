"""Timing mechanisms shared by the watchdog and the worker: exponential backoff and a sliding window (seconds)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `random` is only a type here: importing it costs the watchdog ~1 MB (hashlib comes with it)
    import random

_MAX_EXPONENT = 64  # 2.0**64 x any sane first delay is past any cap; bounding it keeps the arithmetic finite


def backoff_delay(*, attempt: int, first_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt `attempt` (1-based): first_s, 2 x first_s, 4 x first_s, ... capped at cap_s.

    With `rng`, full jitter on the upper half: the delay times a random factor in [0.5, 1) (spreads retries)."""
    delay = min(first_s * 2.0 ** min(max(attempt - 1, 0), _MAX_EXPONENT), cap_s)
    if rng is not None:
        delay *= 0.5 + 0.5 * rng.random()
    return float(delay)


class SlidingWindow:
    """Event times (seconds on one clock) within the last `window_s` seconds, kept sorted (circus's flapping style).

    An event at t is in the window at `now` while now - t < window_s; a time after `now` (a wall clock that went
    back) counts as `now`, so it can never hold the window shut for longer than `window_s`. Reads (`count`, `times`,
    `frees_at`) never change the window; `add` and `prune` forget the events that left it. Not thread-safe."""

    def __init__(self, *, window_s: float, times: Iterable[float] = ()) -> None:
        self.window_s = float(window_s)
        self._times: list[float] = sorted(float(t) for t in times)

    def __repr__(self) -> str:
        return f"SlidingWindow(window_s={self.window_s:g}, times={self._times})"

    def add(self, when: float, *, now: float | None = None) -> None:
        """Record an event at `when` (seconds) and forget those out of the window at `now` (default: `when`)."""
        bisect.insort(self._times, float(when))
        self.prune(when if now is None else now)

    def prune(self, now: float) -> None:
        """Forget the events out of the window at `now` (seconds)."""
        del self._times[: self._start(now, None)]

    def clear(self) -> None:
        """Forget every event."""
        self._times.clear()

    def _start(self, now: float, within_s: float | None) -> int:
        span = self.window_s if within_s is None else within_s
        return bisect.bisect_right(self._times, now - span)

    def times(self, now: float, *, within_s: float | None = None) -> list[float]:
        """The event times in the window at `now` (or in its last `within_s` <= window_s seconds), oldest first;
        a copy, with a future time given as `now`."""
        return [min(t, now) for t in self._times[self._start(now, within_s) :]]

    def count(self, now: float, *, within_s: float | None = None) -> int:
        """How many events are in the window at `now` (or in its last `within_s` <= window_s seconds)."""
        return len(self._times) - self._start(now, within_s)

    def frees_at(self, now: float, *, limit: int, within_s: float | None = None) -> float:
        """The earliest time (seconds, >= `now`) at which the window (or its last `within_s` seconds) holds fewer
        than `limit` events, so one more stays within `limit`: `now` when it already does."""
        if limit < 1:
            raise ValueError(f"a window limit must be >= 1, got {limit}")
        recent = self.times(now, within_s=within_s)
        if len(recent) < limit:
            return now
        return recent[-limit] + (self.window_s if within_s is None else within_s)
