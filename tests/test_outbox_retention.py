"""Pruning sent messages ([outbox] keep_sent_days): flat space, and never a message queued or sent twice."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from continuity.watchdog.instance import ConfigError, EventLog, Home, NotifyConfig, load_config, read_events
from continuity.worker.jobs import MORE_WORK, JobContext
from continuity.worker.notify import NotifyJob, dedupe_key
from continuity.worker.retention import DAY_S, OutboxRetention
from continuity.worker.store import FAILED, SENT, Ledger, Outbox, TokenStore

A, B = "15550000001", "15550000002"


class Clock:
    """Wall-clock seconds that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _context(home: Home, clock: Clock) -> JobContext:
    store = TokenStore.open(home, clock=clock, backup_interval=1e9)
    outbox = Outbox.open(home, clock=clock, backup_interval=1e9)
    return JobContext(store, outbox, Ledger(home), logging.getLogger("t"), threading.Event(), home, None)


def _send(outbox: Outbox, key: str) -> None:
    message = outbox.find(key)
    assert message is not None
    outbox.mark_sent(message["id"])


def _run(job: object, context: JobContext) -> None:
    while job(context) is MORE_WORK:  # type: ignore[operator]
        pass


def test_a_token_sent_to_one_recipient_long_ago_is_not_queued_again(home: Home) -> None:
    """A token whose message to A was sent 31 days ago and whose message to B waits: A's message becomes a tombstone
    (not dropped), so the notify job never queues it again; once B's is sent too and the token is in the ledger, a
    later prune drops both and nothing is queued."""
    clock = Clock()
    context = _context(home, clock)
    notify = NotifyJob(NotifyConfig(recipients=(A, B)), events=EventLog(home.events_file, source="t"), clock=clock)
    retention = OutboxRetention(30, events=EventLog(home.events_file, source="t"))
    context.store.add("tok", symbol="T", chain="sol")
    _run(notify, context)
    _send(context.outbox, dedupe_key("tok", A))
    clock.now += 31 * DAY_S
    _run(retention, context)
    stone = context.outbox.find(dedupe_key("tok", A))
    assert stone is not None and stone["state"] == SENT and stone["text"] == "" and stone["pruned_at"]
    _run(notify, context)
    assert len(context.outbox.list()) == 2, "a pruned message was queued again"
    _send(context.outbox, dedupe_key("tok", B))
    _run(notify, context)
    assert "tok" in context.ledger
    clock.now += 31 * DAY_S
    _run(retention, context)
    _run(notify, context)
    assert context.outbox.list() == [], "the token is notified: its messages are dropped and none is queued"
    pruned = [e for e in read_events(home.events_file) if e["event"] == "outbox_pruned"]
    assert [(e["dropped"], e["tombstoned"]) for e in pruned] == [(0, 1), (2, 0)]


def test_keys_of_other_senders_stay_as_tombstones_and_young_or_failed_messages_stay_whole(home: Home) -> None:
    """Old sent messages: without a dedupe key dropped; with a key of the user's kept as a tombstone (enqueue with
    that key still answers "already queued"). Messages sent 20 days ago and failed ones are kept whole."""
    clock = Clock()
    outbox = Outbox.open(home, clock=clock, backup_interval=1e9)
    plain, _ = outbox.enqueue(A, "no key")
    keyed, _ = outbox.enqueue(A, "order 1 shipped", dedupe_key="order-1")
    failed, _ = outbox.enqueue(A, "bad", dedupe_key="order-2")
    outbox.mark_sent(plain["id"])
    outbox.mark_sent(keyed["id"])
    outbox.mark_failed(failed["id"], "not on WhatsApp", permanent=True)
    clock.now += 11 * DAY_S
    young, _ = outbox.enqueue(A, "order 3 shipped", dedupe_key="order-3")
    outbox.mark_sent(young["id"])
    clock.now += 20 * DAY_S
    result = outbox.prune(older_than_s=30 * DAY_S, forget=lambda key: False)
    assert (result.dropped, result.tombstoned, result.more) == (1, 1, False)
    assert outbox.get(plain["id"]) is None
    again, created = outbox.enqueue(A, "order 1 shipped", dedupe_key="order-1")
    assert not created and again["id"] == keyed["id"] and again["state"] == SENT
    assert outbox.find_states(["order-1", "order-2", "order-3"]) == {
        "order-1": SENT,
        "order-2": FAILED,
        "order-3": SENT,
    }
    assert outbox.get(young["id"])["text"] == "order 3 shipped"  # type: ignore[index]
    assert outbox.get(failed["id"])["text"] == "bad"  # type: ignore[index]
    outbox.close()
    with Outbox.open(home, clock=clock) as reopened:  # the tombstone is durable
        assert reopened.find("order-1")["pruned_at"]  # type: ignore[index]


def test_a_big_prune_goes_in_slices(home: Home) -> None:
    """With more to prune than one call may change, each call makes at most `max_changes` changes and says more is
    left; in the end every old message is gone."""
    clock = Clock()
    with Outbox.open(home, clock=clock, backup_interval=1e9) as outbox:
        for k in range(5):
            message, _ = outbox.enqueue(A, f"m{k}")
            outbox.mark_sent(message["id"])
        clock.now += 31 * DAY_S
        calls = []
        while True:
            result = outbox.prune(older_than_s=30 * DAY_S, forget=lambda key: True, max_changes=2)
            calls.append(result.dropped)
            if not result.more:
                break
        assert calls[:2] == [2, 2] and sum(calls) == 5 and outbox.list() == []


def test_keep_sent_days_is_checked_at_load(tmp_path: Path) -> None:
    """[outbox] keep_sent_days: 0 keeps messages for ever, a negative or absurd value or an unknown key is refused
    naming the key."""
    config = tmp_path / "continuity.toml"
    config.write_text("[outbox]\nkeep_sent_days = 0\n", encoding="utf-8")
    assert load_config(config).outbox.keep_sent_days == 0
    for bad in ("keep_sent_days = -1", "keep_sent_days = 100000", 'keep_sent_days = "30"', "keep_sent = 30"):
        config.write_text(f"[outbox]\n{bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="keep_sent"):
            load_config(config)
