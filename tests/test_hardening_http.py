"""The API under slow and greedy clients: a whole-request deadline and a per-address cap keep /healthz answering.
Real watchdog processes and real sockets on 127.0.0.1."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator

import pytest

from continuity.watchdog._http import MAX_PER_CLIENT, HttpServer, Response
from continuity.watchdog.instance import Home
from tests._watchdog_harness import wait_for
from tests.test_api import ApiWatchdog, api_config, free_port, request

DEADLINE_S = 10.0  # the watchdog's whole-request deadline (start_api's default)
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def healthz(port: int) -> tuple[int, float]:
    """GET /healthz with a 2 s timeout: (status, seconds); status 0 when it did not answer in time."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz", headers={"Host": f"127.0.0.1:{port}"})
        status = conn.getresponse().status
    except OSError:
        status = 0
    finally:
        conn.close()
    return status, time.monotonic() - started


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


class Slow:
    """A client that sends its request one byte at a time; tells when the server closed it and what it said."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        self.sock.setblocking(False)
        self.opened, self.sent, self.reply = time.monotonic(), 0, b""
        self.closed_at: float | None = None
        self.trickle()

    def trickle(self) -> None:
        if self.closed_at is None:
            try:
                self.sent += self.sock.send(REQUEST[self.sent : self.sent + 1])
            except OSError:
                self.poll()

    def poll(self) -> None:
        """Read what the server sent; note when it closed the connection."""
        while self.closed_at is None:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.closed_at = time.monotonic()
            self.reply += data


@pytest.fixture
def api(home: Home) -> Iterator[ApiWatchdog]:
    port = free_port()
    api_config(home, port)
    wd = ApiWatchdog(home, port)
    wait_for(lambda: request(port, "GET", "/healthz")[0] == 200, timeout=10, what="healthy")
    yield wd
    wd.stop()


def test_slow_clients_neither_starve_healthz_nor_outlive_the_deadline(api: ApiWatchdog) -> None:
    """20 sockets trickling a byte every 3 s: /healthz keeps answering 200 within 2 s all along, and each slow
    socket is answered 408 and closed once its whole-request deadline has passed, though it never stopped sending."""
    slow = [Slow(api.port) for _ in range(20)]
    try:
        probes: list[tuple[int, float]] = []
        last_trickle = time.monotonic()
        until = time.monotonic() + DEADLINE_S + 4
        while time.monotonic() < until and any(s.closed_at is None for s in slow):
            if time.monotonic() - last_trickle >= 3:
                last_trickle = time.monotonic()
                for s in slow:
                    s.trickle()
            probes.append(healthz(api.port))
            for s in slow:
                s.poll()
            time.sleep(0.3)
        assert len(probes) >= 10
        assert [p for p in probes if p[0] != 200 or p[1] > 2.0] == [], probes
        assert all(s.sent >= 3 for s in slow), "the slow clients kept sending"
        for s in slow:
            assert s.closed_at is not None, "a slow client outlived the deadline"
            assert DEADLINE_S - 0.5 <= s.closed_at - s.opened <= DEADLINE_S + 3
            assert s.reply.startswith(b"HTTP/1.1 408"), s.reply[:80]
    finally:
        for s in slow:
            s.sock.close()


def test_one_address_cannot_take_every_connection(api: ApiWatchdog) -> None:
    """Past MAX_PER_CLIENT open connections from one address (127.0.0.2) the next are refused 429 at once, while
    another address (127.0.0.1) still gets /healthz 200 quickly."""
    greedy = [Slow(api.port, source="127.0.0.2") for _ in range(MAX_PER_CLIENT + 4)]
    try:
        time.sleep(0.5)
        for s in greedy:
            s.poll()
        refused = [s for s in greedy if s.closed_at is not None]
        assert len(refused) == 4 and all(s.reply.startswith(b"HTTP/1.1 429") for s in refused), [
            s.reply[:40] for s in greedy
        ]
        for _ in range(5):
            status, seconds = healthz(api.port)
            assert status == 200 and seconds < 2.0, (status, seconds)
    finally:
        for s in greedy:
            s.sock.close()


def test_the_deadline_covers_the_whole_request_not_each_read() -> None:
    """A client sending a byte every 0.2 s (each read well within time) is answered 408 and closed once the whole
    request took longer than the deadline (0.6 s)."""
    server = HttpServer("127.0.0.1", 0, lambda r: Response(200, b"{}"), io_timeout_s=0.6)
    server.start()
    try:
        client = Slow(server.port)
        while client.closed_at is None and time.monotonic() - client.opened < 3:
            time.sleep(0.2)
            client.trickle()
            client.poll()
        assert client.closed_at is not None and client.closed_at - client.opened < 1.5
        assert client.reply.startswith(b"HTTP/1.1 408"), client.reply[:80]
        client.sock.close()
    finally:
        server.stop()


def test_a_request_in_pieces_within_the_deadline_is_answered_whole() -> None:
    """Head and body sent in small pieces (a split CRLF, the body after a pause) make one whole request: the app
    gets the full body, and a body cut short by the client's close is refused 400."""
    server = HttpServer("127.0.0.1", 0, lambda r: Response(200, r.body[::-1]), io_timeout_s=5)
    server.start()
    try:
        body = b'{"action": "reconnect"}'
        head = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            for piece in (head[:10], head[10:-1], head[-1:], body[:5], body[5:]):
                sock.sendall(piece)
                time.sleep(0.1)
            reply = read_all(sock)
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(body[::-1]), reply
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(head + body[:5])
            sock.shutdown(socket.SHUT_WR)
            assert read_all(sock).startswith(b"HTTP/1.1 400")
    finally:
        server.stop()
