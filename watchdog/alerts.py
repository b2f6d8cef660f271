"""Alerts to a webhook (JSON POST) and/or Telegram, from what logs/events.jsonl and the heartbeat say.

A follower thread reads only newly appended event lines every `[alerts] poll_interval` seconds and turns them into
alerts (restart budget spent, crash loop, QR needed, logged out, store restored, offline too long, watchdog gave
up); a sender thread delivers them from a queue, retrying with backoff. Neither blocks the supervision loop. Each
kind is rate-limited (`alert_min_interval`). The bot token and the webhook URL are secrets: they never reach a log
line or an event. The HTTP client (urllib) is imported only when an alert is actually sent: it costs ~7 MB.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .instance import (
    AlertsConfig,
    EventLog,
    JsonlFollower,
    SlidingWindow,
    alert_problems,
    backoff_delay,
    read_heartbeat,
)

logger = logging.getLogger("continuity.alerts")

EVENT_ALERTS = {  # event kind -> (alert kind, title)
    "budget_spent": ("budget_spent", "restart budget spent: the watchdog pauses restarts"),
    "qr_needed": ("qr_needed", "WhatsApp needs a QR scan"),
    "logged_out": ("logged_out", "WhatsApp was logged out"),
    "store_restored": ("store_restored", "a damaged store was restored from a backup"),
    "store_restore_incomplete": (
        "store_restore_incomplete",
        "a damaged store was restored, but journal generations are missing: changes in them are lost",
    ),
    "send_stalled": ("send_stalled", "messages are not going out"),
    "page_unrecognized": ("page_unrecognized", "WhatsApp Web shows a page this version does not recognize"),
    "api_auth_failed": ("security", "security: an API request with a missing or wrong token was refused"),
    "api_foreign_host": ("security", "security: an API request for a foreign Host was refused"),
    "security_warning": ("security", "security: unsafe file permissions"),
    "session_key_error": ("security", "security: the session backup key was refused"),
    "session_backup_rejected": ("security", "security: a session backup failed authentication"),
    "session_restored": ("session_restored", "WhatsApp login restored from an encrypted backup"),
    "session_restore_failed": ("session_restore_failed", "no session backup worked: WhatsApp needs a QR scan"),
}
CRASH_EVENTS = ("worker_exited", "heartbeat_stale")
_WA_STATE_ALERTS = {"qr": "qr_needed", "logged_out": "logged_out"}
RETRY_FIRST_S, RETRY_CAP_S = 2.0, 300.0  # a failed delivery is retried after 2, 4, 8 ... seconds, at most 300


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every non-empty secret replaced by ***."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def check_config(cfg: AlertsConfig) -> list[str]:
    """Problems with the alert destinations (never quoting a secret); the config loader refuses them already."""
    return alert_problems(cfg)


@dataclass
class Alert:
    kind: str
    title: str
    details: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def text(self, instance: str) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.details.items() if k not in ("ts", "source", "event"))
        return f"[continuity {instance}] {self.title}" + (f" ({extra})" if extra else "")


class AlertRules:
    """Turns events and heartbeats into alerts (pure: no I/O; times are injected, in seconds)."""

    def __init__(self, cfg: AlertsConfig) -> None:
        self.cfg = cfg
        self._crashes = SlidingWindow(window_s=cfg.crash_loop_window)  # event times (Unix s) of worker failures
        self._offline_since: float | None = None
        self._offline_alerted = False
        self._wa_state: str | None = None

    def on_event(self, event: dict[str, Any]) -> list[Alert]:
        kind = event.get("event")
        raw_ts = event.get("ts")
        ts = float(raw_ts) if isinstance(raw_ts, int | float) else time.time()
        if kind in EVENT_ALERTS:
            alert_kind, title = EVENT_ALERTS[kind]
            return [Alert(alert_kind, title, _summary(event), ts)]
        if kind == "state" and event.get("new") == "fatal":
            return [Alert("gave_up", "the watchdog gave up", {"reason": str(event.get("reason", ""))[:300]}, ts)]
        if kind in CRASH_EVENTS:
            self._crashes.add(ts)
            count = self._crashes.count(ts)
            if count >= self.cfg.crash_loop_restarts:
                self._crashes.clear()
                window = f"{self.cfg.crash_loop_window:g} s"
                return [Alert("crash_loop", f"crash loop: the worker failed {count} times within {window}", {}, ts)]
        return []

    def on_heartbeat(self, heartbeat: dict[str, Any] | None, now: float) -> list[Alert]:
        """`now` is a monotonic time in seconds; offline is measured from the first heartbeat that said so."""
        wa = (heartbeat or {}).get("whatsapp") or {}
        state = wa.get("state")
        alerts = []
        if state != self._wa_state and state in _WA_STATE_ALERTS:
            kind = _WA_STATE_ALERTS[state]
            alerts.append(Alert(kind, EVENT_ALERTS[kind][1], {"state": state}))
        self._wa_state = state
        offline = heartbeat is not None and state not in (None, "disabled") and not wa.get("connected", False)
        if not offline:
            self._offline_since, self._offline_alerted = None, False
        elif self._offline_since is None:
            self._offline_since = now
        elif not self._offline_alerted and now - self._offline_since >= self.cfg.offline_alert_after:
            self._offline_alerted = True
            minutes = (now - self._offline_since) / 60
            alerts.append(Alert("offline", f"WhatsApp offline for {minutes:.0f} min", {"state": state}))
        return alerts


def _summary(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if isinstance(v, str | int | float | bool) and k not in ("ts", "event")}


Post = Callable[[str, dict[str, Any], float], int]


def post_json(url: str, payload: dict[str, Any], timeout_s: float) -> int:
    """POST `payload` as JSON; returns the HTTP status (urllib is imported here, only when an alert is sent)."""
    import urllib.error
    import urllib.request

    data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class AlertSender:
    """A queue and one thread delivering alerts to every configured destination, with retries and backoff."""

    def __init__(
        self,
        cfg: AlertsConfig,
        *,
        instance: str,
        events: EventLog | None = None,
        post: Post = post_json,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        max_attempts: int = 5,
        timeout_s: float = 10.0,
    ) -> None:
        self.cfg, self.instance, self.events, self._post = cfg, instance, events, post
        self._clock, self.max_attempts, self.timeout_s = clock, max_attempts, timeout_s
        self._stopped = threading.Event()
        self._sleep = sleep or self._stopped.wait
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=100)
        self._last_sent: dict[str, float] = {}
        self.secrets = [cfg.telegram_bot_token, cfg.webhook_url, urlsplit(cfg.webhook_url).query]
        self.destinations: list[tuple[str, str, Callable[[Alert], dict[str, Any]]]] = []
        if cfg.webhook_url:
            self.destinations.append(("webhook", cfg.webhook_url, self._webhook_payload))
        if cfg.telegram_bot_token and cfg.telegram_chat_id:
            url = f"{cfg.telegram_api_base.rstrip('/')}/bot{cfg.telegram_bot_token}/sendMessage"
            self.destinations.append(("telegram", url, self._telegram_payload))
        self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)

    def _webhook_payload(self, alert: Alert) -> dict[str, Any]:
        text = alert.text(self.instance)
        return {"kind": alert.kind, "title": alert.title, "text": text, "details": alert.details, "ts": alert.ts,
                "instance": self.instance}  # fmt: skip

    def _telegram_payload(self, alert: Alert) -> dict[str, Any]:
        return {"chat_id": self.cfg.telegram_chat_id, "text": alert.text(self.instance)}

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopped.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def submit(self, alert: Alert) -> bool:
        """Queue `alert` unless one of its kind went out less than alert_min_interval s ago; never blocks."""
        now = self._clock()
        last = self._last_sent.get(alert.kind)
        if last is not None and now - last < self.cfg.alert_min_interval:
            logger.info("alert %s held back (rate limit)", alert.kind)
            return False
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            logger.warning("alert queue full; dropped alert %s", alert.kind)
            return False
        self._last_sent[alert.kind] = now
        return True

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None or self._stopped.is_set():
                return
            for name, url, payload in self.destinations:
                self.deliver(name, url, payload(alert), alert)

    def deliver(self, name: str, url: str, payload: dict[str, Any], alert: Alert) -> bool:
        """Try up to max_attempts times; 4xx other than 408/429 is final. Logs and events never hold secrets."""
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                status = self._post(url, payload, self.timeout_s)
                error = f"HTTP {status}"
            except Exception as exc:  # network errors of any kind: retried
                status, error = 0, redact(f"{type(exc).__name__}: {exc}", self.secrets)
            if 200 <= status < 300:
                logger.info("alert %s sent to %s", alert.kind, name)
                if self.events:
                    self.events.emit("alert_sent", kind=alert.kind, to=name, attempts=attempt)
                return True
            if 400 <= status < 500 and status not in (408, 429):
                break
            if attempt < self.max_attempts and not self._stopped.is_set():
                self._sleep(backoff_delay(attempt=attempt, first_s=RETRY_FIRST_S, cap_s=RETRY_CAP_S))
        logger.warning("alert %s to %s failed: %s", alert.kind, name, error)
        if self.events:
            self.events.emit("alert_failed", kind=alert.kind, to=name, error=error)
        return False


class AlertService:
    """Follows the events file and the heartbeat on its own thread and hands alerts to an AlertSender."""

    def __init__(self, events_file: Path, heartbeat_file: Path, sender: AlertSender, *, poll_s: float) -> None:
        self.follower = JsonlFollower(events_file)
        self.heartbeat_file, self.sender, self.poll_s = heartbeat_file, sender, poll_s
        self.rules = AlertRules(sender.cfg)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-follower", daemon=True)

    def start(self) -> None:
        self.sender.start()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5.0)
        self.sender.stop()

    def check_once(self) -> None:
        """Read what was appended since the last look, and the heartbeat; queue any alerts."""
        alerts = [alert for event in self.follower.read_events() for alert in self.rules.on_event(event)]
        alerts += self.rules.on_heartbeat(read_heartbeat(self.heartbeat_file), time.monotonic())
        for alert in alerts:
            self.sender.submit(alert)

    def _run(self) -> None:
        while not self._stopped.wait(self.poll_s):
            try:
                self.check_once()
            except Exception:
                logger.exception("alert check failed")


def start_alerts(
    events_file: Path, heartbeat_file: Path, cfg: AlertsConfig, *, events: EventLog
) -> AlertService | None:
    """Start alerting when a destination is configured (nothing runs otherwise); bad settings are logged."""
    problems = check_config(cfg)
    for problem in problems:
        logger.error("alerts: %s; alerts are off until it is fixed", problem)
        events.emit("alerts_config_invalid", problem=problem)
    if problems or not (cfg.webhook_url or cfg.telegram_bot_token):
        return None
    sender = AlertSender(cfg, instance=f"{socket.gethostname()}:{events_file.parent.parent.name}", events=events)
    service = AlertService(events_file, heartbeat_file, sender, poll_s=cfg.poll_interval)
    service.start()
    logger.info("alerts on: %s", ", ".join(name for name, _url, _p in sender.destinations))
    return service
