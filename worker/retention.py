"""The built-in job that keeps the outbox to `[outbox] keep_sent_days` of sent messages (issue "Scale").

Each run prunes what was sent longer ago (`Outbox.prune`): a message the notify job sent for a token now in the
ledger is dropped (that token is never queued again), any other message with a dedupe key is kept as a tombstone of
its key (so it is never queued or sent a second time), a message without a key is dropped. Big prunes go in slices
(MORE_WORK), so the loop's heartbeat goes on."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .jobs import MORE_WORK, JobContext
from .notify import token_of

if TYPE_CHECKING:
    from continuity.watchdog.instance import EventLog

logger = logging.getLogger("continuity.worker.retention")

DAY_S = 86400.0
INTERVAL_S = 3600.0  # s between two runs
SLICE = 5000  # changes a run makes at most (one journal record)


class OutboxRetention:
    """Prunes sent messages older than `keep_sent_days` (0: keeps them for ever)."""

    def __init__(self, keep_sent_days: float, *, events: EventLog) -> None:
        self.keep_s = keep_sent_days * DAY_S
        self.events = events
        self.dropped = 0
        self.tombstoned = 0

    def __call__(self, context: JobContext) -> object:
        if self.keep_s <= 0:
            return None
        ledger = context.ledger

        def forget(key: str) -> bool:  # nothing can queue this key again: its token is notified
            token = token_of(key)
            return token is not None and token in ledger

        result = context.outbox.prune(older_than_s=self.keep_s, forget=forget, max_changes=SLICE)
        if result.dropped or result.tombstoned:
            self.dropped += result.dropped
            self.tombstoned += result.tombstoned
            logger.info("outbox: %d sent message(s) dropped, %d kept as tombstones", result.dropped, result.tombstoned)
            self.events.emit("outbox_pruned", dropped=result.dropped, tombstoned=result.tombstoned)
        return MORE_WORK if result.more else None
