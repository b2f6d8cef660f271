"""Sending limits (worker/pacing.py) in simulated time, their wiring into the outbox sender, and their config keys."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from continuity.watchdog.instance import ConfigError, EventLog, WhatsAppConfig, load_config
from continuity.watchdog.status import format_status
from continuity.worker.delivery import SENT, OutboxSender, SendOutcome
from continuity.worker.pacing import DAY_S, HOUR_S, Limit, SendPacer, pacer_from_outbox
from continuity.worker.store import Outbox


class Clock:
    """Simulated epoch seconds."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _pacer(clock: Clock, per_minute: int = 3, per_hour: int = 5, per_day: int = 8) -> SendPacer:
    wa = WhatsAppConfig(max_per_minute=per_minute, max_per_hour=per_hour, max_per_day=per_day)
    return SendPacer.for_config(wa, clock=clock)


def test_under_every_limit_a_send_may_go_at_once() -> None:
    """With fewer sends than any limit in each window, the wait is 0 and no limit holds."""
    clock = Clock()
    pacer = _pacer(clock)
    for _ in range(2):
        pacer.record()
        clock.now += 1
    assert pacer.held_by() == (0.0, None)


def test_the_minute_limit_holds_until_the_oldest_send_leaves_the_window() -> None:
    """3 sends at t, t+10, t+20 with max_per_minute 3: the 4th waits until t+60, then may go."""
    clock = Clock()
    start = clock.now
    pacer = _pacer(clock)
    for _ in range(3):
        pacer.record()
        clock.now += 10
    wait, key = pacer.held_by()
    assert key == "max_per_minute" and wait == pytest.approx(start + 60 - clock.now)
    clock.now = start + 60.0
    assert pacer.wait_s() == 0.0


def test_a_sliding_hour_window_is_not_reset_at_the_top_of_the_hour() -> None:
    """5 sends spread over 50 minutes hold the 6th until the first one is an hour old, not at a clock boundary."""
    clock = Clock()
    start = clock.now
    pacer = _pacer(clock, per_minute=10)
    for _ in range(5):
        pacer.record()
        clock.now += 600
    wait, key = pacer.held_by()
    assert key == "max_per_hour" and clock.now + wait == pytest.approx(start + HOUR_S)


def test_the_day_limit_holds_for_the_longest_wait_of_all() -> None:
    """8 sends 2 hours apart with max_per_day 8: the 9th waits until the first is a day old."""
    clock = Clock()
    start = clock.now
    pacer = _pacer(clock, per_minute=10, per_hour=10)
    for _ in range(8):
        pacer.record()
        clock.now += 2 * HOUR_S
    wait, key = pacer.held_by()
    assert key == "max_per_day"
    assert clock.now + wait == pytest.approx(start + DAY_S)


def test_a_burst_of_100_goes_out_at_the_limits_pace_in_simulated_time() -> None:
    """Sending whenever allowed for 2 simulated hours: never more than a limit in any window, and all are paced."""
    clock = Clock()
    pacer = _pacer(clock, per_minute=3, per_hour=20, per_day=1000)
    sent: list[float] = []
    end = clock.now + 2 * HOUR_S
    while clock.now < end and len(sent) < 100:
        wait = pacer.wait_s()
        if wait > 0:
            clock.now += wait
            continue
        pacer.record()
        sent.append(clock.now)
        clock.now += 1.0
    assert len(sent) == 40  # 20 in each hour
    for i, t in enumerate(sent):
        assert sum(1 for u in sent[i:] if u < t + 60) <= 3
        assert sum(1 for u in sent[i:] if u < t + HOUR_S) <= 20


def test_a_restart_does_not_reset_the_days_count(tmp_path: Path) -> None:
    """The pacer of a new worker reads the outbox's sent_at: a day already at its limit stays held."""
    clock = Clock()
    outbox = Outbox.open(tmp_path / "data", clock=clock)
    for i in range(4):
        record, _ = outbox.enqueue("15551234567", f"hello {i}")
        claimed = outbox.claim("w")
        assert claimed is not None and claimed["id"] == record["id"]
        outbox.mark_sent(record["id"])
        clock.now += HOUR_S
    wa = WhatsAppConfig(max_per_minute=4, max_per_hour=4, max_per_day=4)
    fresh = pacer_from_outbox(wa, outbox, clock=clock)
    wait, key = fresh.held_by()
    assert key == "max_per_day" and wait == pytest.approx(DAY_S - 4 * HOUR_S)


