"""A tiny, strict HTTP/1.1 server for the watchdog's API (the stdlib's http.server costs the watchdog ~7 MB).

One request per connection (`Connection: close`), request line and headers capped in size, a Content-Length body
capped in size, no chunked uploads, a socket timeout so a slow client cannot hold a thread, daemon threads, and at
most `max_connections` requests in flight (more are answered 503 at once).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

logger = logging.getLogger("continuity.api")

MAX_HEADER_BYTES = 8 * 1024  # request line + headers
MAX_BODY_BYTES = 16 * 1024
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class HttpError(ValueError):
    """A request the server refuses; `status` is the HTTP status code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Request:
    """One parsed request (header names lower-case)."""

    __slots__ = ("body", "client", "headers", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes = b"",
        client: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.client = client


class Response:
    """What an app answers; `headers` are extra headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers: dict[str, str] = {} if headers is None else headers


def _read_line(rfile: Any, budget: int) -> bytes:
    line: bytes = rfile.readline(budget + 1)
    if len(line) > budget:
        raise HttpError(431, "request line and headers are too large")
    return line


def read_request(
    rfile: Any, *, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
) -> Request:
    """Parse one request from a binary file; raises HttpError for anything malformed or too large, EOFError when
    the client sent nothing."""
    budget = max_header_bytes
    line = _read_line(rfile, budget)
    if not line:
        raise EOFError("connection closed before a request")
    budget -= len(line)
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]):
        raise HttpError(400, "malformed request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, f"unsupported protocol {version[:20]!r}")
    if not target.startswith("/"):
        raise HttpError(400, "the request target must be a path")
    headers: dict[str, str] = {}
    while True:
        line = _read_line(rfile, budget)
        budget -= len(line)
        if not line:
            raise HttpError(400, "headers ended early")
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.rstrip(b"\r\n").partition(b":")
        if not sep or not _TOKEN.match(name):  # also refuses obsolete line folding (leading whitespace)
            raise HttpError(400, "malformed header line")
        key = name.decode("latin-1").lower()
        if key in headers and key in ("host", "content-length", "authorization", "transfer-encoding"):
            raise HttpError(400, f"duplicate {key} header")
        text = value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    if "transfer-encoding" in headers:
        raise HttpError(411, "Transfer-Encoding is not accepted; send a Content-Length")
    body = b""
    raw_length = headers.get("content-length")
    if raw_length is not None:
        if not raw_length.isdigit() or not raw_length.isascii():
            raise HttpError(400, "invalid Content-Length")
        length = int(raw_length)
        if length > max_body_bytes:
            raise HttpError(413, f"body larger than {max_body_bytes} bytes")
        body = rfile.read(length)
        if len(body) != length:
            raise HttpError(400, "body shorter than its Content-Length")
    split = urlsplit(target)
    try:
        query = dict(parse_qsl(split.query, keep_blank_values=True, strict_parsing=False, max_num_fields=20))
    except ValueError as exc:
        raise HttpError(400, "too many query parameters") from exc
    return Request(method=method, path=unquote(split.path), query=query, headers=headers, body=body)


def render_response(response: Response, *, head_only: bool = False) -> bytes:
    """The bytes of `response`, always with Content-Length and `Connection: close`."""
    reason = REASONS.get(response.status, "Unknown")
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Connection: close",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        "X-Frame-Options: DENY",
        "Referrer-Policy: no-referrer",
    ]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


def error_response(status: int, message: str) -> Response:
    """A small JSON error body: {"error": message}."""
    return Response(status, json.dumps({"error": message}).encode())


App = Callable[[Request], Response]


def _close(conn: socket.socket) -> None:
    """Close gracefully: a close with unread request bytes would send a reset that can eat our reply."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.setblocking(False)
        for _ in range(16):
            if not conn.recv(65536):
                break
    except OSError:
        pass
    conn.close()


class HttpServer:
    """Serves `app` on (host, port): one accept thread that blocks in accept() (no idle wakeups), one daemon
    thread per connection. (socketserver would add ~110 KiB to the watchdog for what these lines do.)"""

    def __init__(
        self,
        host: str,
        port: int,
        app: App,
        *,
        io_timeout_s: float = 10.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_connections: int = 16,
    ) -> None:
        self.app = app
        self.io_timeout_s = io_timeout_s
        self.max_body_bytes = max_body_bytes
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            if os.name != "nt":  # POSIX meaning (reuse after TIME_WAIT); on Windows it would allow port theft
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(16)
        except OSError:
            self.socket.close()
            raise
        self.host = host
        self.port = int(self.socket.getsockname()[1])

    def start(self) -> None:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(target=self._serve, name="api-accept", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping:
            try:
                conn, address = self.socket.accept()
            except OSError:
                if self._stopping:
                    return
                time.sleep(0.1)  # e.g. EMFILE: do not spin
                continue
            if self._stopping:
                conn.close()
                return
            if not self._slots.acquire(blocking=False):
                self._refuse(conn)
                continue
            try:
                threading.Thread(target=self._connection, args=(conn, address), name="api-request", daemon=True).start()
            except RuntimeError:  # cannot start a thread
                self._slots.release()
                self._refuse(conn)

    @staticmethod
    def _refuse(conn: socket.socket) -> None:
        try:
            conn.settimeout(1.0)
            conn.sendall(render_response(error_response(503, "too many requests in flight")))
        except OSError:
            pass
        _close(conn)

    def _connection(self, conn: socket.socket, address: Any) -> None:
        try:
            conn.settimeout(self.io_timeout_s)
            self.handle(conn, str(address[0]))
        finally:
            self._slots.release()
            _close(conn)

    def handle(self, conn: socket.socket, client: str) -> None:
        """Read one request from `conn`, answer it, done."""
        rfile = conn.makefile("rb")
        request: Request | None = None
        try:
            request = read_request(rfile, max_body_bytes=self.max_body_bytes)
            request.client = client
            response = self.app(request)
        except EOFError:
            return
        except HttpError as exc:
            response, request = error_response(exc.status, str(exc)), None
        except TimeoutError:
            response, request = error_response(408, "request not received in time"), None
        except OSError:
            return
        except Exception:  # the app's bug must not kill the thread silently
            logger.exception("API handler failed")
            response = error_response(500, "internal error (see logs/watchdog.log)")
        finally:
            rfile.close()
        with contextlib.suppress(OSError):
            conn.sendall(render_response(response, head_only=request is not None and request.method == "HEAD"))

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting (wakes the accept thread with a connection of its own), then close the socket."""
        self._stopping = True
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        try:
            with socket.create_connection((host, self.port), timeout=1.0):
                pass
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.socket.close()
