"""Outbox: durable outgoing WhatsApp messages (data/outbox.*), on the same journal + snapshot mechanism.

A message goes pending -> claimed (a lease: owner + expiry, so a dead worker's claim returns to pending) ->
sent, or failed (permanently, or back to pending for a retry). Each claim counts as an attempt and is
time-stamped (`attempted_at`, `attempts_at`), so a sender that takes over an expired claim sees
`unknown_outcome` and can check whether the earlier attempt went out before sending again. A dedupe key is
never queued twice.

Over 300 lines on purpose: the message life cycle (enqueue, claim, lease, note, sent/failed, retry, cancel) is
one state machine over one index; pruning is in _retention.py."""

from __future__ import annotations

import builtins
import copy
import json
import secrets
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from continuity.watchdog.instance import RECIPIENT_HELP, recipient_id

from . import _retention
from ._engine import DurableMap, Record
from ._errors import InvalidPhone, InvalidRecord, TokenNotFound
from ._validate import check_record

PENDING, CLAIMED, SENT, FAILED = "pending", "claimed", "sent", "failed"
STATES = (PENDING, CLAIMED, SENT, FAILED)
MAX_TEXT_CHARS = 16 * 1024


def normalize_phone(raw: str) -> str:
    """Digits only from "+1 555-123-4567" style input (a leading '+', spaces and dashes are dropped; anything else
    is refused); InvalidPhone unless 8-15 digits with a country code. The rule itself is `phone_digits` in
    watchdog/instance/_config.py (light enough for the watchdog), so a [notify] recipient that loads is one accepted
    here."""
    digits = recipient_id(raw)  # also "group:NAME" (a group's exact title): instance recipient_id
    if digits is None:
        raise InvalidPhone(f"{raw!r} is not a phone number or a group: {RECIPIENT_HELP}")
    return digits


# A queued message's fields that start empty; not written while they hold these (DurableMap.DEFAULTS).
MESSAGE_DEFAULTS: dict[str, Any] = {
    "dedupe_key": None,
    "attempts": 0,
    "attempts_at": [],
    "attempted_at": None,
    "claimed_at": None,
    "claim_owner": None,
    "lease_expires_at": None,
    "retry_at": None,
    "last_error": None,
    "unknown_outcome": False,
    "sent_at": None,
    "failed_at": None,
}


def _new_message(phone: str, text: str, dedupe_key: str | None, now: float) -> Record:
    ident = f"m{int(now * 1000):x}{secrets.token_hex(4)}"
    record = {"id": ident, "phone": phone, "text": text, "state": PENDING, "created_at": now}
    return {**record, **copy.deepcopy(MESSAGE_DEFAULTS), "dedupe_key": dedupe_key}


def _not_before(record: Record) -> float:
    """When an open message can be claimed: its retry time (pending) or its lease's end (claimed); seconds."""
    when = record.get("retry_at") if record.get("state") == PENDING else record.get("lease_expires_at")
    return float(when) if isinstance(when, int | float) else 0.0


def _state_name(record: Record) -> str:
    """The record's state as counted: pending when it has none (a hand-edited file may hold anything)."""
    state = record.get("state", PENDING)
    return state if isinstance(state, str) else str(state)


