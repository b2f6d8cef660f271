"""The watchdog's HTTP API, against a real watchdog process supervising a fake worker, over real sockets.

Helpers here (FAKE_WORKER, api_config, ApiWatchdog, request) are shared with the dashboard and healthz tests.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.watchdog.instance import Home
from tests._watchdog_harness import FAST, events, start_watchdog, stop_watchdog, wait_for, wait_for_event

# A worker that beats every 0.1 s with the contents of fake_status.json merged in, answers control actions through
# the real run/control protocol (unless fake_no_answers exists) and stops beating once when fake_hang appears.
FAKE_WORKER = r"""
import json, os, sys, time
from pathlib import Path
from continuity.watchdog.instance import control
home = Path(os.environ["CONTINUITY_HOME"]); beat = Path(os.environ["CONTINUITY_HEARTBEAT"])
started, seq = time.time(), 0
while True:
    if (home / "fake_hang").exists():
        (home / "fake_hang").unlink()
        time.sleep(3600)
    seq += 1
    try:
        extra = json.loads((home / "fake_status.json").read_text())
    except (OSError, ValueError):
        extra = {}
    payload = {"pid": os.getpid(), "seq": seq, "ts": time.time(), "started_at": started,
               "uptime_s": time.time() - started, **extra}
    (beat.parent / "hb.tmp").write_text(json.dumps(payload)); os.replace(beat.parent / "hb.tmp", beat)
    if not (home / "fake_no_answers").exists():
        for request in control.pending(home / "run" / "control"):
            control.answer(home / "run" / "control", request, ok=True, message=f"{request['action']} done (fake)")
    time.sleep(0.1)
"""


# What the worker publishes in its heartbeat's tokens section (TokenStore.preview): the API shows it as it is.
PREVIEW = {
    "count": 2,
    "items": [{"id": "t1", "symbol": "ABC", "chain": "sol"}, {"id": "t2", "symbol": "<b>x</b>", "chain": "eth"}],
}


def free_port() -> int:
    """A port free right now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_config(home: Home, port: int, *, api: str = "", extra: str = "", **watchdog: Any) -> None:
    """continuity.toml: fast watchdog timings, the fake worker, the API on `port`."""
    settings = {**FAST, "startup_grace": 5.0, **watchdog}
    settings["worker_command"] = [sys.executable, "-c", FAKE_WORKER]
    body = "[watchdog]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    body += f"[api]\nport = {port}\naction_wait = 2.0\n{api}\n{extra}"
    home.config_file.write_text(body, encoding="utf-8")


