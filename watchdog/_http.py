"""A tiny, strict HTTP/1.1 server for the watchdog's API (the stdlib's http.server costs the watchdog ~7 MB).

One request per connection (`Connection: close`), request line and headers capped in size, a Content-Length body
capped in size, no chunked uploads. One thread reads every connection (a selector): a request, head and body, must
arrive whole within `io_timeout_s` of the connection (else 408 and close), however slowly it trickles in, and it
costs no thread meanwhile. At most `max_connections` are open in all and `max_per_client` from one address (more
are answered 503 / 429 at once); a whole request gets a daemon thread, at most `max_handlers` at a time (more: 503).
So clients that never finish their request cannot keep /healthz from answering.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable

from ._http_messages import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    HttpError,
    Request,
    Response,
    error_response,
    read_request,
    render_response,
    request_size,
)

logger = logging.getLogger("continuity.api")

App = Callable[[Request], Response]

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "App",
    "HttpError",
    "HttpServer",
    "Request",
    "Response",
    "error_response",
    "read_request",
    "render_response",
    "request_size",
]

MAX_CONNECTIONS = 128  # open connections in all (being read, answered or closed)
MAX_PER_CLIENT = 32  # open connections from one client address
MAX_HANDLERS = 16  # requests being answered at once (a thread each)
LINGER_S = 1.0  # after a refusal or a 408: how long unread request bytes are drained before the close


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


class _Conn:
    """An accepted connection: what it sent so far, and until when it may send (or, once `closing`, be drained)."""

    __slots__ = ("client", "closing", "counted", "data", "deadline", "sock")

    def __init__(self, sock: socket.socket, client: str, deadline: float, counted: bool) -> None:
        self.sock, self.client, self.deadline, self.counted = sock, client, deadline, counted
        self.data, self.closing = bytearray(), False


class HttpServer:
    """Serves `app` on (host, port): one thread reads every connection (blocked in select() while nothing happens:
    no idle wakeups) and starts a daemon thread per whole request. (socketserver would add ~110 KiB to the
    watchdog for what these lines do.)"""

    def __init__(
        self,
        host: str,
        port: int,
        app: App,
        *,
        io_timeout_s: float = 10.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_connections: int = MAX_CONNECTIONS,
        max_per_client: int = MAX_PER_CLIENT,
        max_handlers: int = MAX_HANDLERS,
    ) -> None:
        self.app = app
        self.io_timeout_s = io_timeout_s  # the whole request must arrive within it; the answer is sent within it
        self.max_body_bytes = max_body_bytes
        self.max_connections, self.max_per_client = max_connections, max_per_client
        self._handlers = threading.BoundedSemaphore(max_handlers)
        self._lock = threading.Lock()  # guards _open and _total (the reading thread and the answering threads)
        self._open: dict[str, int] = {}  # client address -> its open connections
        self._total = 0
        self._refused = 0  # refused connections being drained (the reading thread's own count)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            if os.name != "nt":  # POSIX meaning (reuse after TIME_WAIT); on Windows it would allow port theft
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(64)
            self.socket.setblocking(False)
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
        sel = selectors.DefaultSelector()
        sel.register(self.socket, selectors.EVENT_READ, None)
        try:
            while not self._stopping:
                deadlines = [key.data.deadline for key in sel.get_map().values() if key.data is not None]
                for key, _mask in sel.select(max(0.0, min(deadlines) - time.monotonic()) if deadlines else None):
                    try:
                        if key.data is None:
                            self._accept(sel)
                        else:
                            self._readable(sel, key.data)
                    except Exception:  # one connection's surprise must not stop the API
                        logger.exception("API connection handling failed")
                now = time.monotonic()
                for key in list(sel.get_map().values()):
                    if key.data is not None and key.data.deadline <= now:
                        sel.unregister(key.fileobj)
                        self._expired(sel, key.data)
        finally:
            for key in list(sel.get_map().values()):
                if key.data is not None:
                    self._finish(key.data)
            sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        while not self._stopping:
            try:
                sock, address = self.socket.accept()
            except BlockingIOError:
                return
            except OSError:  # e.g. EMFILE: do not spin
                time.sleep(0.1)
                return
            sock.setblocking(False)
            client = str(address[0])
            refusal = None
            with self._lock:
                if self._total >= self.max_connections:
                    refusal = error_response(503, "too many connections")
                elif self._open.get(client, 0) >= self.max_per_client:
                    refusal = error_response(429, "too many connections from your address")
                else:
                    self._open[client] = self._open.get(client, 0) + 1
                    self._total += 1
            conn = _Conn(sock, client, time.monotonic() + self.io_timeout_s, counted=refusal is None)
            if refusal is None:
                sel.register(sock, selectors.EVENT_READ, conn)
            else:
                self._linger(sel, conn, refusal)

    def _readable(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        room = MAX_HEADER_BYTES + self.max_body_bytes + 1 - len(conn.data)
        try:
            data = conn.sock.recv(65536 if conn.closing else max(1, min(16384, room)))
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if conn.closing or not (data or conn.data):  # drained to the end, or closed before sending anything
            if not data:
                sel.unregister(conn.sock)
                self._finish(conn)
            return
        conn.data += data
        if not data or request_size(conn.data, MAX_HEADER_BYTES, self.max_body_bytes) is not None:
            sel.unregister(conn.sock)
            self._dispatch(sel, conn)

    def _expired(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        if conn.closing:
            self._finish(conn)
        else:
            self._linger(sel, conn, error_response(408, f"request not received within {self.io_timeout_s:g} s"))

    def _linger(self, sel: selectors.BaseSelector, conn: _Conn, response: Response) -> None:
        """Send `response` (small: it fits the socket buffer), then drain what the client still sends for up to
        LINGER_S before closing, so the close does not reset the connection before the client read the answer."""
        try:
            conn.sock.send(render_response(response))
            if conn.counted or self._refused < self.max_connections:
                conn.sock.shutdown(socket.SHUT_WR)
                sel.register(conn.sock, selectors.EVENT_READ, conn)
                conn.closing, conn.deadline = True, time.monotonic() + LINGER_S
                self._refused += 0 if conn.counted else 1
                return
        except OSError:
            pass
        self._finish(conn)

    def _finish(self, conn: _Conn) -> None:
        """Close `conn` and give its place back."""
        conn.sock.close()
        if not conn.counted:
            self._refused -= 1 if conn.closing else 0
            return
        with self._lock:
            self._total -= 1
            left = self._open.pop(conn.client) - 1
            if left:
                self._open[conn.client] = left

    def _dispatch(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        """Answer a whole request (or a head to refuse) on a thread of its own."""
        if self._handlers.acquire(blocking=False):
            try:
                threading.Thread(target=self._answer, args=(conn,), name="api-request", daemon=True).start()
                return
            except RuntimeError:  # cannot start a thread
                self._handlers.release()
        self._linger(sel, conn, error_response(503, "too many requests in flight"))

    def _answer(self, conn: _Conn) -> None:
        try:
            response, head_only = self.respond(bytes(conn.data), conn.client)
            conn.sock.settimeout(self.io_timeout_s)
            with contextlib.suppress(OSError):
                conn.sock.sendall(render_response(response, head_only=head_only))
            _close(conn.sock)
        finally:
            self._handlers.release()
            self._finish(conn)

    def respond(self, data: bytes, client: str) -> tuple[Response, bool]:
        """The answer to the request in `data` from `client`, and whether it answers a HEAD (no body sent)."""
        try:
            request = read_request(io.BytesIO(data), max_body_bytes=self.max_body_bytes)
        except HttpError as exc:
            return error_response(exc.status, str(exc)), False
        request.client = client
        try:
            return self.app(request), request.method == "HEAD"
        except Exception:  # the app's bug must not kill the thread silently
            logger.exception("API handler failed")
            return error_response(500, "internal error (see logs/watchdog.log)"), False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting (wakes the reading thread with a connection of its own), then close the socket."""
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