class Outbox(DurableMap):
    """Messages by id; the worker claims them one at a time and reports the outcome."""

    NAME, KIND, ITEMS_KEY = "outbox", "outbox", "messages"
    DEFAULT_SOURCE = "outbox"
    DEFAULTS: ClassVar[dict[str, Any]] = MESSAGE_DEFAULTS

    # -- indexes: dedupe keys, the open (pending or claimed) messages in queue order, counts per state ----------
    def _rebuild_index(self) -> None:
        self._by_key: dict[str, str] = {}
        self._open_ids: dict[str, float] = {}  # pending or claimed, in queue order -> not claimable before (s)
        self._claimed_ids: set[str] = set()  # for counts(): a claim whose lease expired counts as pending
        self._state_counts: dict[str, int] = dict.fromkeys(STATES, 0)
        for ident, raw in self._items.items():  # as stored (no defaults filled in): less to allocate
            self._index_put(ident, None, json.loads(raw))
        # The keys were made among the parsed records, now freed: made again side by side, the memory they were
        # scattered over goes back (about 6 MB at 100,000 messages).
        self._by_key = {key.encode().decode(): ident for key, ident in self._by_key.items()}

    def _index_put(self, ident: str, old: Record | None, new: Record) -> None:
        if old is not None:
            self._count(old, -1)
        self._count(new, +1)
        if new.get("dedupe_key"):
            self._by_key[new["dedupe_key"]] = ident
        if new.get("state") in (PENDING, CLAIMED):
            self._open_ids[ident] = _not_before(new)
        else:
            self._open_ids.pop(ident, None)
        if new.get("state") == CLAIMED:
            self._claimed_ids.add(ident)
        else:
            self._claimed_ids.discard(ident)

    def _index_del(self, ident: str, old: Record) -> None:
        self._count(old, -1)
        if old.get("dedupe_key") and self._by_key.get(old["dedupe_key"]) == ident:
            del self._by_key[old["dedupe_key"]]
        self._open_ids.pop(ident, None)
        self._claimed_ids.discard(ident)

    def _count(self, record: Record, delta: int) -> None:
        state = _state_name(record)
        count = self._state_counts.get(state, 0) + delta
        if count or state in STATES:
            self._state_counts[state] = count
        else:  # an unknown state (a hand-edited file) no message has any more
            self._state_counts.pop(state, None)

    # -- changes ---------------------------------------------------------------------------------------------
    def _put(self, record: Record) -> Record:
        self._commit_locked([["p", record["id"], check_record(record)]])
        return dict(record)

    def _existing(self, ident: str) -> Record:
        record = self._record(ident)
        if record is None:
            raise TokenNotFound(f"no message {ident!r} in the outbox")
        return record

    def enqueue(self, phone: str, text: str, *, dedupe_key: str | None = None) -> tuple[Record, bool]:
        """Queue a message; returns (message, created), or (the existing message, False) for a used key."""
        return self.enqueue_many([(phone, text, dedupe_key)])[0]

    def enqueue_many(self, messages: Iterable[tuple[str, str, str | None]]) -> builtins.list[tuple[Record, bool]]:
        """Queue (phone, text, dedupe key) messages as one journal record (one fsync), all or none: InvalidPhone,
        InvalidRecord or RecordTooLarge for any of them queues none. Per message: (message, created), or (the
        existing message, False) for a key already used (also earlier in `messages`)."""
        wanted = [(normalize_phone(phone), text, key) for phone, text, key in messages]
        for _phone, text, _key in wanted:
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
                raise InvalidRecord(f"a message text must be 1-{MAX_TEXT_CHARS} characters")
        with self._writing():
            now = round(self._clock(), 3)
            fresh: dict[str, Record] = {}  # by id, in order
            fresh_keys: dict[str, str] = {}
            answers: builtins.list[tuple[str, bool]] = []
            for phone, text, key in wanted:
                used = (self._by_key.get(key) or fresh_keys.get(key)) if key else None
                if used is not None:
                    answers.append((used, False))
                    continue
                record = check_record(_new_message(phone, text, key, now))
                while record["id"] in self._items or record["id"] in fresh:  # 32 random bits: rare, but never reuse
                    record = {**record, "id": _new_message(phone, text, key, now)["id"]}
                fresh[record["id"]] = record
                if key:
                    fresh_keys[key] = record["id"]
                answers.append((record["id"], True))
            self._commit_locked([["p", ident, record] for ident, record in fresh.items()])
            return [(fresh[ident] if ident in fresh else self._existing(ident), created) for ident, created in answers]

    def claim(self, owner: str, *, lease_s: float = 120.0) -> Record | None:
        """The oldest sendable message, now claimed by `owner` for `lease_s` seconds (an attempt), or None.

        A claim whose lease expired (its owner died) is taken over and marked `unknown_outcome`.
        """
        self.refresh()
        with self._mutex:
            if not self._claimable_exists():
                return None
        with self._writing():
            now = round(self._clock(), 3)
            for ident, not_before in self._open_ids.items():
                if not_before > now:
                    continue
                record = self._existing(ident)
                if self._claimable(record, now):
                    taken_over = record["state"] == CLAIMED
                    record = {
                        **record,
                        "state": CLAIMED,
                        "claim_owner": owner,
                        "claimed_at": now,
                        "lease_expires_at": round(now + lease_s, 3),
                        "attempts": record.get("attempts", 0) + 1,
                        "attempts_at": [*record.get("attempts_at", []), now][-20:],
                        "attempted_at": now,
                        "unknown_outcome": bool(record.get("unknown_outcome")) or taken_over,
                    }
                    return self._put(record)
            return None

    def _claimable(self, record: Record, now: float) -> bool:
        if record.get("state") == PENDING:
            return not record.get("retry_at") or record["retry_at"] <= now
        return record.get("state") == CLAIMED and (record.get("lease_expires_at") or 0) <= now

    def _claimable_exists(self) -> bool:
        now = self._clock()
        return any(not_before <= now for not_before in self._open_ids.values())

    def note(self, ident: str, **details: Any) -> Record:
        """Durably attach `details` to a message without changing its state (e.g. what the chat showed before a
        send, so a later attempt can tell whether the earlier one went out)."""
        with self._writing():
            record = self._existing(ident)
            record.update(details)
            return self._put(record)

    def release_claims(self, *, except_owner: str) -> int:
        """Hand back claims of any other owner at once (a restarted worker: its predecessor is dead); their
        outcome is unknown. Returns how many."""
        self.refresh()
        with self._writing():
            released = 0
            for ident in list(self._claimed_ids):
                record = self._existing(ident)
                if record.get("state") == CLAIMED and record.get("claim_owner") != except_owner:
                    self._put(
                        {
                            **record,
                            "state": PENDING,
                            "claim_owner": None,
                            "lease_expires_at": None,
                            "unknown_outcome": True,
                        }
                    )
                    released += 1
            return released

    def mark_sent(self, ident: str, **details: Any) -> Record:
        """Record that the message went out (extra `details`, e.g. a chat message id, are kept)."""
        with self._writing():
            record = self._existing(ident)
            if record["state"] == SENT:
                return record
            now = round(self._clock(), 3)
            record.update(details)
            record.update(state=SENT, sent_at=now, lease_expires_at=None, unknown_outcome=False)
            return self._put(record)

    def mark_failed(self, ident: str, reason: str, *, permanent: bool = False, retry_after_s: float = 0.0) -> Record:
        """A failed attempt: back to pending (claimable after `retry_after_s` seconds), or failed for good."""
        with self._writing():
            record = self._existing(ident)
            if record["state"] == SENT:
                return record
            now = round(self._clock(), 3)
            record.update(last_error=str(reason)[:2000], lease_expires_at=None, claim_owner=None)
            if permanent:
                record.update(state=FAILED, failed_at=now)
            else:
                record.update(state=PENDING, retry_at=round(now + retry_after_s, 3) if retry_after_s else None)
            return self._put(record)

    # -- reading ---------------------------------------------------------------------------------------------
    def get(self, ident: str) -> Record | None:
        with self._mutex:
            self.refresh()
            return self._record(ident)

    def find(self, dedupe_key: str) -> Record | None:
        """The message queued with `dedupe_key`, or None."""
        with self._mutex:
            self.refresh()
            ident = self._by_key.get(dedupe_key)
            return self._record(ident) if ident else None

    def list(self, *, state: str | None = None) -> builtins.list[Record]:
        with self._mutex:
            self.refresh()
            records = (self._decode(raw) for raw in self._items.values())
            return [r for r in records if state is None or r.get("state") == state]

    def open_count(self) -> int:
        """How many messages are pending or claimed (from the index: no scan)."""
        with self._mutex:
            self.refresh()
            return len(self._open_ids)

    def counts(self) -> dict[str, int]:
        """Messages per state; a claim whose lease expired counts as pending. From the index: O(claimed)."""
        with self._mutex:
            self.refresh()
            now = self._clock()
            out = dict(self._state_counts)
            for ident in self._claimed_ids:
                if self._open_ids.get(ident, 0.0) <= now:
                    out[CLAIMED] -= 1
                    out[PENDING] += 1
            return out

    def find_states(self, dedupe_keys: Iterable[str]) -> dict[str, str]:
        """The state of the message queued with each of `dedupe_keys` (keys with no message are left out)."""
        with self._mutex:
            self.refresh()
            found = ((key, self._record(self._by_key.get(key) or "")) for key in dedupe_keys)
            return {key: _state_name(record) for key, record in found if record is not None}

    def dedupe_keys(self, idents: Iterable[str]) -> builtins.list[str]:
        """The dedupe keys of the messages `idents` (those that exist and have one)."""
        with self._mutex:
            self.refresh()
            records = (self._record(ident) for ident in idents)
            return [r["dedupe_key"] for r in records if r is not None and isinstance(r.get("dedupe_key"), str)]

    def prune(
        self, *, older_than_s: float, forget: Callable[[str], bool], max_changes: int = 5000
    ) -> _retention.Pruned:
        """Drop the messages sent more than `older_than_s` seconds ago whose dedupe key nothing can queue again
        (`forget(key)`, or no key); keep the others as tombstones of their key (`_retention`). At most
        `max_changes` changes, in one journal record; `.more` says whether to call again."""
        with self._writing():
            before = self._clock() - older_than_s
            return _retention.prune_locked(self, before=before, forget=forget, max_changes=max_changes)

    def retry(self, ident: str) -> Record:
        """A failed message (or a pending one waiting for its retry time) is sendable again now; InvalidRecord for a
        message being sent or already sent."""
        with self._writing():
            record = self._existing(ident)
            if record["state"] not in (PENDING, FAILED):
                raise InvalidRecord(f"message {ident!r} is {record['state']}: only pending or failed can be retried")
            record.update(state=PENDING, retry_at=None, failed_at=None)
            return self._put(record)

    def cancel(self, ident: str, *, reason: str = "cancelled by the user") -> Record:
        """A pending message is failed for good with `reason` (never sent); InvalidRecord for any other state."""
        with self._writing():
            record = self._existing(ident)
            if record["state"] != PENDING:
                raise InvalidRecord(f"message {ident!r} is {record['state']}: only pending ones can be cancelled")
            now = round(self._clock(), 3)
            record.update(state=FAILED, failed_at=now, last_error=reason[:2000], cancelled=True, retry_at=None)
            return self._put(record)
