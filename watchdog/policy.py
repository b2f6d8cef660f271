"""Restart policy as pure logic: exponential backoff and a sliding-window restart budget (seconds throughout)."""

from __future__ import annotations

import threading

from .instance import SlidingWindow, WatchdogConfig, backoff_delay


class RestartBudget:
    """At most `limit` restarts in any `window_s` seconds: a sliding window of restart times (monotonic s).

    The supervisor thread records; API threads read (`used`, `frees_at`) for snapshots: reads never change the
    window, and a lock keeps a read from seeing it half-pruned."""

    def __init__(self, limit: int, window_s: float, restarts: list[float] | None = None) -> None:
        self.limit = limit
        self.window_s = window_s
        self.window = SlidingWindow(window_s=window_s, times=restarts or ())
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RestartBudget(limit={self.limit}, {self.window!r})"

    def used(self, now: float) -> int:
        """Restarts within the window that ends at `now` (read-only)."""
        with self._lock:
            return self.window.count(now)

    def allows(self, now: float) -> bool:
        """Whether one more restart at `now` stays within the budget."""
        return self.used(now) < self.limit

    def record(self, now: float) -> None:
        """Count a restart made at `now` (and forget those out of the window)."""
        with self._lock:
            self.window.add(now)

    def frees_at(self, now: float) -> float:
        """The earliest time (monotonic s) at which a restart is allowed again (read-only)."""
        with self._lock:
            return self.window.frees_at(now, limit=self.limit)


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
        return backoff_delay(attempt=self.early_failures, first_s=self.base_s, cap_s=self.cap_s)

    def next_start_at(self, *, due_s: float) -> float:
        """When a restart due at `due_s` may actually happen, given the budget (== due_s when within it)."""
        return max(due_s, self.budget.frees_at(due_s))
