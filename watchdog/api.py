"""The watchdog's HTTP API and dashboard: what it answers (it stays up while the worker restarts).

api_server.py listens (with _http.py) and imports this module on the first request (the routes cost the idle
watchdog ~0.3 MB).

GET  /                                   the dashboard (static files from watchdog/static/)
GET  /healthz                            200 when supervising, the heartbeat fresh and health not critical, else 503
GET  /api/status                         what `continuity status --json` shows, plus a small token preview
GET  /api/events?since=UNIX_S&limit=N    recent events from logs/events.jsonl
GET  /api/whatsapp/persistent-connection the connection in the seed's JSON shape
POST /api/whatsapp/persistent-connection {"action": ...} with `Authorization: Bearer TOKEN`
GET  /api/whatsapp/qr.png                session/qr.png while a scan is needed, else 404
GET  /metrics, /api/timeline, /api/outbox; POST /api/outbox/retry|cancel: api_panels.py

Every request's Host must be the bound address, localhost or one of [api] allowed_hosts (DNS-rebinding guard); no
CORS headers are sent. POSTs and /api/outbox need the token; so does every GET but /healthz, /metrics and the
dashboard's static files when the API listens beyond loopback ([api] host = "0.0.0.0", a container).

Just over 300 lines: the routing, the guards in front of it (Host, token, rate-limited refusals) and the handlers
it routes to are read together; the panels' routes are in api_panels.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import api_panels as panels
from ._http import Request, Response, error_response
from .instance import (
    WORKER_ACTIONS,
    ActionQueued,
    ActionTimeout,
    ActionWithdrawn,
    Config,
    EventLog,
    Home,
    HostGuard,
    control,
    is_loopback,
    read_events,
)
from .states import WatchdogState
from .status import collect_status
from .supervisor import Supervisor

# hmac.compare_digest is this same function; importing hmac loads OpenSSL (~3.5 MB) into the watchdog.
from _operator import _compare_digest as compare_digest  # isort: skip

logger = logging.getLogger("continuity.api")

ACTIONS = ("restart-worker", *WORKER_ACTIONS)
CONNECTION_PATH = "/api/whatsapp/persistent-connection"
STATIC_DIR = Path(__file__).with_name("static")
_STATIC = {
    "/": ("dashboard.html", "text/html; charset=utf-8"),
    "/static/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/static/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/static/panels.js": ("panels.js", "text/javascript; charset=utf-8"),
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PUBLIC_PATHS = frozenset({"/healthz", "/metrics", *_STATIC})  # never a token (probes, scrapers, the page itself)
PRIVATE_PATHS = frozenset({"/api/outbox"})  # a token even on loopback (message texts and numbers)
SECURITY_LOG_INTERVAL_S = 60.0  # at most one log line and one event per kind of refusal per this many seconds


class _RateLimiter:
    """Allows one record per kind per `interval_s` seconds and counts what it held back."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self.interval_s, self._clock, self._lock = interval_s, clock, threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, kind: str) -> int | None:
        """None when held back, else how many records of `kind` were held back since the last one allowed."""
        with self._lock:
            now, last = self._clock(), self._last.get(kind)
            if last is not None and now - last < self.interval_s:
                self._held[kind] = self._held.get(kind, 0) + 1
                return None
            self._last[kind] = now
            return self._held.pop(kind, 0)


def _json(status: int, obj: Any, **headers: str) -> Response:
    return Response(status, json.dumps(obj, default=str).encode(), headers=dict(headers))


