"""Restart policy as pure logic: exponential backoff and a sliding-window restart budget (seconds throughout)."""

from __future__ import annotations

import threading

from .instance import WatchdogConfig


def backoff_delay(*, early_failures: int, base_s: float, cap_s: float) -> float:
    """Delay before the next start: `base_s` after one early failure, doubling with each further one, capped."""
    if early_failures <= 1:
        return min(base_s, cap_s)
    # Cap the exponent: 2**64 * base overflows nothing in float, but keeps the arithmetic obviously bounded.
    return min(base_s * 2.0 ** min(early_failures - 1, 64), cap_s)


class RestartBudget:
    """At most `limit` restarts in any `window_s` seconds; the budget is the list of restart times (monotonic s).

    The supervisor thread records; API threads read (`used`, `frees_at`) for snapshots: reads never change the
    list, and a lock keeps a read from seeing it half-pruned."""

    def __init__(self, limit: int, window_s: float, restarts: list[float] | None = None) -> None:
        self.limit = limit
        self.window_s = window_s
        self.restarts: list[float] = [] if restarts is None else restarts
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RestartBudget(limit={self.limit}, window_s={self.window_s:g}, restarts={self.restarts})"

    def _recent(self, now: float) -> list[float]:
        with self._lock:
            return [t for t in self.restarts if now - t < self.window_s]

    def used(self, now: float) -> int:
        """Restarts within the window that ends at `now` (read-only)."""
        return len(self._recent(now))

    def allows(self, now: float) -> bool:
        """Whether one more restart at `now` stays within the budget."""
        return self.used(now) < self.limit

    def record(self, now: float) -> None:
        """Count a restart made at `now` (and forget those out of the window)."""
        with self._lock:
            self.restarts = [t for t in self.restarts if now - t < self.window_s]
            self.restarts.append(now)

    def frees_at(self, now: float) -> float:
        """The earliest time (monotonic s) at which a restart is allowed again (read-only)."""
        recent = self._recent(now)
        if len(recent) < self.limit:
            return now
        return recent[-self.limit] + self.window_s


class RestartPolicy:
    """Decides when the next worker starts after an exit; holds the consecutive early-failure count."""

    def __init__(
        self, base_s: float, cap_s: float, stable_after_s: float, budget: RestartBudget, early_failures: int = 0
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.stable_after_s = stable_after_s
        self.budget = budget
        self.early_failures = early_failures

    @classmethod
    def from_config(cls, config: WatchdogConfig) -> RestartPolicy:
        return cls(
            base_s=config.restart_delay,
            cap_s=config.restart_delay_max,
            stable_after_s=config.stable_after,
            budget=RestartBudget(limit=config.restart_limit, window_s=config.restart_window),
        )

    def delay_after_exit(self, *, uptime_s: float) -> float:
        """Seconds to wait before restarting a worker that ran for `uptime_s`; a stable run resets the backoff."""
        self.early_failures = 1 if uptime_s >= self.stable_after_s else self.early_failures + 1
        return backoff_delay(early_failures=self.early_failures, base_s=self.base_s, cap_s=self.cap_s)

    def next_start_at(self, *, due_s: float) -> float:
        """When a restart due at `due_s` may actually happen, given the budget (== due_s when within it)."""
        return max(due_s, self.budget.frees_at(due_s))
