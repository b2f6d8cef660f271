"""The simulator's HTTP side: the page (static files), the page's own API, and the control/state endpoints.

Routes:
  GET  / and /send                 the WhatsApp Web page (index.html; the script reads ?phone=&text=)
  GET  /app.js, /app.css           the page's script and style
  GET  /__sim__/state              JSON state (see SimState.state), including "variant"
  GET  /__sim__/delivered          JSON list of delivered messages
  POST /__sim__/control            JSON {"action": "scan"|"logout"|"set_mode"|"set_variant"|"state"|"delivered", ...}
                                   ({"action": "receive", "chat": DIGITS or "group:NAME", "text", "sender"?,
                                   "name"?}: a message arrives; {"action": "receipts"}: read receipts sent)
                                   ({"action": "set_variant", "variant": NAME}: see VARIANTS; unknown name -> 400)
                                   (also add_group {"title"}, enter_code {"code"?}, link_code: _groups.py, _linking.py)
  POST /__sim__/api/<name>         the page's calls (hello, poll, qr_reload, link_start, link_phone, chat, send,
                                   logout, use_here);
                                   (open_incoming: a chat's incoming bubbles, marked read);
                                   hello/poll/qr_reload answer with "locale", "variant" and "web_version"
                                   (window.Debug.VERSION), which the page applies when it loads (so a new
                                   variant shows on the page's next load)
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ._linking import LinkRefused
from ._modes import DEFAULT_WEB_VERSION
from ._state import NoQrShown, SimState

log = logging.getLogger("continuity.simulator")

MAX_BODY = 1 << 20
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PAGES = {"/": "index.html", "/send": "index.html", "/app.js": "app.js", "/app.css": "app.css"}
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
# The page may only talk to its own origin; the browser enforces it.
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"


class BadRequest(ValueError):
    """A request the simulator refuses with HTTP 400 and a message saying why."""


def load_static() -> dict[str, bytes]:
    """The page's files, read once from the package."""
    folder = resources.files("continuity.devtools.simulator").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in set(_PAGES.values())}