class ApiApp:
    """Routes requests; one instance per watchdog process, called from many threads."""

    def __init__(
        self,
        home: Home,
        config: Config,
        *,
        supervisor: Supervisor,
        events: EventLog,
        token: str,
        bound: tuple[str, int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.home, self.config, self.supervisor, self.events = home, config, supervisor, events
        self._token = token.encode()
        self.action_wait_s = config.api.action_wait
        host, port = bound
        self._guard = HostGuard(host, port, config.api.allowed_hosts)
        self.exposed = not is_loopback(host)  # reachable from elsewhere: every GET but PUBLIC_PATHS needs the token
        self.timeline_cache = panels.TimelineCache()
        self._limiter = _RateLimiter(SECURITY_LOG_INTERVAL_S, clock)
        self._clock = clock

    # -- guards --------------------------------------------------------------------------------------------
    def host_allowed(self, value: str | None) -> bool:
        """Is `value` (a Host header) the bound address, localhost or an allowed name, with the bound port or none?"""
        return self._guard.allows(value)

    def _security(self, kind: str, message: str, **fields: Any) -> None:
        held = self._limiter.allow(kind)
        if held is None:
            return
        logger.warning("%s (%d more held back since the last report)", message, held)
        self.events.emit(kind, held_back=held, **fields)

    def _authorized(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and compare_digest(given.strip().encode(), self._token):
            return True
        reason = "no token" if not given else "wrong token"
        self._security(
            "api_auth_failed", f"API: refused {request.method} {request.path[:80]} from {request.client}: {reason}",
            client=request.client, path=request.path[:200], reason=reason,
        )  # fmt: skip
        return False

    # -- routing -------------------------------------------------------------------------------------------
    def __call__(self, request: Request) -> Response:
        host = request.headers.get("host")
        if not self.host_allowed(host):
            shown = (host or "")[:100]
            self._security(
                "api_foreign_host", f"API: refused a request for Host {shown!r} from {request.client}",
                client=request.client, host=shown,
            )  # fmt: skip
            return error_response(403, "this Host is not served here (use http://127.0.0.1 or localhost)")
        path, method = request.path, request.method
        if method == "HEAD":
            method = "GET"
        if path == CONNECTION_PATH and method == "POST":
            return self.post_action(request)
        if path in panels.OUTBOX_POSTS and method == "POST":
            return panels.outbox_action(self, request) if self._authorized(request) else self._unauthorized()
        routes: dict[str, Callable[[Request], Response]] = {
            "/healthz": self.healthz,
            "/api/status": self.status,
            "/api/events": self.recent_events,
            CONNECTION_PATH: self.connection,
            "/api/whatsapp/qr.png": self.qr_png,
            "/metrics": lambda r: panels.metrics(self, r),
            "/api/timeline": lambda r: panels.timeline(self, r),
            "/api/outbox": lambda r: panels.outbox(self, r),
        }
        handler = routes.get(path) or (self.static if path in _STATIC else None)
        if handler is None and path not in panels.OUTBOX_POSTS:
            return error_response(404, "not found")
        if method != "GET" or handler is None:
            allow = "GET, HEAD, POST" if path == CONNECTION_PATH else "POST" if handler is None else "GET, HEAD"
            response = error_response(405, f"{request.method} is not allowed here")
            response.headers["Allow"] = allow
            return response
        if path not in PUBLIC_PATHS and (self.exposed or path in PRIVATE_PATHS) and not self._authorized(request):
            return self._unauthorized()
        return handler(request)

    @staticmethod
    def _unauthorized() -> Response:
        response = error_response(401, "Authorization: Bearer <token> required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="continuity"'
        return response

    def static(self, request: Request) -> Response:
        name, content_type = _STATIC[request.path]
        body = (STATIC_DIR / name).read_bytes()
        return Response(200, body, content_type, {"Content-Security-Policy": _CSP})

    def healthz(self, _request: Request) -> Response:
        """200 while supervising with a fresh heartbeat and health not critical ("ok" or "degraded"), else 503
        ("unavailable" or "critical"); no token, and no detail beyond that word."""
        sup = self.supervisor
        fresh = sup.state is WatchdogState.RUNNING and sup.monitor.last_change is not None
        fresh = fresh and not sup.monitor.is_stale()
        if not fresh:
            return Response(503, b"unavailable\n", "text/plain; charset=utf-8")
        level = collect_status(self.home, self.config)[0]["health"]["session_health"]
        word = "ok" if level == "healthy" else level
        return Response(503 if level == "critical" else 200, f"{word}\n".encode(), "text/plain; charset=utf-8")

    def status(self, _request: Request) -> Response:
        report, _code = collect_status(self.home, self.config)
        tokens = (report.get("heartbeat") or {}).get("tokens") or {}
        report["tokens_preview"] = tokens.get("preview")  # the worker's (last) heartbeat: the store is its own
        report["api"] = {"actions": list(ACTIONS)}
        return _json(200, report)

    def recent_events(self, request: Request) -> Response:
        try:
            since = float(request.query.get("since") or 0)
            limit = min(1000, max(1, int(request.query.get("limit") or 200)))
        except ValueError:
            return error_response(400, "since must be Unix seconds and limit a whole number")
        return _json(200, {"events": read_events(self.home.events_file, since=since, limit=limit, max_bytes=1 << 20)})

    def qr_png(self, _request: Request) -> Response:
        path = self.home.qr_png_file
        try:
            if path.stat().st_size <= 1 << 20:
                return Response(200, path.read_bytes(), "image/png")
        except OSError:
            pass
        return error_response(404, "no QR code to scan right now")

    def connection(self, _request: Request) -> Response:
        report, _code = collect_status(self.home, self.config)
        return _json(200, self.connection_view(report))

    def connection_view(self, report: dict[str, Any]) -> dict[str, Any]:
        """The seed's persistent-connection shape, from the status report (the worker's heartbeat: the profile's
        size is the one it measured, in MiB; the watchdog never walks the profile)."""
        beat = (report.get("heartbeat") or {}) if report["worker"]["alive"] else {}
        wa = beat.get("whatsapp") or {}
        health = report["health"]
        recs = health["recommendations"]
        exists = self.home.profile_dir.is_dir()
        mib = wa.get("profile_mib")
        size = round(mib * 2**20) if isinstance(mib, int | float) and exists else None  # bytes; None: not measured
        too_big = size is not None and size > self.config.whatsapp.session_max_mb * 2**20
        state = wa.get("state")
        return {
            "connection": {
                "isConnected": bool(wa.get("connected")),
                "quality": wa.get("quality") or ("unknown" if wa.get("connected") else "disconnected"),
                "uptime": beat.get("uptime_s", 0),
                "clientInfo": {"state": state or "unknown", "pid": beat.get("pid"), "lastOk": wa.get("last_ok")},
            },
            "session": {
                "exists": exists,
                "isValid": exists and state in ("ready", "offline", "conflict"),
                "health": health["session_health"],
                "size": size,
            },
            "health": {
                "sessionHealth": health["session_health"],
                "reconnectAttempts": wa.get("reconnect_attempts", 0),
                "browserRestarts": wa.get("browser_restarts", 0),
                "lastHeartbeat": beat.get("ts"),
            },
            "recommendations": {
                "shouldClearSession": bool(recs.get("should_clear_session")) or too_big,
                "shouldReconnect": bool(recs.get("should_reconnect")),
                "needsQRScan": bool(recs.get("needs_qr_scan")),
                "fixSending": recs.get("fix_sending"),  # a sentence naming the failing step and page role, or null
                "checkPage": recs.get("check_page"),  # the page is not recognized: what to look at, or null
                "fixJob": recs.get("fix_job"),  # a job failing run after run, named, or null
            },
            "watchdog": {
                "state": report["watchdog"].get("state"),
                "restarts": report["watchdog"].get("restarts_total"),
            },
            "timestamp": time.time(),
        }

    def post_action(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return error_response(400, 'the body must be JSON: {"action": "..."}')
        action = body.get("action") if isinstance(body, dict) else None
        if action not in ACTIONS:
            return error_response(400, f"unknown action {str(action)[:40]!r}; known: {', '.join(ACTIONS)}")
        self.events.emit("api_action", action=action, client=request.client)
        if action == "restart-worker":
            return self._restart_worker()
        params = body.get("params") if isinstance(body.get("params"), dict) else None
        wait_s = self.action_wait_s
        try:
            result = control.ask(
                self.home.control_dir, action, params=params, source="api", timeout_s=wait_s, taken_grace_s=wait_s
            )
        except ActionQueued as exc:  # a harmless action: it waits for a worker until exc.expires_at
            body = {"ok": None, "queued": True, "action": action, "id": exc.action_id, "expires_at": exc.expires_at}
            return _json(202, {**body, "message": str(exc)})
        except ActionTimeout as exc:  # withdrawn (a destructive action: nothing was done), or taken, no answer yet
            withdrawn = isinstance(exc, ActionWithdrawn)
            body = {"ok": False if withdrawn else None, "queued": False, "withdrawn": withdrawn, "action": action}
            return _json(504, {**body, "message": str(exc)})
        return _json(200, {"queued": False, **result})

    def _restart_worker(self) -> Response:
        snapshot = self.supervisor.snapshot()
        if snapshot["state"] != WatchdogState.RUNNING.value or snapshot["worker_pid"] is None:
            message = f"the worker is not running (watchdog {snapshot['state']}); nothing to restart"
            return _json(409, {"ok": False, "action": "restart-worker", "message": message})
        # Tied to the worker seen here: if it dies before the loop gets to it, the request is dropped, so the next
        # worker (started for that death) is not killed for it.
        self.supervisor.request_restart("API restart-worker", pid=snapshot["worker_pid"])
        message = "the watchdog is restarting the worker now"
        return _json(
            200, {"ok": True, "action": "restart-worker", "message": message, "old_pid": snapshot["worker_pid"]}
        )
