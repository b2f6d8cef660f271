"""GET /healthz: no token, no details; 200 while supervising with a fresh heartbeat, 503 otherwise."""

from __future__ import annotations

import time

from continuity.watchdog.instance import Home
from tests._watchdog_harness import wait_for, wait_for_event
from tests.test_api import ApiWatchdog, api_config, free_port, request


def test_healthz_flips_to_503_on_a_hang_and_back_after_the_restart(home: Home) -> None:
    """A hung worker turns /healthz 503; once the watchdog has replaced it, /healthz is 200 again."""
    port = free_port()
    api_config(home, port, heartbeat_timeout=1.5)
    wd = ApiWatchdog(home, port)
    try:
        wait_for(lambda: request(port, "GET", "/healthz")[0] == 200, timeout=10, what="healthy")
        status, headers, body = request(port, "GET", "/healthz")
        assert (status, body) == (200, b"ok\n") and headers["content-type"].startswith("text/plain")
        old = wd.worker_pid()
        (home.root / "fake_hang").touch()  # the worker stops beating (once)
        wait_for(lambda: request(port, "GET", "/healthz")[0] == 503, timeout=10, what="503 while hung")
        assert request(port, "GET", "/healthz")[2] == b"unavailable\n"
        wait_for_event(home, "heartbeat_stale", timeout=10)
        wait_for(lambda: wd.worker_pid() not in (None, old), timeout=15, what="the replacement worker")
        wait_for(lambda: request(port, "GET", "/healthz")[0] == 200, timeout=10, what="200 after the restart")
    finally:
        wd.stop()


def test_healthz_needs_no_token_and_tells_nothing(home: Home) -> None:
    """/healthz answers without Authorization and its body carries no state, pid or path."""
    port = free_port()
    api_config(home, port)
    wd = ApiWatchdog(home, port)
    try:
        wait_for(lambda: request(port, "GET", "/healthz")[0] == 200, timeout=10, what="healthy")
        status, _headers, body = request(port, "GET", "/healthz")
        assert status == 200 and body == b"ok\n"
        assert str(home.root).encode() not in body and str(wd.proc.pid).encode() not in body
        assert request(port, "HEAD", "/healthz")[0] == 200
        started = time.monotonic()
        assert request(port, "GET", "/healthz", host="evil.example")[0] == 403
        assert time.monotonic() - started < 5
    finally:
        wd.stop()


def test_healthz_follows_health_degraded_200_critical_503(home: Home) -> None:
    """Sends stalled: 200 "degraded"; WhatsApp showing an unrecognized page: 503 "critical"; fixed: 200 "ok"."""
    import json

    port = free_port()
    api_config(home, port)
    wd = ApiWatchdog(home, port)
    status_file = home.root / "fake_status.json"
    try:
        wait_for(lambda: request(port, "GET", "/healthz")[2] == b"ok\n", timeout=10, what="ok")
        stalled = {"stalled": True, "pending": 3, "failing_for_s": 60, "failing_role": "compose", "problem": "x"}
        status_file.write_text(json.dumps({"whatsapp": {"state": "ready"}, "sending": stalled}))
        wait_for(lambda: request(port, "GET", "/healthz")[2] == b"degraded\n", timeout=10, what="degraded")
        assert request(port, "GET", "/healthz")[0] == 200
        status_file.write_text(json.dumps({"whatsapp": {"state": "unrecognized"}}))
        wait_for(lambda: request(port, "GET", "/healthz")[0] == 503, timeout=10, what="503 when critical")
        assert request(port, "GET", "/healthz")[2] == b"critical\n"
        status_file.write_text(json.dumps({"whatsapp": {"state": "ready"}}))
        wait_for(lambda: request(port, "GET", "/healthz")[2] == b"ok\n", timeout=10, what="ok again")
    finally:
        wd.stop()
