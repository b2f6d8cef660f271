"""What happens to each stored incoming message: the `on = "message"` jobs and the `[inbox] webhook_url`.

Both run on their own threads, never in the worker loop (a slow handler or receiver cannot stop the heartbeat),
from the inbox (the durable record of what is still to do), so they are at least once across kills: an outcome is
recorded only after it happened.

- Jobs: each message, in the order stored (so in order per chat), is given to every `on = "message"` job as
  `function(ctx, message)`. A job that raises is retried (1 s, 2 s, 4 s ... at most 5 attempts); later messages of
  the same chat wait for it; then the failure is recorded (`jobs.state = "failed"`) and the chat goes on.
- Webhook: a JSON POST per message, signed: `X-Continuity-Signature: sha256=<hex HMAC-SHA256 of the body with
  webhook_secret>`, retried with backoff (webhook_backoff [first, cap] s) until a 2xx; every attempt's outcome is
  recorded in the message's `webhook` section (state pending|delivered, attempts, last_status, last_error)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from continuity.watchdog.instance import EventLog, backoff_delay

from .jobs import JobContext

logger = logging.getLogger("continuity.inbox")

MAX_JOB_ATTEMPTS = 5
SIGNATURE_HEADER = "X-Continuity-Signature"
PUBLIC_FIELDS = (
    "id", "wa_id", "chat", "chat_jid", "group", "chat_title", "sender", "sender_jid", "sender_phone", "text",
    "sent_at_text", "received_at", "seq",
)  # fmt: skip


def public(message: dict[str, Any]) -> dict[str, Any]:
    """A message as handlers and the webhook see it (no bookkeeping)."""
    return {k: message.get(k) for k in PUBLIC_FIELDS}


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: "sha256=" + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


JOB_RETRY_S = (1.0, 60.0)  # a failed job is retried after 1, 2, 4 ... seconds, at most 60


class _Worker(threading.Thread):
    """A daemon thread that calls `step()` until stopped; `wake()` cuts its wait short."""

    def __init__(self, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_flag = stop
        self._wake = threading.Event()
        self.busy_since: float | None = None

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            try:
                self.busy_since = time.monotonic()
                wait = self.step()
            except Exception:
                logger.exception("%s: unexpected error", self.name)
                wait = 5.0
            finally:
                self.busy_since = None
            self._wake.wait(max(0.05, wait))
            self._wake.clear()

    def step(self) -> float:  # pragma: no cover - overridden
        return 1.0


class MessageJobs(_Worker):
    """Calls the `on = "message"` jobs with each stored message, in order per chat."""

    def __init__(
        self,
        inbox: Any,
        jobs: list[tuple[str, Callable[[JobContext, dict[str, Any]], Any]]],
        context: JobContext,
        *,
        events: EventLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("inbox-jobs", context.stop)
        self.inbox, self.jobs, self.context, self.events = inbox, jobs, context, events
        self._clock = clock
        self.calls = 0
        self.errors = 0
        self.last_error: str | None = None

    def step(self) -> float:
        """Handle every message that is due; returns seconds until the next retry is due (1 s when idle)."""
        now = self._clock()
        blocked: set[str] = set()  # chats with a message waiting for a retry: their later messages wait
        wait = 1.0
        for message in self.inbox.open_messages("jobs", limit=200):
            if self._stop_flag.is_set():
                break
            chat = str(message.get("chat_jid") or message.get("chat"))
            if chat in blocked:
                continue
            section = message.get("jobs") or {}
            retry_at = float(section.get("retry_at") or 0)
            if retry_at > now:
                blocked.add(chat)
                wait = min(wait, retry_at - now)
                continue
            if not self._handle(message, section):
                blocked.add(chat)
                wait = min(wait, 1.0)
        return wait

    def _handle(self, message: dict[str, Any], section: dict[str, Any]) -> bool:
        """Every job not yet done with `message`; True when the message is finished (done or given up)."""
        done = list(section.get("done") or [])
        attempts = int(section.get("attempts") or 0) + 1
        for name, function in self.jobs:
            if name in done:
                continue
            try:
                self.calls += 1
                function(self.context, public(message))
            except Exception as exc:
                self.errors += 1
                error = f"{name}: {type(exc).__name__}: {exc}"[:500]
                self.last_error = error
                logger.error("message job %s failed on %s:\n%s", name, message["id"], traceback.format_exc())
                given_up = attempts >= MAX_JOB_ATTEMPTS
                retry_in = backoff_delay(attempt=attempts, first_s=JOB_RETRY_S[0], cap_s=JOB_RETRY_S[1])
                self.inbox.record_handler(
                    message["id"],
                    "jobs",
                    state="failed" if given_up else "pending",
                    attempts=attempts,
                    done=done,
                    last_error=error,
                    retry_at=None if given_up else round(self._clock() + retry_in, 3),
                )
                self.events.emit("message_job_failed", id=message["id"], job=name, error=error, given_up=given_up)
                return given_up
            done.append(name)
        self.inbox.record_handler(
            message["id"], "jobs", state="done", attempts=attempts, done=done, retry_at=None, done_at=self._clock()
        )
        return True

    def status(self) -> dict[str, Any]:
        busy = self.busy_since
        return {
            "calls": self.calls,
            "errors": self.errors,
            "last_error": self.last_error,
            "busy_for_s": None if busy is None else round(time.monotonic() - busy, 1),
        }


class WebhookSender(_Worker):
    """POSTs each stored message to `url`, signed, in the order stored, retrying each until a 2xx."""

    def __init__(
        self,
        inbox: Any,
        *,
        url: str,
        secret: str,
        timeout_s: float,
        backoff_s: tuple[float, float],
        stop: threading.Event,
        events: EventLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("inbox-webhook", stop)
        self.inbox, self.url, self.secret, self.timeout_s = inbox, url, secret, timeout_s
        self.backoff_s = backoff_s
        self.events = events
        self._clock = clock
        self.delivered = 0
        self.failures = 0
        self.last_error: str | None = None
        self.failing_since: float | None = None  # monotonic s of the first failure since the last 2xx

    def step(self) -> float:
        for message in self.inbox.open_messages("webhook", limit=50):
            if self._stop_flag.is_set():
                break
            section = message.get("webhook") or {}
            next_at = float(section.get("next_at") or 0)
            now = self._clock()
            if next_at > now:
                return next_at - now  # in order: the head waits for its retry
            if not self._deliver(message, section):
                return backoff_delay(
                    attempt=int(section.get("attempts") or 0) + 1, first_s=self.backoff_s[0], cap_s=self.backoff_s[1]
                )
        return 1.0

    def _deliver(self, message: dict[str, Any], section: dict[str, Any]) -> bool:
        attempts = int(section.get("attempts") or 0) + 1
        body = json.dumps({"event": "message", "message": public(message)}, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "continuity-inbox",
            "X-Continuity-Delivery": str(message["id"]),
            "X-Continuity-Attempt": str(attempts),
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        status: int | None = None
        error: str | None = None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                status = int(answer.status)
        except urllib.error.HTTPError as exc:
            status, error = int(exc.code), f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:  # refused, timed out, DNS, a bad URL
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        now = self._clock()
        if status is not None and 200 <= status < 300:
            self.inbox.record_handler(
                message["id"], "webhook", state="delivered", attempts=attempts, last_status=status, delivered_at=now,
                next_at=None,
            )  # fmt: skip
            self.delivered += 1
            self.failing_since = None
            self.events.emit("webhook_delivered", id=message["id"], attempts=attempts, status=status)
            return True
        self.failures += 1
        self.last_error = error or f"HTTP {status}"
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        retry_in = backoff_delay(attempt=attempts, first_s=self.backoff_s[0], cap_s=self.backoff_s[1])
        self.inbox.record_handler(
            message["id"], "webhook", state="pending", attempts=attempts, last_status=status,
            last_error=self.last_error, next_at=round(now + retry_in, 3),
        )  # fmt: skip
        logger.warning("webhook for %s failed (%s), retry in %.1f s", message["id"], self.last_error, retry_in)
        self.events.emit(
            "webhook_failed", id=message["id"], attempts=attempts, error=self.last_error, retry_in_s=retry_in
        )
        return False

    def status(self) -> dict[str, Any]:
        since = self.failing_since
        return {
            "delivered": self.delivered,
            "failures": self.failures,
            "last_error": self.last_error,
            "failing_for_s": None if since is None else round(time.monotonic() - since, 1),
        }
