"""Truthful sending health in simulated time: failing sends while messages wait become "stalled" (an event naming
the step and page role), a success ends it; a session "ready" on a changed page is not silently healthy."""

from __future__ import annotations

from typing import Any

from continuity.watchdog.instance import EventLog, Home
from continuity.worker.delivery import SENT, OutboxSender, SendOutcome
from continuity.worker.send_health import SendHealth
from continuity.worker.session.page import RoleNotFound
from continuity.worker.store import Outbox
from tests._watchdog_harness import events


class DriftedPage:
    """A fake session whose compose box cannot be found while `broken` (as after WhatsApp renamed it)."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    def ready(self) -> bool:
        return True

    def send(self, message: dict[str, Any], note: Any) -> SendOutcome:
        self.calls += 1
        if self.broken:
            raise RoleNotFound("compose", step="type the message")
        return SendOutcome(SENT)


def test_stall_after_three_failures_and_only_with_messages_waiting() -> None:
    """Three failures in a row stall sending; with nothing waiting there is no stall; a success clears it."""
    now = [0.0]
    health = SendHealth(stall_after_s=120, clock=lambda: now[0])
    assert not health.check(pending=3)
    for _ in range(2):
        health.on_failure(step="open the chat", role="chat", reason="open chat not found (role chat)")
        assert not health.check(pending=3)
    health.on_failure(step="open the chat", role="chat", reason="open chat not found (role chat)")
    assert not health.check(pending=0) and not health.stalled  # nothing waits: nothing is stuck
    assert health.check(pending=3) and health.stalled
    assert not health.check(pending=3)  # a stall starts once
    assert health.status(pending=3)["problem"] == "open chat not found (role chat) at step 'open the chat'"
    assert health.on_sent() and not health.stalled and health.status(pending=2)["failing_step"] is None


def test_stall_after_the_time_limit_with_a_single_failure() -> None:
    """One failure and no success for stall_after_s seconds (the retry is still waiting) is a stall too."""
    now = [0.0]
    health = SendHealth(stall_after_s=120, clock=lambda: now[0])
    health.on_failure(step="confirm delivery", role="tick", reason="no tick within 30 s")
    now[0] = 119.0
    assert not health.check(pending=1)
    now[0] = 120.0
    assert health.check(pending=1) and health.status(pending=1)["failing_for_s"] == 120.0


def test_outbox_sender_reports_send_stalled_then_send_recovered(home: Home) -> None:
    """A missing compose box: messages stay queued (never lost), `send_stalled` names the step and role once,
    the heartbeat section says so, and the first success after the fix emits `send_recovered`."""
    now = [1000.0]
    outbox = Outbox.open(home, clock=lambda: now[0])
    ids = [outbox.enqueue("15551234567", f"message {k}")[0]["id"] for k in range(2)]
    page = DriftedPage()
    sender = OutboxSender(
        outbox,
        page,
        min_interval_s=0,
        events=EventLog(home.events_file, source="t"),
        clock=lambda: now[0],
        wall_clock=lambda: now[0],
        stall_after_s=600,
    )
    for _ in range(3):
        sender(None)
        now[0] += 400  # past every retry delay
    assert page.calls == 3
    stalled = events(home, "send_stalled")
    assert len(stalled) == 1 and stalled[0]["role"] == "compose" and stalled[0]["step"] == "type the message"
    assert stalled[0]["problem"] == "compose box not found (role compose) at step 'type the message'"
    section = sender.status()
    assert section["stalled"] and section["pending"] == 2 and section["failing_role"] == "compose"
    assert {outbox.get(i)["state"] for i in ids} == {"pending"}
    sender(None)
    assert len(events(home, "send_stalled")) == 1  # still stalled: not announced again
    page.broken = False
    now[0] += 400
    sender(None)
    assert len(events(home, "send_recovered")) == 1 and not sender.status()["stalled"]
    outbox.close()
