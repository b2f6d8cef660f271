"""The default job: every tracked token not yet notified becomes one message per recipient, exactly once.

Messages are queued with a dedupe key `notify:<token id>:<phone>`, so a crash at any point neither loses nor
repeats a notification. Once every recipient's message is sent, the token is marked notified and its id is
appended to data/sent_tokens.txt.

Its cost follows what changed, not what exists: it keeps the ids of the tokens still waiting (queued, not every
message sent) and reads only what the token store, the outbox and the ledger changed since its last pass
(`changes_since`, in memory), so a pass with nothing new reads no record. When one of them was loaded whole (this
job's first pass, a restore, a file replaced), it looks at every token once. A big change (an import) is worked
through in slices of SLICE_S seconds: the job then returns MORE_WORK and the loop calls it again at its next pass,
so the heartbeat goes on meanwhile.

A token no message can be made of (a template field missing or unfit, a text over the outbox's limit) is skipped:
logged and recorded (event `notify_skipped`) once per reason, counted in the heartbeat's "notify" section, and it
never holds up the tokens after it. It is looked at again when it changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from itertools import islice
from typing import Any

from continuity.watchdog.instance import GROUP_PREFIX, EventLog, NotifyConfig, template_fields

from .jobs import MORE_WORK, JobContext

logger = logging.getLogger("continuity.worker.notify")

SENT = "sent"
MAX_SKIPPED_SHOWN = 20
KEY_PREFIX = "notify:"
SLICE_S = 0.5  # seconds of work per pass at most (then MORE_WORK), so the loop's heartbeat goes on
BATCH = 256  # tokens read, and settled, together


def dedupe_key(token_id: str, phone: str) -> str:
    return f"{KEY_PREFIX}{token_id}:{phone}"


def token_of(key: str) -> str | None:
    """The token id in a dedupe key made by `dedupe_key` (None for any other key)."""
    if not key.startswith(KEY_PREFIX):
        return None
    rest = key[len(KEY_PREFIX) :]
    ident, colon, phone = rest.rpartition(":")
    if colon and phone.isdigit():
        return ident
    group = rest.find(":" + GROUP_PREFIX)  # a group recipient ("group:NAME") may hold colons itself
    return rest[:group] if group >= 0 else (ident if colon else None)


class NotifyJob:
    """Turns tracked tokens into outbox messages and marks tokens notified once all their messages are sent."""

    def __init__(
        self,
        config: NotifyConfig,
        *,
        events: EventLog,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recipients = list(config.recipients)
        self.template = config.template
        self.fields = template_fields(config.template)
        self.events = events
        self._clock = clock
        self._monotonic = monotonic
        self._skipped: dict[str, str] = {}  # token id -> why it is not notified
        self.queued = 0
        self.notified = 0
        self._parts: tuple[object, ...] = ()  # the store, outbox and ledger the cursors below are of
        self._cursors: tuple[int, int, tuple[int, int] | None] = (-1, -1, None)
        self._waiting: set[str] = set()  # queued, not every message sent yet: settled when their messages change
        self._todo: dict[str, None] = {}  # token ids to look at (changed, or whose messages changed), in order

    def __call__(self, context: JobContext) -> object:
        """One pass: collect what changed since the last one, then work on it for at most SLICE_S seconds;
        MORE_WORK when some is left for the next pass."""
        if not self.recipients:
            return None
        self._collect(context)
        return self._work(context)

    def _collect(self, context: JobContext) -> None:
        """Add to `_todo` what changed since the last pass; the cursors move on only once that is done (a call that
        raises, e.g. a lock held too long, leaves them where they were)."""
        parts = (context.store, context.outbox, context.ledger)
        if len(self._parts) != len(parts) or any(a is not b for a, b in zip(parts, self._parts, strict=True)):
            self._parts, self._cursors = parts, (-1, -1, None)
        token_cursor, tokens = context.store.changes_since(self._cursors[0])
        outbox_cursor, messages = context.outbox.changes_since(self._cursors[1])
        ledger_cursor, noted = context.ledger.changes_since(self._cursors[2])
        if tokens is None or noted is None:  # loaded whole: look at every token not in the ledger, once
            todo = dict.fromkeys(context.ledger.missing(context.store.ids()))
            self._waiting.clear()
            self._todo = todo
        elif messages is None:  # the outbox was loaded whole (e.g. restored): every waiting token again
            self._waiting.difference_update(noted)
            self._todo.update(dict.fromkeys(tokens))
            self._todo.update(dict.fromkeys(self._waiting))
        else:
            keys = context.outbox.dedupe_keys(messages) if messages and self._waiting else []
            self._waiting.difference_update(noted)
            self._todo.update(dict.fromkeys(tokens))
            for ident in map(token_of, keys):
                if ident is not None and ident in self._waiting:
                    self._todo[ident] = None
        self._cursors = (token_cursor, outbox_cursor, ledger_cursor)

    def _work(self, context: JobContext) -> object:
        if not self._todo:
            return None
        deadline = self._monotonic() + SLICE_S
        todo, done = list(self._todo), 0
        missing_from_ledger: list[str] = []
        try:
            while done < len(todo) and not context.stop.is_set() and self._monotonic() < deadline:
                batch = todo[done : done + BATCH]
                self._check(context, batch, missing_from_ledger)
                done += len(batch)
        finally:  # what was not looked at (a stop, the slice's end, an error) is kept for the next pass
            self._todo = dict.fromkeys(todo[done:])
            if missing_from_ledger:  # sent_tokens.txt lost them (damaged or cut): write them back
                context.ledger.extend(missing_from_ledger)
                logger.warning(
                    "%d notified token(s) were missing from the ledger; written back", len(missing_from_ledger)
                )
                self.events.emit("ledger_repaired", tokens=len(missing_from_ledger))
        return MORE_WORK if self._todo else None

    def _check(self, context: JobContext, batch: list[str], missing_from_ledger: list[str]) -> None:
        """Queue what is missing for each token of `batch`, settle those whose messages are all sent."""
        records = context.store.get_many(batch)
        unnoted = set(context.ledger.missing(batch))
        candidates = []
        for ident in batch:
            record = records.get(ident)
            if record is None or ident not in unnoted:  # removed, or notified
                self._waiting.discard(ident)
                if record is None:
                    self._skipped.pop(ident, None)
            elif record.get("notified_at"):
                missing_from_ledger.append(ident)
                self._waiting.discard(ident)
            else:
                candidates.append((ident, record))  # `ident` is the store's own key: one string per id in memory
        states = context.outbox.find_states([dedupe_key(i, p) for i, _r in candidates for p in self.recipients])
        settled, unqueued = [], []
        for ident, record in candidates:
            mine = [states.get(dedupe_key(ident, phone)) for phone in self.recipients]
            if None in mine:
                unqueued.append((ident, record))
            elif all(state == SENT for state in mine):
                settled.append(ident)
            else:
                self._waiting.add(ident)
        if unqueued:
            self._queue(context, unqueued)
        if settled:
            self._settle(context, settled)

    def _queue(self, context: JobContext, tokens: list[tuple[str, dict[str, Any]]]) -> None:
        """Queue the messages of `tokens` (one write for all); a token they cannot be made of is skipped (and
        reported), never fatal; the others wait for their messages to be sent."""
        from .store import InvalidRecord, RecordTooLarge  # the store is imported after the first heartbeat

        texts = {ident: text for ident, token in tokens if (text := self._text(token)) is not None}
        try:
            self._enqueue(context, texts)
        except (InvalidRecord, RecordTooLarge):  # one of them cannot be a message: find which, one at a time
            for ident, text in list(texts.items()):
                try:
                    self._enqueue(context, {ident: text})
                except (InvalidRecord, RecordTooLarge) as exc:  # e.g. a text too long
                    self._skip(ident, f"its message cannot be queued ({exc})")
                    del texts[ident]
        for ident in texts:
            self._skipped.pop(ident, None)
            self._waiting.add(ident)

    def _enqueue(self, context: JobContext, texts: dict[str, str]) -> None:
        wanted = [(phone, text, dedupe_key(ident, phone)) for ident, text in texts.items() for phone in self.recipients]
        if wanted:
            self.queued += sum(created for _message, created in context.outbox.enqueue_many(wanted))

    def _text(self, token: dict[str, Any]) -> str | None:
        """The token's message, or None when the template cannot be filled in with it (then it is skipped)."""
        missing = [name for name in self.fields if name not in token]
        if missing:
            self._skip(token["id"], f"it has no {', '.join(missing)} for notify.template", missing=missing)
            return None
        try:
            return self.template.format_map(token)
        except (ValueError, TypeError, LookupError, AttributeError) as exc:  # e.g. {mc:,} with a text value
            self._skip(token["id"], f"notify.template cannot be filled in with it ({type(exc).__name__}: {exc})")
            return None

    def _skip(self, ident: str, reason: str, **details: Any) -> None:
        """Record a skipped token: logged and an event once per token and reason; counted in status()."""
        if self._skipped.get(ident) == reason:
            return
        self._skipped[ident] = reason
        logger.error("token %s is not notified: %s; it is skipped until it changes", ident, reason)
        self.events.emit("notify_skipped", token=ident, reason=reason, **details)

    def status(self) -> dict[str, Any]:
        """For the heartbeat's "notify" section: messages queued, tokens notified, tokens waiting for their messages
        to be sent, tokens skipped (a few ids)."""
        return {
            "queued": self.queued,
            "notified": self.notified,
            "waiting": len(self._waiting),
            "skipped": len(self._skipped),
            "skipped_ids": list(islice(self._skipped, MAX_SKIPPED_SHOWN)),
        }

    def _settle(self, context: JobContext, idents: list[str]) -> None:
        """Every message of these tokens is sent: the ledger first (the record of truth), then notified_at."""
        from .store import InvalidRecord, RecordTooLarge

        context.ledger.extend(idents)
        self._waiting.difference_update(idents)
        now = round(self._clock(), 3)
        with context.store.transaction() as tx:
            for ident in idents:
                try:
                    tx.update(ident, notified_at=now)
                except LookupError:  # removed meanwhile: the ledger still says it was notified
                    pass
                except (InvalidRecord, RecordTooLarge) as exc:  # at the size limit: the ledger still says so
                    logger.warning("token %s was notified, but notified_at cannot be added: %s", ident, exc)
        for ident in idents:
            self.notified += 1
            self.events.emit("token_notified", token=ident, recipients=len(self.recipients))
