"""The WhatsApp session in real headless Chromium against the simulator: states, recovery, QR, takeover."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import EventLog, Home
from continuity.worker.session import WhatsAppSession, WhatsAppState
from tests._session_harness import drive, linked_session, session_config
from tests._watchdog_harness import events

pytestmark = pytest.mark.browser


def test_first_run_qr_scan_ready_and_durable(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """A fresh profile shows a QR (written as qr.png), a scan makes it ready, and the login is made durable."""
    session = WhatsAppSession(home, session_config(sim.url), events=EventLog(home.events_file, source="t"))
    closing.append(session)
    drive(session, lambda: session.state is WhatsAppState.QR, timeout=30, what="QR")
    assert session.qr_payload == sim.state()["qr"]
    assert (home.session_dir / "qr.png").read_bytes().startswith(b"\x89PNG")
    assert [e["event"] for e in events(home, "qr_needed")] == ["qr_needed"]
    sim.scan()
    drive(session, lambda: session.state is WhatsAppState.READY and session.was_linked(), timeout=30, what="ready")
    assert events(home, "login_durable")
    assert not (home.session_dir / "qr.png").exists()
    assert session.status()["connected"] is True and session.status()["quality"] in ("excellent", "good", "poor")


def test_killed_chromium_comes_back_logged_in(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """kill -9 of Chromium: the session restarts the browser and is ready again from the profile, no new QR."""
    session = linked_session(home, sim)
    closing.append(session)
    scans = sim.state()["counts"]["scans"]
    os.kill(session.browser.browser_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    drive(session, lambda: session.state is WhatsAppState.BROWSER_DEAD, timeout=10, what="browser_dead")
    drive(session, lambda: session.state is WhatsAppState.READY, timeout=30, what="ready again")
    assert time.monotonic() - killed_at < 30
    assert session.browser_restarts == 1
    assert sim.state()["counts"]["scans"] == scans
    assert len(events(home, "qr_needed")) == 1


def test_frozen_page_is_recovered(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """A page stuck in a JS busy loop makes probes time out; the ladder restarts the browser and it is ready."""
    session = linked_session(home, sim)
    closing.append(session)
    sim.set_mode("frozen")
    drive(session, lambda: session.state is WhatsAppState.CRASHED, timeout=30, what="crashed")
    sim.set_mode("frozen", on=False)
    drive(session, lambda: session.state is WhatsAppState.READY, timeout=60, what="ready after freeze")
    steps = [e["step"] for e in events(home, "whatsapp_reconnecting")]
    assert "restart_browser" in steps or "reload" in steps


def test_conflict_is_taken_over(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """'Open on another computer' is answered with 'Use here' and the session is ready again."""
    session = linked_session(home, sim)
    closing.append(session)
    sim.set_mode("conflict")
    drive(session, lambda: events(home, "conflict_taken_over"), timeout=20, what="takeover")
    drive(session, lambda: session.state is WhatsAppState.READY, timeout=20, what="ready after takeover")
    assert "conflict" not in sim.state()["modes"]


def test_conflict_without_takeover_stays_in_conflict(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """With takeover_on_conflict = false the session reports conflict and clicks nothing."""
    session = linked_session(home, sim, takeover_on_conflict=False)
    closing.append(session)
    sim.set_mode("conflict")
    drive(session, lambda: session.state is WhatsAppState.CONFLICT, timeout=20, what="conflict")
    time.sleep(1.5)
    session.turn()
    assert "conflict" in sim.state()["modes"] and not events(home, "conflict_taken_over")


def test_logout_shows_qr_without_restart_loop(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """Logged out from the phone: state logged_out, a new QR is written, the browser is not restarted."""
    session = linked_session(home, sim)
    closing.append(session)
    restarts = session.browser_restarts
    sim.logout()
    drive(
        session,
        lambda: session.state is WhatsAppState.LOGGED_OUT and session.qr_payload,
        timeout=30,
        what="logged out with QR",
    )
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        session.turn()
        time.sleep(0.1)
    assert session.state is WhatsAppState.LOGGED_OUT and session.browser_restarts == restarts
    assert (home.session_dir / "qr.png").exists() and events(home, "logged_out")
    assert session.status()["needs_qr_scan"] is True


def test_translated_page_is_still_ready(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """With the page in German (aria-labels and texts translated) QR, scan and ready still work."""
    sim.set_mode("locale", lang="de")
    session = linked_session(home, sim)
    closing.append(session)
    assert session.state is WhatsAppState.READY
