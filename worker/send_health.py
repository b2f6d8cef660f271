"""Whether messages really go out: a page WhatsApp changed can leave the session "ready" while every send fails.

Pure bookkeeping (wall-clock seconds, injected): the outbox sender reports each outcome; `stalled` turns true when
messages are waiting and the sends keep failing (`STALL_FAILURES` in a row, or failures for `stall_after_s` with
no success), and false again at the next success. The heartbeat carries `status()`; health and alerts read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

STALL_FAILURES = 3


class SendHealth:
    """Consecutive send failures, since when, and at which step and page role."""

    def __init__(self, *, stall_after_s: float, clock: Callable[[], float] = time.time) -> None:
        self.stall_after_s = stall_after_s
        self._clock = clock
        self.last_sent_at: float | None = None
        self.failing_since: float | None = None
        self.consecutive_failures = 0
        self.step = ""
        self.role = ""
        self.reason = ""
        self.stalled = False

    def on_sent(self) -> bool:
        """A message went out; returns True when this ended a stall."""
        was = self.stalled
        self.last_sent_at = self._clock()
        self.failing_since, self.consecutive_failures, self.stalled = None, 0, False
        self.step = self.role = self.reason = ""
        return was

    def on_failure(self, *, step: str, role: str, reason: str) -> None:
        """A send attempt failed (to be retried, or for good for a reason that is not the number's)."""
        if self.failing_since is None:
            self.failing_since = self._clock()
        self.consecutive_failures += 1
        self.step, self.role, self.reason = step, role, reason[:300]

    def check(self, *, pending: int) -> bool:
        """Re-evaluate with `pending` messages waiting; returns True when a stall starts now."""
        if self.failing_since is None or pending <= 0:
            self.stalled = False
            return False
        failing_for = self._clock() - self.failing_since
        now_stalled = self.consecutive_failures >= STALL_FAILURES or failing_for >= self.stall_after_s
        started = now_stalled and not self.stalled
        self.stalled = now_stalled
        return started

    def problem(self) -> str:
        """ "compose box not found (role compose) at step 'type the message'": what to tell a person."""
        if not self.reason:
            return ""
        where = f" at step '{self.step}'" if self.step else ""
        return f"{self.reason}{where}"

    def status(self, *, pending: int) -> dict[str, Any]:
        """The heartbeat's "sending" section."""
        now = self._clock()
        return {
            "pending": pending,
            "stalled": self.stalled,
            "last_sent_at": self.last_sent_at,
            "failing_for_s": None if self.failing_since is None else round(now - self.failing_since, 1),
            "consecutive_failures": self.consecutive_failures,
            "failing_step": self.step or None,
            "failing_role": self.role or None,
            "problem": self.problem() or None,
        }
