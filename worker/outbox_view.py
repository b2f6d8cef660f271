"""The outbox as the dashboard shows it: run/outbox_view.json, and the retry / cancel actions.

The watchdog never opens the store: the worker writes the pending and failed messages (at most LIMIT of each,
texts and reasons shortened) into run/outbox_view.json (mode 0600: it holds numbers and texts) when the outbox
changed, at most every MIN_INTERVAL_S; the API serves that file (token required) and queues `outbox-retry` /
`outbox-cancel` (params {"id": ...}) in run/control/, answered here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import Home, write_json_atomic

from .control_requests import ActionDispatcher

VIEW_FILE = Home(Path()).outbox_view_file.name  # in run/ (Home names every path)
LIMIT = 100
MIN_INTERVAL_S = 2.0
TEXT_CHARS, REASON_CHARS = 120, 300
_FIELDS = ("id", "phone", "state", "created_at", "attempts", "retry_at", "failed_at", "attempted_at")


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row = {key: record.get(key) for key in _FIELDS}
    row["text"] = str(record.get("text") or "")[:TEXT_CHARS]
    row["reason"] = None if record.get("last_error") is None else str(record["last_error"])[:REASON_CHARS]
    row["cancelled"] = bool(record.get("cancelled"))
    return row


def outbox_view(outbox: Any, *, now: float, limit: int = LIMIT) -> dict[str, Any]:
    """Pending (and claimed) messages, oldest first, and failed ones, newest first; at most `limit` of each."""
    pending = [m for m in outbox.list() if m.get("state") in ("pending", "claimed")]
    failed = outbox.list(state="failed")
    pending.sort(key=lambda m: m.get("created_at") or 0)
    failed.sort(key=lambda m: m.get("failed_at") or 0, reverse=True)
    return {
        "written_at": now,
        "counts": outbox.counts(),
        "pending": [_row(m) for m in pending[:limit]],
        "failed": [_row(m) for m in failed[:limit]],
        "more_pending": max(0, len(pending) - limit),
        "more_failed": max(0, len(failed) - limit),
    }


class OutboxViewWriter:
    """A worker-loop turn: rewrites run/outbox_view.json when the outbox changed (at most every MIN_INTERVAL_S)."""

    def __init__(
        self,
        outbox: Any,
        run_dir: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox, self.path = outbox, run_dir / VIEW_FILE
        self._cursor = -1
        self._clock, self._wall = clock, wall_clock
        self._written_at: float | None = None

    def __call__(self, _loop: Any) -> float | None:
        now = self._clock()
        if self._written_at is not None and now - self._written_at < MIN_INTERVAL_S:
            return self._written_at + MIN_INTERVAL_S - now
        cursor, changed = self.outbox.changes_since(self._cursor)
        if changed == [] and self._written_at is not None:
            return None
        self._cursor = cursor
        self.write()
        return None

    def write(self) -> None:
        write_json_atomic(self.path, outbox_view(self.outbox, now=self._wall()), durable=False, mode=0o600)
        self._written_at = self._clock()


def register_outbox_actions(actions: ActionDispatcher, outbox: Any, view: OutboxViewWriter) -> None:
    """`outbox-retry` and `outbox-cancel` (params {"id"}); the view is rewritten at once after either."""

    def handler(retry: bool) -> Callable[[dict[str, Any]], tuple[bool, str, dict[str, Any]]]:
        def run(params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
            ident = params.get("id")
            if not isinstance(ident, str) or not ident:
                return False, 'params must name the message: {"id": "..."}', {}
            try:
                record = outbox.retry(ident) if retry else outbox.cancel(ident)
            except (KeyError, ValueError) as exc:  # no such message; or sent, being sent, failed (store errors)
                return False, str(exc.args[0] if exc.args else exc), {"id": ident}
            view.write()
            verb = "will be sent again" if retry else "is cancelled (never sent)"
            return True, f"message {ident} {verb}", {"id": ident, "state": record.get("state")}

        return run

    actions.register("outbox-retry", handler(True))
    actions.register("outbox-cancel", handler(False))
