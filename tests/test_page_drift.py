"""WhatsApp Web drift, in real Chromium against the simulator's page variants: sending survives changed attributes,
icons and ids (each message once, also across a worker kill); fallbacks show in the status; an unrecognized page
is reported with a redacted diagnostic and no restart storm; a [whatsapp.selectors] override brings it back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import EventLog, Home
from continuity.worker.delivery import OutboxSender
from continuity.worker.session import WhatsAppSession, WhatsAppState
from continuity.worker.store import Outbox
from tests._session_harness import (
    drive,
    linked_session,
    run_worker_until,
    sending_session,
    session_config,
    unpaced_sender,
    write_worker_config,
)
from tests._watchdog_harness import events

pytestmark = pytest.mark.browser
PHONE, OTHER = "15551234567", "15557654321"

# variant -> roles that must then be found only through a fallback (the rest keep their primary selector)
SURVIVABLE = {
    "compose_tab_11": set(),  # the primary compose selector is structural (footer textbox), not data-tab
    "send_icon_renamed": {"send_button"},
    "ticks_renamed": set(),  # msg-check-v2 is still a tick; any tick neither pending nor failed means sent
    "side_ids_renamed": {"main", "chat_list"},
}


def _state(outbox: Outbox, ident: str) -> str:
    record = outbox.get(ident)
    assert record is not None
    return str(record["state"])


@pytest.fixture
def sending(home: Home, sim: Simulator, request: pytest.FixtureRequest) -> Iterator[tuple[Any, Outbox, OutboxSender]]:
    """A linked session on the variant named by the test's parameter, with an outbox and its sender."""
    sim.set_variant(request.param)
    with sending_session(home, sim) as sending:
        yield sending


@pytest.mark.parametrize("sending", sorted(SURVIVABLE), indirect=True)
def test_sending_survives_a_changed_page(sending: Any, sim: Simulator, request: pytest.FixtureRequest) -> None:
    """On each variant that changes only attributes, icons or ids, messages go out exactly once (two identical
    texts to one chat included: ids are read from the bubble's wrapper), and the status names each role that
    works only through a fallback."""
    session, outbox, sender = sending
    variant = request.node.callspec.params["sending"]
    texts = [(PHONE, "same text"), (PHONE, "same text"), (OTHER, "another")]
    ids = [outbox.enqueue(phone, text)[0]["id"] for phone, text in texts]
    drive(
        session,
        lambda: all(_state(outbox, i) == "sent" for i in ids),
        timeout=60,
        what=f"all sent on {variant}",
        extra=lambda: sender(None),
    )
    assert sorted((d["phone"], d["text"]) for d in sim.delivered()) == sorted(texts)
    wa_ids = [outbox.get(i)["wa_id"] for i in ids]
    assert all(wa_ids) and len(set(wa_ids)) == 3  # each bubble told apart by WhatsApp's id
    assert set(session.status()["fallback_roles"]) == SURVIVABLE[variant]
    assert not sender.status()["stalled"]


@pytest.mark.parametrize("variant", sorted(SURVIVABLE))
def test_worker_killed_after_send_delivers_once_on_a_changed_page(home: Home, sim: Simulator, variant: str) -> None:
    """The worker dies right after clicking Send on a changed page; its successor reads the chat (renamed ticks,
    ids on wrappers) and does not send again: one delivery."""
    sim.set_variant(variant)
    linked_session(home, sim).close()
    write_worker_config(home, sim.url)
    outbox = Outbox.open(home)
    ident = outbox.enqueue(PHONE, f"once on {variant}")[0]["id"]
    sim.set_mode("stuck_clock")  # the click lands, the tick does not come yet
    run_worker_until(home, lambda: sim.history(PHONE), timeout=60, what="the message in the chat (clicked)")
    sim.set_mode("stuck_clock", on=False)
    run_worker_until(home, lambda: _state(outbox, ident) == "sent", timeout=90, what="sent by the second worker")
    assert [d["text"] for d in sim.delivered()] == [f"once on {variant}"]
    assert outbox.get(ident)["found_after_unknown_outcome"] is True
    outbox.close()


