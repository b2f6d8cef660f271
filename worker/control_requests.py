"""Answering the actions queued in run/control/ (from `continuity whatsapp ...` and the HTTP API).

Each request is taken first (so its caller can no longer withdraw it), then checked against its deadline: an
expired one is answered "expired, nothing was done" and recorded (event `action_expired`), never run. Stale result
files are pruned now and then (control.prune).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import EventLog, control

logger = logging.getLogger("continuity.worker.control_requests")

# A handler returns (ok, message, details).
Handler = Callable[[dict[str, Any]], tuple[bool, str, dict[str, Any]]]
PRUNE_EVERY_S = 60.0


class ActionDispatcher:
    """A worker-loop turn: answers every pending request with its handler's result, or says none exists."""

    def __init__(self, control_dir: Path, *, events: EventLog, wall_clock: Callable[[], float] = time.time) -> None:
        self.control_dir = control_dir
        self.events = events
        self.handlers: dict[str, Handler] = {}
        self._wall = wall_clock
        self._pruned_at: float | None = None

    def register(self, action: str, handler: Handler) -> None:
        self.handlers[action] = handler

    def __call__(self, _loop: Any) -> float | None:
        now = self._wall()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            control.prune(self.control_dir, now=now)
        for request in control.pending(self.control_dir):
            if not control.take(self.control_dir, request):
                continue  # its caller withdrew it meanwhile
            if self._expired(request):
                continue
            self._run(request)
        return None

    def _expired(self, request: dict[str, Any]) -> bool:
        """Answer and record a request past its deadline (checked after taking it: it cannot start later)."""
        now, deadline = self._wall(), control.expires_at(request)
        if now <= deadline:
            return False
        action = request.get("action")
        late = now - deadline
        if deadline == float("-inf"):
            message = "refused: a destructive action without a deadline (requested_at, expires_at); nothing was done"
        else:
            message = f"expired {late:.0f} s before a worker could take it: nothing was done"
        control.answer(self.control_dir, request, ok=False, message=message, expired=True)
        logger.warning("action %s (%s) %s", action, request["id"], message)
        self.events.emit(
            "action_expired",
            action=action,
            id=request["id"],
            source=request.get("source"),
            late_s=round(late, 3) if late != float("inf") else None,
            destructive=action in control.DESTRUCTIVE_ACTIONS,
        )
        return True

    def _run(self, request: dict[str, Any]) -> None:
        action = request.get("action")
        handler = self.handlers.get(action) if isinstance(action, str) else None
        details: dict[str, Any] = {}
        if handler is None:
            ok, message, details = False, f"action {action!r} is not available in this worker", {}
        else:
            try:
                ok, message, details = handler(request.get("params") or {})
            except Exception as exc:
                logger.exception("action %s failed", action)
                ok, message, details = False, f"{type(exc).__name__}: {exc}", {}
        control.answer(self.control_dir, request, ok=ok, message=message, **details)
        self.events.emit("action_done", action=action, id=request["id"], ok=ok, message=message)
