"""Sending from the outbox: one message at a time, at most one per `send_min_interval` (with jitter).

The WhatsApp session implements `MessageSender`; this module owns the outbox bookkeeping, so every outcome is
recorded durably: sent (acked by a tick), retry later, or failed for good with the reason.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from continuity.watchdog.instance import EventLog, backoff_delay

from .pacing import SendPacer
from .send_health import SendHealth

logger = logging.getLogger("continuity.worker.delivery")

SENT, RETRY, FAILED = "sent", "retry", "failed"


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one message: `kind` is sent, retry or failed (for good); `reason` says why."""

    kind: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    step: str = ""  # where it failed ("type the message", "open the chat", ...)
    role: str = ""  # the page role that was missing, if that was why (selectors.py)


class MessageSender(Protocol):
    """What the outbox needs from a WhatsApp session."""

    def ready(self) -> bool:
        """True when a message could be sent now."""

    def send(self, message: dict[str, Any], note: Callable[..., Any]) -> SendOutcome:
        """Deliver message["text"] to message["phone"]. `note(**details)` durably records facts on the message
        before the point of no return (clicking Send), so a later attempt can tell whether this one went out."""


RETRY_FIRST_S, RETRY_CAP_S = 5.0, 300.0  # a failed message is tried again after 5, 10, 20 ... seconds, at most 300


class OutboxSender:
    """A worker-loop turn that sends the next due message when the session is ready."""

    def __init__(
        self,
        outbox: Any,
        sender: MessageSender,
        *,
        min_interval_s: float,
        events: EventLog,
        lease_s: float = 120.0,
        stall_after_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        pacer: SendPacer | None = None,
    ) -> None:
        self.outbox = outbox
        self.pacer = pacer  # sending limits (pacing.py): over one, messages wait; None: no limits
        self.sender = sender
        self.min_interval_s = min_interval_s
        self.events = events
        self.lease_s = lease_s
        self.owner = f"worker-{os.getpid()}"
        self._clock = clock
        self._rng = rng or random.Random()
        self._next_send_at = 0.0
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.health = SendHealth(stall_after_s=stall_after_s, clock=wall_clock)

    def _gap(self) -> float:
        # +0-50 % jitter: a fixed rhythm to unknown numbers is what gets accounts banned.
        return self.min_interval_s * (1.0 + 0.5 * self._rng.random())

    def __call__(self, _loop: Any) -> float | None:
        """Send at most one message; returns seconds until the next send may happen (None: nothing queued)."""
        self._check_stall()
        now = self._clock()
        if now < self._next_send_at:
            return self._next_send_at - now
        if self.pacer is not None and (paced := self.pacer.wait_s()) > 0:
            return min(paced, 60.0)  # over a sending limit: the messages wait in the outbox, none fails
        if not self.sender.ready():
            return None
        message = self.outbox.claim(self.owner, lease_s=self.lease_s)
        if message is None:
            return None
        outcome = self._send(message)
        self._next_send_at = self._clock() + self._gap()
        self._record(message, outcome)
        self._check_stall()
        return self._next_send_at - self._clock()

    def _check_stall(self) -> None:
        health = self.health
        if health.failing_since is None and not health.stalled:
            return  # nothing failing: no outbox look on this pass
        if health.check(pending=self.outbox.open_count()):
            problem = health.problem()
            logger.error("messages are not going out: %s", problem)
            self.events.emit(
                "send_stalled",
                problem=problem,
                step=health.step,
                role=health.role,
                failures=health.consecutive_failures,
                pending=self.outbox.open_count(),
            )

    def status(self) -> dict[str, Any]:
        """The heartbeat's "sending" section (send_health.py; pacing.py: paced_until, paced_by, limits, sent_last)."""
        pending = self.outbox.open_count()
        paced = self.pacer.status(waiting=pending > 0) if self.pacer is not None else {}
        return {**self.health.status(pending=pending), **paced}

    def paced_until(self) -> float | None:
        """Epoch seconds until which waiting messages are held by a sending limit (None: not held)."""
        if self.pacer is None or not self.outbox.open_count():
            return None
        until = self.pacer.status(waiting=True)["paced_until"]
        return None if until is None else round(until)

    def _send(self, message: dict[str, Any]) -> SendOutcome:
        try:
            return self.sender.send(message, lambda **details: self.outbox.note(message["id"], **details))
        except Exception as exc:  # a session error must not lose the message: it goes back to the queue
            role = getattr(exc, "role", "")  # the page's RoleNotFound: a step could not find its element
            if role:
                logger.error("sending %s failed: %s", message["id"], exc)
            else:
                logger.exception("sending %s failed", message["id"])
            reason = str(exc) if role else f"{type(exc).__name__}: {exc}"
            return SendOutcome(RETRY, reason, step=getattr(exc, "step", ""), role=role)

    def _record(self, message: dict[str, Any], outcome: SendOutcome) -> None:
        ident = message["id"]
        if outcome.kind == SENT:
            self.outbox.mark_sent(ident, **outcome.details)
            self.sent += 1
            if self.pacer is not None:
                self.pacer.record()
            if self.health.on_sent():
                self.events.emit("send_recovered")
            self.events.emit("message_sent", id=ident, phone=message["phone"], attempts=message.get("attempts"))
        elif outcome.kind == FAILED:
            self.outbox.mark_failed(ident, outcome.reason, permanent=True)
            self.failed += 1
            self.events.emit("message_failed", id=ident, phone=message["phone"], reason=outcome.reason)
        else:
            self.health.on_failure(step=outcome.step, role=outcome.role, reason=outcome.reason)
            delay = backoff_delay(attempt=int(message.get("attempts") or 1), first_s=RETRY_FIRST_S, cap_s=RETRY_CAP_S)
            self.outbox.mark_failed(ident, outcome.reason, permanent=False, retry_after_s=delay)
            self.retried += 1
            self.events.emit(
                "message_retry", id=ident, reason=outcome.reason, step=outcome.step, role=outcome.role, retry_in_s=delay
            )
