"""The API's metrics, timeline and outbox routes (api.ApiApp routes here; this keeps api.py small).

GET  /metrics              Prometheus text (metrics.py); no token
GET  /api/timeline         the last 24 h from logs/events.jsonl (timeline.py), cached for TIMELINE_CACHE_S
GET  /api/outbox           run/outbox_view.json as the worker last wrote it (token always: numbers and texts)
POST /api/outbox/retry     {"id": ...}: queued for the worker as `outbox-retry` (token)
POST /api/outbox/cancel    {"id": ...}: `outbox-cancel` (token)
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from ._http import Request, Response, error_response
from .instance import ActionQueued, ActionTimeout, control, read_json_or_none
from .metrics import metrics_response
from .timeline import build_timeline

if TYPE_CHECKING:
    from .api import ApiApp

TIMELINE_CACHE_S = 20.0
OUTBOX_POSTS = {"/api/outbox/retry": "outbox-retry", "/api/outbox/cancel": "outbox-cancel"}
MAX_ID_CHARS = 256


def _json(status: int, obj: Any) -> Response:
    return Response(status, json.dumps(obj, default=str).encode())


def metrics(app: ApiApp, _request: Request) -> Response:
    """Reached only when api_server's light path did not answer (it serves allowed GETs itself)."""
    return metrics_response(app.home, app.supervisor)


class TimelineCache:
    """One timeline computed at a time, reused for TIMELINE_CACHE_S (each costs a read of up to 32 MiB)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: tuple[float, dict[str, Any]] | None = None

    def get(self, app: ApiApp) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            if self._made is None or now - self._made[0] > TIMELINE_CACHE_S:
                self._made = (now, build_timeline(app.home.events_file, now=time.time()))
            return self._made[1]


def timeline(app: ApiApp, _request: Request) -> Response:
    return _json(200, app.timeline_cache.get(app))


def outbox(app: ApiApp, _request: Request) -> Response:
    view = read_json_or_none(app.home.outbox_view_file)
    if not isinstance(view, dict):
        return _json(200, {"available": False, "pending": [], "failed": [], "counts": {}})
    written = view.get("written_at")
    age = time.time() - written if isinstance(written, int | float) else None
    return _json(200, {"available": True, **view, "age_s": None if age is None else round(max(0.0, age), 1)})


def outbox_action(app: ApiApp, request: Request) -> Response:
    """Queue a retry or cancel for the worker; the caller is authorized already."""
    action = OUTBOX_POSTS[request.path]
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        body = None
    ident = body.get("id") if isinstance(body, dict) else None
    if not isinstance(ident, str) or not 0 < len(ident) <= MAX_ID_CHARS:
        return error_response(400, 'the body must be JSON naming the message: {"id": "..."}')
    app.events.emit("api_action", action=action, id=ident, client=request.client)
    wait_s = app.action_wait_s
    try:
        result = control.ask(app.home.control_dir, action, params={"id": ident}, source="api", timeout_s=wait_s)
    except ActionQueued as exc:
        queued = {"ok": None, "queued": True, "action": action, "id": exc.action_id, "expires_at": exc.expires_at}
        return _json(202, {**queued, "message": str(exc)})
    except ActionTimeout as exc:
        return _json(504, {"ok": None, "queued": False, "action": action, "message": str(exc)})
    return _json(200 if result.get("ok") else 409, {"queued": False, **result})
