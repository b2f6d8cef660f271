"""Confirmed sending in real Chromium against the simulator: acked on a tick, exactly once, failures kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import Home
from continuity.worker.delivery import OutboxSender
from continuity.worker.store import Outbox
from tests._session_harness import drive, linked_session, run_worker_until, sending_session, write_worker_config

pytestmark = pytest.mark.browser
PHONE = "15551234567"


@pytest.fixture
def ready(home: Home, sim: Simulator) -> Iterator[tuple[Any, Outbox, OutboxSender]]:
    with sending_session(home, sim) as ready:
        yield ready


def _state(outbox: Outbox, ident: str) -> str:
    record = outbox.get(ident)
    assert record is not None
    return str(record["state"])


def test_message_is_delivered_once_and_acked(ready: Any, sim: Simulator) -> None:
    """A queued message reaches the simulator exactly once and is marked sent with WhatsApp's id."""
    session, outbox, sender = ready
    text = "New token ABC on sol (tok1)\nsecond line"
    ident = outbox.enqueue(PHONE, text)[0]["id"]
    drive(session, lambda: _state(outbox, ident) == "sent", timeout=30, what="sent", extra=lambda: sender(None))
    delivered = sim.delivered()
    assert [(d["phone"], d["text"]) for d in delivered] == [(PHONE, text)]
    assert outbox.get(ident)["wa_id"].endswith(delivered[0]["id"])


def test_invalid_number_fails_for_good_with_reason(ready: Any, sim: Simulator) -> None:
    """A number that is not on WhatsApp ends as failed with the page's reason; nothing is delivered."""
    session, outbox, sender = ready
    sim.set_mode("invalid_numbers", numbers=["19999999999"])
    ident = outbox.enqueue("19999999999", "hello")[0]["id"]
    drive(session, lambda: _state(outbox, ident) == "failed", timeout=30, what="failed", extra=lambda: sender(None))
    assert "invalid" in outbox.get(ident)["last_error"].lower()
    assert sim.delivered() == []


def test_tick_that_never_comes_is_retried_and_delivered_once(ready: Any, sim: Simulator) -> None:
    """Stuck on the clock: not acked, retried later without a second send, delivered exactly once."""
    session, outbox, sender = ready
    sim.set_mode("stuck_clock")
    ident = outbox.enqueue(PHONE, "stuck then delivered")[0]["id"]
    drive(
        session,
        lambda: outbox.get(ident)["attempts"] >= 1 and _state(outbox, ident) == "pending",
        timeout=30,
        what="first attempt not acked",
        extra=lambda: sender(None),
    )
    assert "tick" in outbox.get(ident)["last_error"] and sim.delivered() == []
    sim.set_mode("stuck_clock", on=False)
    outbox.note(ident, retry_at=None)  # do not wait out the retry delay in a test
    drive(
        session,
        lambda: _state(outbox, ident) == "sent",
        timeout=60,
        what="sent after retry",
        extra=lambda: sender(None),
    )
    assert [d["text"] for d in sim.delivered()] == ["stuck then delivered"]
    assert len(sim.history(PHONE)) == 1


def test_worker_killed_after_clicking_send_does_not_deliver_twice(home: Home, sim: Simulator) -> None:
    """The worker dies right after clicking Send; its successor finds the message in the chat: one delivery."""
    linked_session(home, sim).close()
    write_worker_config(home, sim.url)
    outbox = Outbox.open(home)
    ident = outbox.enqueue(PHONE, "exactly once please")[0]["id"]
    sim.set_mode("stuck_clock")  # the click lands in WhatsApp, the tick does not come yet
    run_worker_until(home, lambda: sim.history(PHONE), timeout=60, what="the message in the chat (clicked)")
    assert _state(outbox, ident) == "claimed" and outbox.get(ident)["seen_before"] == 0
    sim.set_mode("stuck_clock", on=False)
    run_worker_until(home, lambda: _state(outbox, ident) == "sent", timeout=90, what="sent by the second worker")
    assert [d["text"] for d in sim.delivered()] == ["exactly once please"]
    record = outbox.get(ident)
    assert record["found_after_unknown_outcome"] is True
    assert json.dumps(sim.history(PHONE)).count("exactly once please") == 1
    outbox.close()


def test_heartbeat_keeps_beating_during_a_long_send(home: Home, sim: Simulator) -> None:
    """While one send waits 4 s for a tick that does not come, the heartbeat still advances every 0.5 s."""
    from continuity.watchdog.instance import WorkerConfig, read_heartbeat
    from continuity.worker.main import build_worker

    session = linked_session(home, sim, send_ack_timeout=4.0)
    config = session.config.replace(worker=WorkerConfig(heartbeat_interval=0.5))
    loop = build_worker(home, config, session=session)
    try:
        loop.heartbeat()
        before = read_heartbeat(home.heartbeat_file)["seq"]
        sim.set_mode("stuck_clock")
        session.sender.outbox.enqueue(PHONE, "waiting for a tick")
        session.sender(None)  # one blocking send: opens the chat, clicks, waits 4 s for the tick
        after = read_heartbeat(home.heartbeat_file)
        assert after["seq"] - before >= 3
        assert session.sender.outbox.list()[0]["state"] == "pending"
    finally:
        session.close()
        for resource in loop.resources:
            resource.close()
