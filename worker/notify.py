"""The default job: every tracked token not yet notified becomes one message per recipient, exactly once.

Messages are queued with a dedupe key `notify:<token id>:<phone>`, so a crash at any point neither loses nor
repeats a notification. Once every recipient's message is sent, the token is marked notified and its id is
appended to data/sent_tokens.txt.
"""

from __future__ import annotations

import contextlib
import logging
import string
import time
from collections.abc import Callable
from typing import Any

from continuity.watchdog._errors import ConfigError
from continuity.watchdog.config import NotifyConfig
from continuity.watchdog.events import EventLog

from .jobs import JobContext

logger = logging.getLogger("continuity.worker.notify")

SENT = "sent"


def template_fields(template: str) -> list[str]:
    """The record fields a template uses; raises ConfigError for a template that cannot be formatted."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"notify.template {template!r} is not a valid template: {exc}") from exc
    fields = []
    for _literal, name, _spec, conversion in parsed:
        if name is None:
            continue
        if conversion not in (None, "r", "s", "a"):
            raise ConfigError(f"notify.template {template!r}: unknown conversion !{conversion} (use !r, !s or !a)")
        if not name.isidentifier():
            raise ConfigError(
                f"notify.template: {{{name}}} must name a token field, like {{symbol}} or {{id}} "
                "(no positions, attributes or indexes)"
            )
        fields.append(name)
    return fields


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
        self._skipped: set[str] = set()
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
        missing = [name for name in self.fields if name not in token]
        if missing:
            if token["id"] not in self._skipped:
                self._skipped.add(token["id"])
                logger.error(
                    "token %s has no %s for notify.template; not notified until it has", token["id"], ", ".join(missing)
                )
                self.events.emit("notify_skipped", token=token["id"], missing=missing)
            return
        text = self.template.format_map(token)
        for phone in self.recipients:
            _message, created = context.outbox.enqueue(phone, text, dedupe_key=dedupe_key(token["id"], phone))
            if created:
                self.queued += 1

    def _settle(self, context: JobContext, token: dict[str, Any], ledger_ids: set[str]) -> None:
        messages = [context.outbox.find(dedupe_key(token["id"], phone)) for phone in self.recipients]
        if not all(m is not None and m.get("state") == SENT for m in messages):
            return
        context.ledger.append(token["id"])  # the ledger is the record of truth; notified_at is for people
        ledger_ids.add(token["id"])
        with contextlib.suppress(LookupError):  # removed meanwhile: the ledger still says it was notified
            context.store.update(token["id"], notified_at=round(self._clock(), 3))
        self.notified += 1
        self.events.emit("token_notified", token=token["id"], recipients=len(self.recipients))