def request(
    port: int, method: str, path: str, *, body: Any = None, token: str | None = None, host: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with http.client; returns (status, headers with lower-case names, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    headers = {"Host": host if host is not None else f"127.0.0.1:{port}"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    result = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    conn.close()
    return result


def get_json(port: int, path: str) -> Any:
    status, _headers, body = request(port, "GET", path)
    assert status == 200, body
    return json.loads(body)


class ApiWatchdog:
    """A real watchdog process with the API up, for one home."""

    def __init__(self, home: Home, port: int) -> None:
        self.home, self.port = home, port
        self.proc = start_watchdog(home)
        wait_for(lambda: (home.run_dir / "api.json").exists(), timeout=15, what="the API to start")
        wait_for(lambda: self.worker_pid(), timeout=15, what="a worker heartbeat")

    @property
    def token(self) -> str:
        return (self.home.run_dir / "api_token").read_text().strip()

    def worker_pid(self) -> int | None:
        try:
            return int(json.loads(self.home.heartbeat_file.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def stop(self) -> str:
        return stop_watchdog(self.proc)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWatchdog]:
    """One watchdog with the API for the whole module (saves a start per test)."""
    home = Home(tmp_path_factory.mktemp("api") / "home")
    home.root.mkdir()
    home.ensure()
    port = free_port()
    api_config(home, port)
    whatsapp = {"state": "qr", "connected": False, "quality": "poor", "reconnect_attempts": 3, "browser_restarts": 1}
    whatsapp |= {"last_ok": 1.0, "profile_mib": 1.5}
    status = {"whatsapp": whatsapp, "tokens": {"active": 2, "preview": PREVIEW}, "outbox": {"pending": 1}}
    (home.root / "fake_status.json").write_text(json.dumps(status))
    wd = ApiWatchdog(home, port)
    yield wd
    wd.stop()


def test_persistent_connection_has_the_seed_shape(running: ApiWatchdog) -> None:
    """GET persistent-connection answers the seed's four sections from the heartbeat (the profile's size is the
    worker's measure, whatever the files hold now: the watchdog never walks the profile)."""
    (running.home.profile_dir / "Default").mkdir(parents=True, exist_ok=True)
    (running.home.profile_dir / "Default" / "Cookies").write_bytes(b"x" * 1000)
    wait_for(lambda: "whatsapp" in json.loads(running.home.heartbeat_file.read_text()), timeout=5, what="beat")
    answer = get_json(running.port, "/api/whatsapp/persistent-connection")
    assert set(answer) >= {"connection", "session", "health", "recommendations"}
    assert answer["connection"]["isConnected"] is False
    assert answer["connection"]["quality"] == "poor"
    assert answer["connection"]["uptime"] > 0
    assert answer["connection"]["clientInfo"]["pid"] == running.worker_pid()
    assert answer["session"] == {"exists": True, "isValid": False, "health": "degraded", "size": 1572864}
    assert answer["health"]["reconnectAttempts"] == 3 and answer["health"]["browserRestarts"] == 1
    assert answer["health"]["lastHeartbeat"] > time.time() - 30
    assert answer["recommendations"] == {
        "shouldClearSession": False,
        "shouldReconnect": False,
        "needsQRScan": True,
        "fixSending": None,
        "checkPage": None,
        "fixJob": None,
    }


def test_status_matches_the_cli_and_previews_tokens(running: ApiWatchdog) -> None:
    """/api/status holds what `status --json` shows, plus the token preview of the worker's heartbeat (the store's
    files are not read: a snapshot written there is not what it shows)."""
    snapshot = '{"format":"continuity.tokens","version":1,"generation":1,"count":1,"tokens":[\n{"id":"other"}\n]}\n'
    (running.home.data_dir / "tracked_tokens.json").write_text(snapshot)
    answer = get_json(running.port, "/api/status")
    cli = subprocess.run(
        [sys.executable, "-m", "continuity.watchdog", "--home", str(running.home.root), "status", "--json"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    expected = json.loads(cli.stdout)
    assert answer["watchdog"]["pid"] == expected["watchdog"]["pid"] == running.proc.pid
    assert answer["worker"]["pid"] == expected["worker"]["pid"]
    assert answer["health"]["session_health"] == expected["health"]["session_health"]
    assert answer["tokens_preview"] == PREVIEW


def test_events_since(running: ApiWatchdog) -> None:
    """/api/events returns only events newer than `since`, and refuses a `since` that is not a number."""
    everything = get_json(running.port, "/api/events?since=0")["events"]
    assert any(e["event"] == "api_started" for e in everything)
    cut = everything[-1]["ts"]
    assert all(e["ts"] > cut for e in get_json(running.port, f"/api/events?since={cut}")["events"])
    assert len(get_json(running.port, "/api/events?since=0&limit=2")["events"]) == 2
    assert request(running.port, "GET", "/api/events?since=yesterday")[0] == 400


def test_post_needs_the_token_and_failures_are_logged_rate_limited(running: ApiWatchdog) -> None:
    """No or a wrong token: 401; five failures make one api_auth_failed event, never holding the token."""
    before = len(events(running.home, "api_auth_failed"))
    for token in (None, "wrong", None, "x" * 48, "Bearer"):
        status, headers, _ = request(running.port, "POST", "/api/whatsapp/persistent-connection",
                                     body={"action": "reconnect"}, token=token)  # fmt: skip
        assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    after = events(running.home, "api_auth_failed")
    assert len(after) - before == 1
    assert running.token not in running.home.events_file.read_text()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "must be JSON"),
        (b"[1]", "unknown action"),
        (b'{"action": "format-disk"}', "unknown action"),
        (b"\xff\xfe", "must be JSON"),
        (b'{"action": 7}', "unknown action"),
    ],
)
def test_post_bad_body_is_400(running: ApiWatchdog, body: bytes, why: str) -> None:
    """A body that is not JSON, or names no known action, gets 400 with a reason."""
    status, _h, answer = request(running.port, "POST", "/api/whatsapp/persistent-connection", body=body,
                                 token=running.token)  # fmt: skip
    assert status == 400 and why in json.loads(answer)["error"]


def test_worker_action_returns_the_workers_answer(running: ApiWatchdog) -> None:
    """POST reconnect queues it in run/control; the worker's answer comes back as the 200 body."""
    status, _h, body = request(running.port, "POST", "/api/whatsapp/persistent-connection",
                               body={"action": "reconnect"}, token=running.token)  # fmt: skip
    answer = json.loads(body)
    assert status == 200, answer
    assert answer["ok"] is True and answer["message"] == "reconnect done (fake)" and answer["queued"] is False


def test_unanswered_action_is_202_queued(running: ApiWatchdog) -> None:
    """When the worker does not answer within [api] action_wait, the reply is 202 with the queued id."""
    (running.home.root / "fake_no_answers").touch()
    try:
        started = time.monotonic()
        status, _h, body = request(running.port, "POST", "/api/whatsapp/persistent-connection",
                                   body={"action": "health-check"}, token=running.token)  # fmt: skip
        waited = time.monotonic() - started
    finally:
        (running.home.root / "fake_no_answers").unlink()
    answer = json.loads(body)
    assert status == 202 and answer["queued"] is True and 1.9 < waited < 8
    assert (running.home.control_dir / f"{answer['id']}.json").exists() or (
        running.home.control_dir / f"{answer['id']}.result.json"
    ).exists()


def test_restart_worker_gives_a_new_worker(running: ApiWatchdog) -> None:
    """restart-worker makes the watchdog kill the worker's tree and start a new one."""
    old = running.worker_pid()
    status, _h, body = request(running.port, "POST", "/api/whatsapp/persistent-connection",
                               body={"action": "restart-worker"}, token=running.token)  # fmt: skip
    assert status == 200 and json.loads(body)["old_pid"] == old
    wait_for(lambda: running.worker_pid() not in (None, old), timeout=15, what="a new worker")
    assert any(e.get("reason") == "API restart-worker" for e in events(running.home, "restart_requested"))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("[::1]", True),
        ("LOCALHOST:{port}", True),
        ("evil.example", False),
        ("127.0.0.1:1", False),
        ("evil.example:{port}", False),
        ("", False),
        ("127.0.0.1.evil.example", False),
    ],
)
def test_host_header_guard(running: ApiWatchdog, host: str, allowed: bool) -> None:
    """Only the bound address or localhost (with no port or the bound port) is served; others get 403."""
    status, headers, _ = request(running.port, "GET", "/api/status", host=host.format(port=running.port))
    assert (status == 200) is allowed and (status == 403) is not allowed
    assert not any(name.startswith("access-control-") for name in headers)


def test_foreign_host_is_a_security_event(tmp_path: Path) -> None:
    """A refused Host makes one api_foreign_host event naming that Host; a second within a minute is held back."""
    home = Home(tmp_path / "home")  # a watchdog of its own: no event (and no rate limit) left by other tests
    home.root.mkdir()
    home.ensure()
    port = free_port()
    api_config(home, port)
    watchdog = ApiWatchdog(home, port)
    try:
        assert events(home, "api_foreign_host") == []
        assert request(port, "GET", "/", host="rebind.example")[0] == 403
        [event] = wait_for_event(home, "api_foreign_host", timeout=5)
        assert event["host"] == "rebind.example" and event["held_back"] == 0
        assert event["client"].startswith("127.0.0.1")
        assert request(port, "GET", "/api/status", host="second.example")[0] == 403
        assert request(port, "GET", "/api/status")[0] == 200  # served after the refusal, which was handled first
        assert [e["host"] for e in events(home, "api_foreign_host")] == ["rebind.example"]
    finally:
        watchdog.stop()


def test_no_cors_and_security_headers(running: ApiWatchdog) -> None:
    """Even with an Origin header no CORS header is sent; the page gets a strict CSP and every reply closes."""
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    conn.request("GET", "/", headers={"Origin": "http://evil.example"})
    response = conn.getresponse()
    headers = {k.lower(): v for k, v in response.getheaders()}
    body = response.read()
    assert response.status == 200 and b"<title>Continuity</title>" in body
    assert not any(name.startswith("access-control-") for name in headers)
    assert "script-src 'self'" in headers["content-security-policy"] and headers["connection"] == "close"


def test_qr_png_only_while_present(running: ApiWatchdog) -> None:
    """/api/whatsapp/qr.png is 404 without session/qr.png and serves the file when it exists."""
    assert request(running.port, "GET", "/api/whatsapp/qr.png")[0] == 404
    running.home.session_dir.mkdir(exist_ok=True)
    png = b"\x89PNG\r\n\x1a\n" + b"fake"
    (running.home.session_dir / "qr.png").write_bytes(png)
    try:
        status, headers, body = request(running.port, "GET", "/api/whatsapp/qr.png")
    finally:
        (running.home.session_dir / "qr.png").unlink()
    assert status == 200 and headers["content-type"] == "image/png" and body == png


def test_unknown_path_and_wrong_method(running: ApiWatchdog) -> None:
    """Unknown paths are 404; a wrong method is 405 with Allow; a path outside the static list is not served."""
    assert request(running.port, "GET", "/nope")[0] == 404
    assert request(running.port, "GET", "/static/../api.py")[0] == 404
    status, headers, _ = request(running.port, "DELETE", "/api/status")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def raw_exchange(port: int, data: bytes, *, pause_s: float = 0.0) -> bytes:
    """Send raw bytes, read the whole reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(data)
        if pause_s:
            time.sleep(pause_s)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"POST /api/status HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"411"),
        (
            b"POST /api/whatsapp/persistent-connection HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999\r\n\r\n",
            b"413",
        ),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
        (b"GET /\r\n\r\n", b"400"),
        (b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", b"505"),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\n folded: line\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"GET http://evil/ HTTP/1.1\r\nHost: localhost\r\n\r\n", b"400"),
    ],
)
def test_malformed_requests_are_refused(running: ApiWatchdog, raw: bytes, status: bytes) -> None:
    """Chunked bodies, oversize bodies or headers, bad request lines, folding and duplicate Host are refused."""
    reply = raw_exchange(running.port, raw)
    assert reply.startswith(b"HTTP/1.1 " + status), reply[:200]
    assert b"\r\nConnection: close\r\n" in reply


def test_token_file_is_private_and_kept(running: ApiWatchdog) -> None:
    """The generated token lives in run/api_token with mode 0600, and `status` can point to it via run/api.json."""
    path = running.home.run_dir / "api_token"
    assert len(running.token) >= 32
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
    info = json.loads((running.home.run_dir / "api.json").read_text())
    assert info["token_file"] == str(path) and info["url"] == f"http://127.0.0.1:{running.port}/"


def test_status_lines_point_to_the_api_and_token(running: ApiWatchdog) -> None:
    """api_status_lines (for `continuity status`) names the URL and the token file, and nothing without api.json."""
    from continuity.watchdog.status import api_status_lines

    (line,) = api_status_lines(running.home.root)
    assert f"http://127.0.0.1:{running.port}/" in line and str(running.home.run_dir / "api_token") in line
    assert running.token not in line
    assert api_status_lines(running.home.root / "nowhere") == []


def test_allowed_hosts_extend_the_host_guard(home: Home) -> None:
    """[api] allowed_hosts adds names (e.g. a LAN name when bound to 0.0.0.0); the bound port still must match."""
    from continuity.watchdog.api import ApiApp
    from continuity.watchdog.instance import ApiConfig, Config, EventLog

    config = Config(api=ApiConfig(host="0.0.0.0", allowed_hosts=["Box.LAN"]))
    app = ApiApp(home, config, supervisor=None, events=EventLog(home.events_file, source="t"), token="t" * 32,  # type: ignore[arg-type]
                 bound=("0.0.0.0", 8765))  # fmt: skip
    assert app.host_allowed("box.lan:8765") and app.host_allowed("BOX.lan") and app.host_allowed("localhost")
    assert not app.host_allowed("box.lan:8766") and not app.host_allowed("other.lan")
    assert not app.host_allowed("[::1]:8765]") and not app.host_allowed(None)


def test_configured_token_and_restart_keep_working(home: Home) -> None:
    """With [api] token set no file is generated and that token authorizes; the API goes away with the watchdog."""
    port = free_port()
    api_config(home, port, api='token = "configured-token-0123456789abcdef"')
    wd = ApiWatchdog(home, port)
    try:
        assert not (home.run_dir / "api_token").exists()
        status, _h, _b = request(port, "POST", "/api/whatsapp/persistent-connection", body={"action": "reconnect"},
                                 token="configured-token-0123456789abcdef")  # fmt: skip
        assert status == 200
    finally:
        wd.stop()
    assert not (home.run_dir / "api.json").exists()
    with pytest.raises(OSError):
        request(port, "GET", "/healthz")


def test_port_in_use_keeps_supervising(home: Home) -> None:
    """With the port taken the watchdog says so (log + event) and still supervises the worker without the API."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        api_config(home, port)
        proc = start_watchdog(home)
        try:
            event = wait_for_event(home, "api_unavailable", timeout=15)[0]
            assert event["port"] == port
            first = wait_for_event(home, "worker_spawned", timeout=15)[0]["pid"]
            os.kill(first, 9)
            wait_for_event(home, "worker_spawned", count=2, timeout=15)
            assert proc.poll() is None
        finally:
            stop_watchdog(proc)
    log = (home.logs_dir / "watchdog.log").read_text()
    assert f"cannot listen on 127.0.0.1:{port}" in log and "keeps supervising without the API" in log


def test_slow_client_times_out_and_connections_are_capped(tmp_path: Path) -> None:
    """A client that never finishes its request gets 408 after the socket timeout; excess connections get 503."""
    from continuity.watchdog._http import HttpServer, Response

    server = HttpServer("127.0.0.1", 0, lambda r: Response(200, b"{}"), io_timeout_s=0.5, max_connections=2)
    server.start()
    try:
        slow = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
        for sock in slow:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never ends its headers
        time.sleep(0.1)
        assert raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 503")
        started = time.monotonic()
        assert slow[0].recv(100).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 3
        for sock in slow:
            sock.close()
        time.sleep(0.2)
        assert raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")
    finally:
        server.stop()