def test_unrecognized_page_is_reported_redacted_without_restart_storm(home: Home, sim: Simulator) -> None:
    """A main screen with none of the known markers: `unrecognized` within unrecognized_after plus one probe, one
    page_unrecognized event naming the roles, a diagnostic (0600) holding no number or message text (and the
    screenshot asked for), at most one browser restart, and the turn keeps returning (the heartbeat stays fresh)."""
    session = linked_session(home, sim, unrecognized_after=3.0, diagnostic_screenshots=True)
    try:
        outbox = Outbox.open(home)
        sender = unpaced_sender(home, outbox, session)
        ident = outbox.enqueue(OTHER, "secret words 4242")[0]["id"]
        drive(session, lambda: _state(outbox, ident) == "sent", timeout=30, what="sent", extra=lambda: sender(None))
        outbox.close()
        sim.set_variant("unrecognized_main")
        assert session.page is not None
        session.page.reload()
        changed_at = time.monotonic()
        drive(session, lambda: session.state is WhatsAppState.UNRECOGNIZED, timeout=30, what="unrecognized")
        took = time.monotonic() - changed_at
        assert took <= 3.0 + 1.0 + 5.0  # unrecognized_after + one probe (1 s while not ready) + the page load
        longest_turn = 0.0
        while time.monotonic() - changed_at < 15:  # the worker loop's view: every turn comes back quickly
            started = time.monotonic()
            session.turn()
            longest_turn = max(longest_turn, time.monotonic() - started)
            time.sleep(0.1)
        assert session.state is WhatsAppState.UNRECOGNIZED
    finally:
        session.close()
    reported = events(home, "page_unrecognized")
    assert len(reported) == 1
    assert "main" in reported[0]["roles_missing"] and "qr" in reported[0]["roles_missing"]
    diagnostic = next((home.logs_dir / "diagnostics").glob("unrecognized-*.txt"))
    text = diagnostic.read_text()
    assert diagnostic.with_suffix(".png").read_bytes().startswith(b"\x89PNG")  # diagnostic_screenshots = true
    assert oct(diagnostic.stat().st_mode & 0o777) == "0o600"
    assert "data-panel <5 chars>" in text and "(text <" in text
    for secret in (OTHER, OTHER[1:], "secret words", "4242"):
        assert secret not in text
    assert session.browser_restarts <= 1
    assert len(events(home, "browser_restart")) <= 2  # the login-durability restart (not counted) and at most one
    assert longest_turn < 10.0  # a turn never blocks the loop long enough to starve the heartbeat


def test_override_brings_an_unrecognized_page_back_to_ready_and_sending(home: Home, sim: Simulator) -> None:
    """[whatsapp.selectors] main = the new marker: the same page is ready again and a message goes out once."""
    linked_session(home, sim).close()
    sim.set_variant("unrecognized_main")
    config = session_config(sim.url, selectors=(("main", "div[data-panel='chats']"),))
    session = WhatsAppSession(home, config, events=EventLog(home.events_file, source="t"))
    outbox = Outbox.open(home)
    try:
        drive(session, lambda: session.state is WhatsAppState.READY, timeout=30, what="ready through the override")
        assert session.status()["fallback_roles"] == {}
        assert session.page is not None and session.page.role_report()["main"] == "override"
        sender = unpaced_sender(home, outbox, session)
        ident = outbox.enqueue(PHONE, "back again")[0]["id"]
        drive(session, lambda: _state(outbox, ident) == "sent", timeout=30, what="sent", extra=lambda: sender(None))
    finally:
        session.close()
        outbox.close()
    assert [d["text"] for d in sim.delivered()] == ["back again"]
    assert not events(home, "page_unrecognized")


def test_selector_the_browser_refuses_stops_the_worker_with_78(home: Home, sim: Simulator) -> None:
    """An override that passes the quick check but is no CSS to Chromium (an unknown pseudo-class): the worker
    exits 78 (no restart) naming the key, and leaves no browser behind."""
    from continuity.worker.browser import find_profile_holders

    home.config_file.write_text(
        f'[whatsapp]\nurl = "{sim.url}"\nheadless = true\n[whatsapp.selectors]\ncompose = "div:no-such-thing"\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "continuity.worker"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CONTINUITY_HOME": str(home.root)},
    )
    assert result.returncode == 78, result.stderr[-2000:]
    assert "whatsapp.selectors.compose = 'div:no-such-thing' is not a valid CSS selector" in result.stderr
    assert not find_profile_holders(home.profile_dir)


