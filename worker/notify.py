"""The default job: every tracked token not yet notified becomes one message per recipient, exactly once.

Messages are queued with a dedupe key `notify:<token id>:<phone>`, so a crash at any point neither loses nor
repeats a notification. Once every recipient's message is sent, the token is marked notified and its id is
appended to data/sent_tokens.txt.

A token no message can be made of (a template field missing or unfit, a text over the outbox's limit) is skipped:
logged and recorded (event `notify_skipped`) once per reason, counted in the heartbeat's "notify" section, and it
never holds up the tokens after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from continuity.watchdog.checks import template_fields
from continuity.watchdog.config import NotifyConfig
from continuity.watchdog.events import EventLog

from .jobs import JobContext

logger = logging.getLogger("continuity.worker.notify")

SENT = "sent"
MAX_SKIPPED_SHOWN = 20


def dedupe_key(token_id: str, phone: str) -> str:
    return f"notify:{token_id}:{phone}"


class NotifyJob:
    """Turns tracked tokens into outbox messages and marks tokens notified once all their messages are sent."""

    def __init__(self, config: NotifyConfig, *, events: EventLog, clock: Callable[[], float] = time.time) -> None:
        self.recipients = list(config.recipients)
        self.template = config.template
        self.fields = template_fields(config.template)
        self.events = events
        self._clock = clock
        self._skipped: dict[str, str] = {}  # token id -> why it is not notified
        self.queued = 0
        self.notified = 0

    def __call__(self, context: JobContext) -> None:
        if not self.recipients:
            return
        ledger_ids = set(context.ledger.ids())
        missing_from_ledger = []
        for token in context.store.list():
            if context.stop.is_set():
                return
            ident = token["id"]
            if ident in ledger_ids:
                continue
            if token.get("notified_at"):  # sent_tokens.txt lost it (damaged or cut): write it back
                missing_from_ledger.append(ident)
                continue
            self._queue(context, token)
            self._settle(context, token, ledger_ids)
        if missing_from_ledger:
            context.ledger.extend(missing_from_ledger)
            logger.warning("%d notified token(s) were missing from the ledger; written back", len(missing_from_ledger))
            self.events.emit("ledger_repaired", tokens=len(missing_from_ledger))

    def _queue(self, context: JobContext, token: dict[str, Any]) -> None:
        """Queue the token's messages; a token they cannot be made of is skipped (and reported), never fatal."""
        from .store import InvalidRecord, RecordTooLarge  # the store is imported after the first heartbeat

        ident = token["id"]
        missing = [name for name in self.fields if name not in token]
        if missing:
            self._skip(ident, f"it has no {', '.join(missing)} for notify.template", missing=missing)
            return
        try:
            text = self.template.format_map(token)
        except (ValueError, TypeError, LookupError, AttributeError) as exc:  # e.g. {mc:,} with a text value
            self._skip(ident, f"notify.template cannot be filled in with it ({type(exc).__name__}: {exc})")
            return
        try:
            for phone in self.recipients:
                _message, created = context.outbox.enqueue(phone, text, dedupe_key=dedupe_key(ident, phone))
                if created:
                    self.queued += 1
        except (InvalidRecord, RecordTooLarge) as exc:  # this token's text cannot be a message (e.g. too long)
            self._skip(ident, f"its message cannot be queued ({exc})")
            return
        self._skipped.pop(ident, None)

    def _skip(self, ident: str, reason: str, **details: Any) -> None:
        """Record a skipped token: logged and an event once per token and reason; counted in status()."""
        if self._skipped.get(ident) == reason:
            return
        self._skipped[ident] = reason
        logger.error("token %s is not notified: %s; it is skipped until it changes", ident, reason)
        self.events.emit("notify_skipped", token=ident, reason=reason, **details)

    def status(self) -> dict[str, Any]:
        """For the heartbeat's "notify" section: messages queued, tokens notified, tokens skipped (a few ids)."""
        return {
            "queued": self.queued,
            "notified": self.notified,
            "skipped": len(self._skipped),
            "skipped_ids": list(self._skipped)[:MAX_SKIPPED_SHOWN],
        }

    def _settle(self, context: JobContext, token: dict[str, Any], ledger_ids: set[str]) -> None:
        messages = [context.outbox.find(dedupe_key(token["id"], phone)) for phone in self.recipients]
        if not all(m is not None and m.get("state") == SENT for m in messages):
            return
        from .store import InvalidRecord, RecordTooLarge

        context.ledger.append(token["id"])  # the ledger is the record of truth; notified_at is for people
        ledger_ids.add(token["id"])
        try:
            context.store.update(token["id"], notified_at=round(self._clock(), 3))
        except LookupError:  # removed meanwhile: the ledger still says it was notified
            pass
        except (InvalidRecord, RecordTooLarge) as exc:  # at the size limit: the ledger still says it was notified
            logger.warning("token %s was notified, but notified_at cannot be added: %s", token["id"], exc)
        self.notified += 1
        self.events.emit("token_notified", token=token["id"], recipients=len(self.recipients))