def test_a_future_send_time_counts_as_now_not_forever() -> None:
    """A send time ahead of the clock (the wall clock went back) holds for at most one window from now."""
    clock = Clock()
    pacer = SendPacer([Limit("max_per_minute", 60.0, 1)], clock=clock)
    pacer.load([clock.now + 10 * DAY_S])
    assert pacer.wait_s() == pytest.approx(60.0)


class _Ready:
    """A MessageSender that is always ready and delivers every message."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def ready(self) -> bool:
        return True

    def send(self, message: dict[str, Any], note: Any) -> SendOutcome:
        self.sent.append(message["id"])
        return SendOutcome(SENT)


def test_over_a_limit_messages_wait_and_never_fail(tmp_path: Path) -> None:
    """5 queued with max_per_minute 2: 2 go, 3 wait (pending, not failed) with paced_until; later they go too."""
    clock = Clock()
    outbox = Outbox.open(tmp_path / "data", clock=clock)
    for i in range(5):
        outbox.enqueue("15551234567", f"m{i}")
    pacer = SendPacer([Limit("max_per_minute", 60.0, 2)], clock=clock)
    session = _Ready()
    events = EventLog(tmp_path / "events.jsonl", source="t")
    sender = OutboxSender(outbox, session, min_interval_s=0.0, events=events, clock=clock, pacer=pacer)
    for _ in range(10):
        sender(None)
    assert len(session.sent) == 2
    assert outbox.counts()["pending"] == 3 and outbox.counts()["failed"] == 0
    status = sender.status()
    assert status["paced_by"] == "max_per_minute" and status["paced_until"] == pytest.approx(clock.now + 60.0)
    assert sender.paced_until() == round(clock.now + 60.0)
    for _ in range(3):
        clock.now += 61.0
        for _ in range(3):
            sender(None)
    assert len(session.sent) == 5 and outbox.counts()["sent"] == 5
    assert sender.status()["paced_until"] is None  # nothing waits: not "paced"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("max_per_minute = 0", r"whatsapp\.max_per_minute must be greater than 0"),
        ("max_per_hour = -5", r"whatsapp\.max_per_hour must be greater than 0"),
        ("max_per_day = 2.5", r"whatsapp\.max_per_day must be int"),
        ('max_per_day = "100"', r"whatsapp\.max_per_day must be int"),
        ("max_per_hour = 5000000", r"whatsapp\.max_per_hour must be at most 1000000"),
        ("max_per_week = 10", r"unknown key whatsapp\.max_per_week"),
    ],
)
def test_bad_sending_limits_are_refused_naming_the_key(tmp_path: Path, line: str, message: str) -> None:
    """A zero, negative, fractional, textual or huge limit (or a misspelt key) is a ConfigError naming the key."""
    path = tmp_path / "continuity.toml"
    path.write_text(f"[whatsapp]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_sending_limits_have_defaults_and_load() -> None:
    """No [whatsapp] limits: the documented defaults; given ones load as ints."""
    assert (WhatsAppConfig().max_per_minute, WhatsAppConfig().max_per_hour, WhatsAppConfig().max_per_day) == (
        10,
        120,
        1000,
    )


def test_status_says_paced_until_and_the_pairing_code(tmp_path: Path) -> None:
    """`continuity status` prints "paced until HH:MM:SS (max_per_hour reached, N waiting)" and the pairing code
    from the heartbeat; neither line without them."""
    heartbeat = {
        "whatsapp": {"state": "qr", "quality": "offline", "pairing_code": "ABCD-EFGH"},
        "sending": {"pending": 7, "paced_until": 1_700_000_000.0, "paced_by": "max_per_hour"},
    }
    status = {
        "home": str(tmp_path),
        "watchdog": {"state": "not running"},
        "worker": {"pid": None, "alive": False, "heartbeat_age_s": 1.0, "heartbeat_readable": True},
        "heartbeat": heartbeat,
        "health": {"session_health": "healthy", "reasons": [], "recommendations": {}},
    }
    text = format_status(status)
    until = time.strftime("%H:%M:%S", time.localtime(1_700_000_000.0))
    assert f"sending:   paced until {until} (max_per_hour reached, 7 waiting)" in text
    assert "pairing:   code ABCD-EFGH" in text
    heartbeat["sending"] = {"pending": 7, "paced_until": None}
    heartbeat["whatsapp"] = {"state": "ready"}
    assert "sending:   paced" not in format_status(status) and "pairing:" not in format_status(status)