class SimHTTPServer(ThreadingHTTPServer):
    """A threading server that carries the simulator's state; handler threads are daemons."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, *, sim: SimState, poll_s: float, url: Callable[[], str]) -> None:
        self.sim = sim
        self.poll_s = poll_s
        self.url = url
        self.static = load_static()
        super().__init__(("127.0.0.1", port), _Handler)


def _str(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key!r} must be a string")
    return value


class _Handler(BaseHTTPRequestHandler):
    server: SimHTTPServer
    server_version = "WASim/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator http: " + format, *args)

    # ----- plumbing --------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", _CSP)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"ok": False, "error": message})

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise BadRequest("bad Content-Length") from exc
        if not 0 <= length <= MAX_BODY:
            raise BadRequest(f"body must be 0..{MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        return body

    def _slow(self) -> None:
        slow = self.server.sim.mode("slow")
        if slow:
            time.sleep(slow["seconds"])

    def _state(self) -> dict[str, Any]:
        return {**self.server.sim.state(), "url": self.server.url()}

    # ----- verbs -----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/__sim__/state":
            self._json(200, self._state())
        elif path == "/__sim__/delivered":
            self._json(200, self.server.sim.delivered())
        elif path in _PAGES:
            self._slow()
            name = _PAGES[path]
            self._send(200, self.server.static[name], _TYPES[name[name.rfind(".") :]])
        elif path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        else:
            self._error(404, f"no such page: {path}")

    def do_POST(self) -> None:
        path = self.path.partition("?")[0]
        try:
            if path == "/__sim__/control":
                self._json(200, self._control(self._body()))
            elif path.startswith("/__sim__/api/"):
                self._slow()
                self._json(200, self._page_api(path.removeprefix("/__sim__/api/"), self._body()))
            else:
                self._error(404, f"no such endpoint: {path}")
        except (NoQrShown, LinkRefused) as exc:
            self._error(HTTPStatus.CONFLICT, str(exc))
        except ValueError as exc:  # BadRequest and the state's own ValueErrors
            self._error(HTTPStatus.BAD_REQUEST, str(exc))

    # ----- control ---------------------------------------------------------------------------------
    def _control(self, body: dict[str, Any]) -> Any:
        sim = self.server.sim
        action = body.get("action")
        if action == "scan":
            return sim.scan(_str(body, "payload", required=False))
        if action == "logout":
            return {"ok": True, "removed": sim.logout()}
        if action == "set_mode":
            mode = _str(body, "mode")
            on = body.get("on", True)
            if not isinstance(on, bool):
                raise BadRequest("'on' must be true or false")
            params = body.get("params", {})
            if not isinstance(params, dict):
                raise BadRequest("'params' must be a JSON object")
            extra = {k: v for k, v in body.items() if k not in ("action", "mode", "on", "params")}
            return {"ok": True, "modes": sim.set_mode(str(mode), on, **params, **extra)}
        if action == "set_variant":
            return {"ok": True, "variant": sim.set_variant(str(_str(body, "variant")))}
        if action == "state":
            return self._state()
        if action == "delivered":
            return sim.delivered()
        if action == "add_group":  # {"title": "Token Alerts"}: a group the account is in (_groups.py)
            return {"ok": True, "jid": sim.add_group(str(_str(body, "title")))}
        if action == "enter_code":  # the phone enters the linking code a page shows ({"code"} optional)
            return sim.enter_code(_str(body, "code", required=False))
        if action == "link_code":
            return {"ok": True, "code": sim.link_code()}
        if action == "receive":  # a message arrives for the account: {"chat": DIGITS|"group:NAME", "text", ...}
            sender, name = _str(body, "sender", required=False), _str(body, "name", required=False)
            chat, text = str(_str(body, "chat")), str(_str(body, "text"))
            return {"ok": True, **sim.receive(chat, text, sender=sender, name=name)}
        if action == "receipts":
            return sim.receipts()
        raise BadRequest(
            f"unknown action {action!r}; use scan, logout, set_mode, set_variant, state, delivered, add_group, "
            "enter_code, link_code, receive or receipts"
        )

    # ----- the page's own calls --------------------------------------------------------------------
    def _page_api(self, name: str, body: dict[str, Any]) -> Any:
        sim = self.server.sim
        token = _str(body, "token", required=False)
        if name in ("hello", "poll", "qr_reload", "link_start", "link_phone"):
            client = _str(body, "client")
            if not _CLIENT_ID.fullmatch(client or ""):
                raise BadRequest("'client' must be 1..64 of [A-Za-z0-9_-]")
            assert client is not None
            if name == "link_start":  # "Log in with phone number" (_linking.py)
                result = sim.link_start(client)
            elif name == "link_phone":  # the number typed, then "Next"
                result = sim.link_phone(client, str(_str(body, "phone")))
            else:
                result = sim.reload_qr(client) if name == "qr_reload" else sim.page(client, token)
            locale = sim.mode("locale")
            lang = locale["lang"] if locale else "en"
            web = (sim.mode("web_version") or {}).get("version", DEFAULT_WEB_VERSION)
            extra = {"poll_s": self.server.poll_s, "locale": lang, "variant": sim.variant(), "web_version": web}
            return {**result, **extra}
        if name == "chat":
            if not sim.logged_in(token):
                return {"status": "logged_out"}
            return sim.open_chat(str(_str(body, "phone")))
        if name == "send":
            phone, text, msg_id = (str(_str(body, k)) for k in ("phone", "text", "id"))
            return sim.send(token, phone, text, msg_id)
        if name == "logout":
            return {"ok": True, "removed": sim.logout(token) if token else 0}
        if name == "open_incoming":
            return sim.open_incoming(token, str(_str(body, "jid")))
        if name == "use_here":
            mode = _str(body, "mode")
            if mode not in ("conflict", "another_tab", "update_popup"):
                raise BadRequest("use_here clears 'conflict', 'another_tab' or 'update_popup'")
            sim.set_mode(str(mode), False)
            return {"ok": True}
        raise BadRequest(f"unknown page call {name!r}")
