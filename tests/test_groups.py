"""Sending to groups ("group:NAME") in real Chromium against the simulator: found by exact title, once across a
kill, an unknown group fails for good."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import Home
from continuity.worker.delivery import OutboxSender
from continuity.worker.session.groups import _rows
from continuity.worker.store import Outbox
from tests._session_harness import drive, linked_session, run_worker_until, sending_session, write_worker_config

pytestmark = pytest.mark.browser
GROUP = "Token Alerts"


def _get(outbox: Outbox, ident: str) -> dict[str, Any]:
    record = outbox.get(ident)
    assert record is not None
    return record


def _state(outbox: Outbox, ident: str) -> str:
    return str(_get(outbox, ident)["state"])


@pytest.fixture
def ready(home: Home, sim: Simulator) -> Iterator[tuple[Any, Outbox, OutboxSender]]:
    with sending_session(home, sim) as ready:
        yield ready


def test_group_is_found_by_exact_title_and_unknown_group_fails_for_good(ready: Any, sim: Simulator) -> None:
    """With a virtualised chat list (the group's row not in the page), of groups "Token Alerts 2" and "Token
    Alerts" the exact one gets the message; "group:Nope" fails with a reason naming the title, nothing delivered
    for it; a person's message still goes out afterwards."""
    session, outbox, sender = ready
    sim.set_mode("virtual_list", rows=3)
    jid, decoy = sim.add_group(GROUP), sim.add_group(GROUP + " 2")  # the oldest chats: out of the list's view
    for index in range(3):
        sim.add_group(f"Other {index}")
    drive(session, lambda: _rows(session.page, GROUP, click=False)["rows"] == 3, timeout=30, what="a list of 3")
    assert _rows(session.page, GROUP, click=False)["hits"] == 0  # only the search box can find it
    ok = outbox.enqueue(f"group:{GROUP}", "to the group")[0]["id"]
    drive(session, lambda: _state(outbox, ok) == "sent", timeout=60, what="group sent", extra=lambda: sender(None))
    assert [(d["phone"], d["text"]) for d in sim.delivered()] == [(jid, "to the group")]
    assert sim.history(decoy) == [] and str(_get(outbox, ok)["wa_id"]).startswith(f"true_{jid}_")
    bad = outbox.enqueue("group:Nope", "lost")[0]["id"]
    drive(session, lambda: _state(outbox, bad) == "failed", timeout=60, what="failed", extra=lambda: sender(None))
    reason = _get(outbox, bad)["last_error"]
    assert "no group titled 'Nope'" in reason and "exact title" in reason
    person = outbox.enqueue("15551234567", "to a person")[0]["id"]
    drive(session, lambda: _state(outbox, person) == "sent", timeout=60, what="person", extra=lambda: sender(None))
    assert [d["text"] for d in sim.delivered()] == ["to the group", "to a person"]


def test_group_message_goes_out_once_across_a_kill(home: Home, sim: Simulator) -> None:
    """The worker is SIGKILLed right after clicking Send in the group; its successor finds the bubble in the group
    chat and marks it sent: the group got the message exactly once."""
    linked_session(home, sim).close()
    jid = sim.add_group(GROUP)
    write_worker_config(home, sim.url)
    outbox = Outbox.open(home)
    ident = outbox.enqueue(f"group:{GROUP}", "group, exactly once")[0]["id"]
    sim.set_mode("stuck_clock")  # the click lands in WhatsApp, the tick does not come yet
    run_worker_until(home, lambda: sim.history(jid), timeout=90, what="the message in the group chat (clicked)")
    assert _state(outbox, ident) == "claimed" and _get(outbox, ident)["seen_before"] == 0
    sim.set_mode("stuck_clock", on=False)
    run_worker_until(home, lambda: _state(outbox, ident) == "sent", timeout=90, what="sent by the second worker")
    assert [(d["phone"], d["text"]) for d in sim.delivered()] == [(jid, "group, exactly once")]
    assert _get(outbox, ident)["found_after_unknown_outcome"] is True
    assert json.dumps(sim.history(jid)).count("group, exactly once") == 1
    outbox.close()
