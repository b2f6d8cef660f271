"""Answering the actions queued in run/control/ (from `continuity whatsapp ...` and the HTTP API)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from continuity.watchdog import control
from continuity.watchdog.events import EventLog

logger = logging.getLogger("continuity.worker.actions")

# A handler returns (ok, message, details).
Handler = Callable[[dict[str, Any]], tuple[bool, str, dict[str, Any]]]


class ActionDispatcher:
    """A worker-loop turn: answers every pending request with its handler's result, or says none exists."""

    def __init__(self, control_dir: Path, *, events: EventLog) -> None:
        self.control_dir = control_dir
        self.events = events
        self.handlers: dict[str, Handler] = {}

    def register(self, action: str, handler: Handler) -> None:
        self.handlers[action] = handler

    def __call__(self, _loop: Any) -> float | None:
        for request in control.pending(self.control_dir):
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
        return None
