"""Outbox: enqueue -> claim (lease) -> sent / failed, dedupe keys, phone validation, durability."""

from __future__ import annotations

import pytest

from continuity.watchdog.instance import Home
from continuity.worker.store import InvalidPhone, InvalidRecord, Outbox, normalize_phone


class Clock:
    """A wall clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("raw", "digits"), [("+1 555-123-4567", "15551234567"), ("4915112345678", "4915112345678")])
def test_phone_numbers_are_normalized_to_digits(raw: str, digits: str) -> None:
    """A leading '+', spaces and dashes are dropped; the digits are kept."""
    assert normalize_phone(raw) == digits


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1234567",
        "1234567890123456",
        "+1 555 CALL NOW",
        "05551234567",
        "\uff11\uff15\uff15\uff15\uff11\uff12\uff13\uff14\uff15\uff16\uff17",
    ],
)
def test_bad_phone_numbers_are_refused(raw: str) -> None:
    """Too short, too long, letters, a leading 0, non-ASCII digits: InvalidPhone (a ValueError)."""
    with pytest.raises(InvalidPhone, match="country code"):
        normalize_phone(raw)


def test_message_lifecycle_survives_reopen(home: Home) -> None:
    """enqueue -> claim -> mark_sent is durable and visible to a freshly opened outbox."""
    clock = Clock()
    with Outbox.open(home, clock=clock) as box:
        message, created = box.enqueue("+15551234567", "hello", dedupe_key="n1")
        assert created and message["state"] == "pending"
        claimed = box.claim("worker-1", lease_s=60)
        assert claimed is not None and claimed["id"] == message["id"]
        assert (
            claimed["attempts"] == 1 and claimed["attempted_at"] == clock.now and claimed["claim_owner"] == "worker-1"
        )
        assert box.claim("worker-2") is None, "a live claim is not handed out twice"
        box.mark_sent(message["id"], chat_message_id="wa-1")
    with Outbox.open(home) as box:
        final = box.get(message["id"])
        assert final is not None and final["state"] == "sent" and final["chat_message_id"] == "wa-1"
        assert box.counts() == {"pending": 0, "claimed": 0, "sent": 1, "failed": 0}


def test_dedupe_key_is_never_queued_twice(home: Home) -> None:
    """A second enqueue with the same key returns the first message, even after it was sent and reopened."""
    with Outbox.open(home) as box:
        first, _ = box.enqueue("15551234567", "token X", dedupe_key="token:X")
        box.mark_sent(first["id"])
    with Outbox.open(home) as box:
        again, created = box.enqueue("15551234567", "token X", dedupe_key="token:X")
        assert not created and again["id"] == first["id"] and len(box.list()) == 1


def test_expired_claim_returns_with_unknown_outcome(home: Home) -> None:
    """A claim whose lease ran out (its worker died) is handed out again: unknown_outcome, 2 attempts."""
    clock = Clock()
    with Outbox.open(home, clock=clock) as box:
        message, _ = box.enqueue("15551234567", "hi")
        box.claim("dead-worker", lease_s=30)
        clock.now += 10
        assert box.claim("w2") is None and box.counts()["claimed"] == 1
        clock.now += 25
        assert box.counts()["pending"] == 1
        again = box.claim("w2")
        assert again is not None and again["id"] == message["id"]
        assert again["attempts"] == 2 and again["unknown_outcome"] is True and len(again["attempts_at"]) == 2


def test_failures_retry_later_or_stop_for_good(home: Home) -> None:
    """mark_failed keeps the reason; a retry waits retry_after_s seconds; permanent failure is final."""
    clock = Clock()
    with Outbox.open(home, clock=clock) as box:
        message, _ = box.enqueue("15551234567", "hi")
        box.claim("w")
        box.mark_failed(message["id"], "chat not found", retry_after_s=60)
        assert box.claim("w") is None
        clock.now += 61
        retry = box.claim("w")
        assert retry is not None and retry["last_error"] == "chat not found" and retry["attempts"] == 2
        failed = box.mark_failed(message["id"], "number not on WhatsApp", permanent=True)
        assert failed["state"] == "failed" and box.claim("w") is None


def test_bad_text_is_refused_and_nothing_queued(home: Home) -> None:
    """An empty text or a bad phone raise before anything is written."""
    with Outbox.open(home) as box:
        with pytest.raises(InvalidRecord):
            box.enqueue("15551234567", "   ")
        with pytest.raises(InvalidPhone):
            box.enqueue("12", "hi")
        assert box.list() == []


def test_two_outboxes_never_hand_out_one_message_twice(home: Home) -> None:
    """Claims from two open outboxes (separate file handles and locks) each get different messages."""
    first, second = Outbox.open(home), Outbox.open(home)
    for k in range(6):
        first.enqueue("15551234567", f"m{k}")
    claimed = []
    for _ in range(3):
        for box in (first, second):
            message = box.claim(f"w{id(box)}")
            assert message is not None
            claimed.append(message["id"])
    assert len(set(claimed)) == 6 and first.claim("w") is None
    first.close()
    second.close()