def test_unfindable_compose_box_degrades_health_and_an_override_fixes_it(home: Home, sim: Simulator) -> None:
    """The composer moved out of the footer and lost its role (no selector of the table finds it): nothing is
    delivered, nothing is lost, health turns degraded naming the step and role within 3 minutes of the first
    failed send (send_stalled, which alerts); a [whatsapp.selectors] compose override sends each message once."""
    from continuity.watchdog.health import assess

    sim.set_variant("compose_moved")
    session = linked_session(home, sim)
    outbox = Outbox.open(home)
    sender = unpaced_sender(home, outbox, session)
    ids = [outbox.enqueue(PHONE, f"drift {k}")[0]["id"] for k in range(3)]
    try:
        drive(
            session, lambda: events(home, "send_stalled"), timeout=180, what="send_stalled", extra=lambda: sender(None)
        )
        beat = {"whatsapp": session.status(), "sending": sender.status()}
        verdict = assess(watchdog_state="running", heartbeat=beat, heartbeat_age_s=1.0, heartbeat_timeout_s=120)
    finally:
        session.close()
    first_failure = events(home, "message_retry")[0]
    stalled = events(home, "send_stalled")[0]
    assert stalled["ts"] - first_failure["ts"] <= 180
    assert stalled["role"] == "compose" and "compose box not found (role compose)" in stalled["problem"]
    assert verdict["session_health"] == "degraded"
    assert "compose box not found (role compose)" in verdict["recommendations"]["fix_sending"]
    assert sim.delivered() == [] and {_state(outbox, i) for i in ids} == {"pending"}

    override = (("compose", "#main section.composer-v4 div[contenteditable='true']"),)
    fixed = WhatsAppSession(
        home, session_config(sim.url, selectors=override), events=EventLog(home.events_file, source="t")
    )
    sender = OutboxSender(outbox, fixed, min_interval_s=0.0, events=EventLog(home.events_file, source="t"))
    for ident in ids:
        outbox.note(ident, retry_at=None)  # do not wait out the retry delays in a test
    try:
        drive(
            fixed,
            lambda: all(_state(outbox, i) == "sent" for i in ids),
            timeout=90,
            what="sent after the override",
            extra=lambda: sender(None),
        )
    finally:
        fixed.close()
        outbox.close()
    assert sorted(d["text"] for d in sim.delivered()) == ["drift 0", "drift 1", "drift 2"]


def test_web_version_is_reported_and_a_new_build_is_an_event(home: Home, sim: Simulator) -> None:
    """window.Debug.VERSION shows in the status; a new build is `whatsapp_web_version_changed` once (also across a
    new session on the same home, which then says nothing new)."""
    session = linked_session(home, sim)
    try:
        assert session.status()["web_version"] == "2.3000.1017000000"
        sim.set_mode("web_version", version="2.3000.1018000000")
        assert session.page is not None
        session.page.reload()
        drive(session, lambda: session.status()["web_version"] == "2.3000.1018000000", timeout=30, what="new build")
    finally:
        session.close()
    again = WhatsAppSession(home, session_config(sim.url), events=EventLog(home.events_file, source="t"))
    try:
        drive(again, lambda: again.status()["web_version"] == "2.3000.1018000000", timeout=30, what="seen again")
    finally:
        again.close()
    changed = events(home, "whatsapp_web_version_changed")
    assert [(e["old"], e["new"]) for e in changed] == [("2.3000.1017000000", "2.3000.1018000000")]


def test_unknown_popup_is_reported_and_never_clicked(home: Home, sim: Simulator) -> None:
    """A popup that is not the conflict one ("A new version...", Later / Reload): reported once with its button
    labels, health degraded, and left alone (a click on either button would close it)."""
    from continuity.watchdog.health import assess

    session = linked_session(home, sim)
    try:
        sim.set_mode("update_popup")
        drive(session, lambda: events(home, "popup_unknown"), timeout=30, what="popup_unknown")
        until = time.monotonic() + 3
        drive(session, lambda: time.monotonic() > until, timeout=10, what="a few more probes")
        status = session.status()
    finally:
        session.close()
    assert "update_popup" in sim.state()["modes"], "the unknown popup was clicked"
    reported = events(home, "popup_unknown")
    assert len(reported) == 1 and reported[0]["buttons"] == ["Later", "Reload"]
    assert status["unknown_popup"] == ["Later", "Reload"] and status["state"] == "ready"
    verdict = assess(
        watchdog_state="running", heartbeat={"whatsapp": status}, heartbeat_age_s=1, heartbeat_timeout_s=120
    )
    assert verdict["session_health"] == "degraded"
    assert not events(home, "conflict_taken_over")


def test_inspect_names_the_selector_each_role_matched(home: Home, sim: Simulator) -> None:
    """The inspect action on the live page: primary, fallback N (with the selector), none; and the version."""
    sim.set_variant("side_ids_renamed")
    session = linked_session(home, sim)
    try:
        ok, message, details = session.action_handlers()["inspect"]({})
    finally:
        session.close()
    assert ok and details["state"] == "ready" and details["web_version"] == "2.3000.1017000000"
    roles = details["roles"]
    assert roles["main"] == "fallback 2 (div[role='grid'][aria-label])" and roles["popup"] == "none"
    assert roles["qr"] == "none" and roles["loading"] == "none" and "qr" in message
