"""Alerts: rules, backoff, the event follower, delivery to local webhook/Telegram receivers, and a real watchdog."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from continuity.watchdog.alerts import (
    RETRY_CAP_S,
    RETRY_FIRST_S,
    Alert,
    AlertRules,
    AlertSender,
    check_config,
    redact,
)
from continuity.watchdog.instance import AlertsConfig, EventLog, Home, JsonlFollower, backoff_delay
from tests._watchdog_harness import events, start_watchdog, stop_watchdog, wait_for, write_config

BOT_TOKEN = "123456:SECRET-bot-token-abcdef"


class Receiver:
    """A local HTTP receiver: records each POST (path, JSON body); answers with the queued statuses, then 200."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self.statuses: list[int] = []
        self.delay_s = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(outer.delay_s)
                outer.received.append((self.path, json.loads(body)))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running local receiver, shut down after the test."""
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_backoff_doubles_and_caps() -> None:
    """Retry delays: 2, 4, 8 ... seconds, never above the cap."""
    delays = [backoff_delay(attempt=n, first_s=RETRY_FIRST_S, cap_s=RETRY_CAP_S) for n in (1, 2, 3, 4)]
    assert delays == [2.0, 4.0, 8.0, 16.0]
    assert backoff_delay(attempt=20, first_s=RETRY_FIRST_S, cap_s=RETRY_CAP_S) == 300.0
    assert backoff_delay(attempt=3, first_s=1, cap_s=3) == 3.0


def test_redact_and_config_checks_never_quote_secrets() -> None:
    """Secrets are replaced by ***; config problems name the key, not the value."""
    assert redact(f"POST https://api/bot{BOT_TOKEN}/x failed", [BOT_TOKEN, ""]) == "POST https://api/bot***/x failed"
    problems = check_config(AlertsConfig(webhook_url="ftp://secret-host/x?k=v", telegram_bot_token=BOT_TOKEN))
    assert len(problems) == 2 and all("secret" not in p and BOT_TOKEN not in p for p in problems)
    assert check_config(AlertsConfig(webhook_url="https://hooks.example/x")) == []


def test_rules_turn_events_into_alerts() -> None:
    """budget_spent, qr_needed, logged_out, store_restored (and with a gap), security alert at once; crashes at
    the Nth in the window."""
    rules = AlertRules(AlertsConfig(crash_loop_restarts=3, crash_loop_window=60))
    kinds = [a.kind for k in ("budget_spent", "qr_needed", "logged_out", "store_restored", "tokens_added",
                              "store_restore_incomplete", "api_auth_failed")
             for a in rules.on_event({"event": k, "ts": 1.0})]  # fmt: skip
    assert kinds == [
        "budget_spent", "qr_needed", "logged_out", "store_restored", "store_restore_incomplete", "security"
    ]  # fmt: skip
    gap = rules.on_event({"event": "store_restore_incomplete", "missing_generations": "3, 4", "ts": 1.0})[0]
    assert "missing_generations=3, 4" in gap.text("bot")
    stalled = rules.on_event({"event": "send_stalled", "problem": "compose box not found (role compose)", "ts": 1})
    assert [a.kind for a in stalled] == ["send_stalled"] and "role compose" in stalled[0].text("bot")
    assert [a.kind for a in rules.on_event({"event": "page_unrecognized", "ts": 1})] == ["page_unrecognized"]
    assert rules.on_event({"event": "worker_exited", "ts": 0.0}) == []
    assert rules.on_event({"event": "worker_exited", "ts": 100.0}) == []  # the first fell out of the window
    assert rules.on_event({"event": "heartbeat_stale", "ts": 110.0}) == []
    assert [a.kind for a in rules.on_event({"event": "worker_exited", "ts": 120.0})] == ["crash_loop"]
    assert rules.on_event({"event": "state", "new": "fatal", "reason": "x", "ts": 1})[0].kind == "gave_up"


def test_rules_offline_and_qr_from_the_heartbeat() -> None:
    """Offline alerts once after offline_alert_after s (monotonic); a QR state alerts once per episode."""
    rules = AlertRules(AlertsConfig(offline_alert_after=60))
    offline = {"whatsapp": {"state": "offline", "connected": False}}
    assert rules.on_heartbeat(offline, 0.0) == []
    assert rules.on_heartbeat(offline, 59.0) == []
    assert [a.kind for a in rules.on_heartbeat(offline, 61.0)] == ["offline"]
    assert rules.on_heartbeat(offline, 500.0) == []
    assert rules.on_heartbeat({"whatsapp": {"state": "ready", "connected": True}}, 501.0) == []
    qr = {"whatsapp": {"state": "qr", "connected": False}}
    assert [a.kind for a in rules.on_heartbeat(qr, 502.0)] == ["qr_needed"]
    assert rules.on_heartbeat(qr, 503.0) == []
    assert rules.on_heartbeat(None, 504.0) == []


def test_follower_reads_only_new_complete_lines(tmp_path: Path) -> None:
    """The follower starts at the end, returns whole appended lines only, and restarts after truncation."""
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "old"}\n')
    follower = JsonlFollower(path)
    assert follower.read_events() == []
    with open(path, "a") as handle:
        handle.write('{"event": "a"}\nnot json\n{"event": "b"')
    assert [e["event"] for e in follower.read_events()] == ["a"]
    with open(path, "a") as handle:
        handle.write("}\n")
    assert [e["event"] for e in follower.read_events()] == ["b"]
    path.write_text('{"event": "c"}\n')
    assert [e["event"] for e in follower.read_events()] == ["c"]


def test_webhook_and_telegram_delivery(receiver: Receiver, tmp_path: Path) -> None:
    """One alert reaches the webhook as JSON and Telegram as sendMessage with chat_id and text."""
    cfg = AlertsConfig(webhook_url=f"{receiver.base}/hook?key=s3cret", telegram_bot_token=BOT_TOKEN,
                       telegram_chat_id="-100200", telegram_api_base=receiver.base)  # fmt: skip
    log = EventLog(tmp_path / "events.jsonl", source="watchdog")
    sender = AlertSender(cfg, instance="box:home", events=log)
    sender.start()
    try:
        assert sender.submit(Alert("qr_needed", "WhatsApp needs a QR scan", {"state": "qr"}))
        wait_for(lambda: len(receiver.received) == 2, timeout=10, what="two deliveries")
    finally:
        sender.stop()
    by_path = dict(receiver.received)
    hook = by_path["/hook?key=s3cret"]
    assert hook["kind"] == "qr_needed" and hook["text"] == "[continuity box:home] WhatsApp needs a QR scan (state=qr)"
    assert by_path[f"/bot{BOT_TOKEN}/sendMessage"] == {"chat_id": "-100200", "text": hook["text"]}
    sent = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sorted(e["to"] for e in sent if e["event"] == "alert_sent") == ["telegram", "webhook"]


def test_retries_with_backoff_then_gives_up_without_leaking(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """500s are retried with 2 s, 4 s ... waits (injected sleep); a 403 is final; secrets stay out of logs/events."""
    sleeps: list[float] = []
    log = EventLog(tmp_path / "events.jsonl", source="watchdog")
    cfg = AlertsConfig(telegram_bot_token=BOT_TOKEN, telegram_chat_id="1", telegram_api_base=receiver.base)
    sender = AlertSender(cfg, instance="i", events=log, sleep=sleeps.append, max_attempts=4)
    name, url, payload = sender.destinations[0]
    receiver.statuses = [500, 503, 200]
    assert sender.deliver(name, url, payload(Alert("x", "t")), Alert("x", "t")) is True
    assert sleeps == [2.0, 4.0] and len(receiver.received) == 3
    receiver.statuses, sleeps[:] = [403], []
    with caplog.at_level(logging.INFO, logger="continuity"):
        assert sender.deliver(name, url, payload(Alert("y", "t")), Alert("y", "t")) is False
        dead = AlertSender(AlertsConfig(webhook_url=f"http://127.0.0.1:1/{BOT_TOKEN}"), instance="i", events=log,
                           sleep=sleeps.append, max_attempts=2)  # fmt: skip
        assert dead.deliver(*dead.destinations[0][:2], {"a": 1}, Alert("z", "t")) is False
    assert sleeps == [2.0]  # the 403 was not retried; the refused connection was, once
    failed = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert next(e["error"] for e in failed if e["event"] == "alert_failed") == "HTTP 403"
    assert BOT_TOKEN not in (tmp_path / "events.jsonl").read_text() and BOT_TOKEN not in caplog.text


def test_rate_limit_per_kind_and_submit_never_blocks(receiver: Receiver) -> None:
    """A kind is sent at most once per alert_min_interval (injected clock); submit returns at once when slow."""
    now = [0.0]
    receiver.delay_s = 1.0
    sender = AlertSender(AlertsConfig(webhook_url=receiver.base + "/h", alert_min_interval=600), instance="i",
                         clock=lambda: now[0])  # fmt: skip
    sender.start()
    try:
        started = time.monotonic()
        assert sender.submit(Alert("crash_loop", "a")) is True
        assert sender.submit(Alert("crash_loop", "b")) is False
        assert sender.submit(Alert("offline", "c")) is True
        assert time.monotonic() - started < 0.2
        now[0] = 601.0
        assert sender.submit(Alert("crash_loop", "d")) is True
        wait_for(lambda: len(receiver.received) == 3, timeout=15, what="three deliveries")
    finally:
        sender.stop()
    assert [body["title"] for _path, body in receiver.received] == ["a", "c", "d"]


def test_real_watchdog_alerts_when_the_budget_is_spent(home: Home, receiver: Receiver) -> None:
    """A crashing worker spends the restart budget; the watchdog's alert threads post crash_loop and budget_spent."""
    write_config(home, toy="crash", restart_limit=2, restart_window=60)
    with open(home.config_file, "a") as handle:
        handle.write(f'[api]\nenabled = false\n[alerts]\nwebhook_url = "{receiver.base}/hook"\n'
                     "poll_interval = 0.2\ncrash_loop_restarts = 2\n")  # fmt: skip
    proc = start_watchdog(home)
    try:
        wait_for(lambda: {"budget_spent", "crash_loop"} <= {b["kind"] for _p, b in receiver.received},
                 timeout=30, what="budget_spent and crash_loop alerts")  # fmt: skip
        assert proc.poll() is None
    finally:
        stop_watchdog(proc)
    assert {"budget_spent", "crash_loop"} <= {e["kind"] for e in events(home, "alert_sent")}
