"""Linking by phone-number code in real Chromium against the simulator: no QR is scanned, the code is shown and
refreshed, a wrong number is a clear error, and `continuity whatsapp link --phone` prints the code and ends ready."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import EventLog, Home
from continuity.worker.session import WhatsAppSession, WhatsAppState
from tests._session_harness import WORKER, drive, session_config, write_worker_config

pytestmark = pytest.mark.browser


def _qr_session(home: Home, sim: Simulator, closing: list[object]) -> WhatsAppSession:
    session = WhatsAppSession(home, session_config(sim.url), events=EventLog(home.events_file, source="t"))
    closing.append(session)
    drive(session, lambda: session.state is WhatsAppState.QR, timeout=30, what="QR")
    return session


def _link(session: WhatsAppSession, phone: Any) -> tuple[bool, str, dict[str, Any]]:
    return session.action_handlers()["link-phone"]({"phone": phone})


def test_linking_by_code_needs_no_qr_and_shows_each_refresh(home: Home, sim: Simulator, closing: list[object]) -> None:
    """The code the page shows is the heartbeat's pairing_code, a refreshed one replaces it, and entering it on the
    phone links the session (ready, durable) with no QR scanned."""
    sim.set_code_rotate(3.0)
    session = _qr_session(home, sim, closing)
    phone = sim.state()["account"]["phone"]
    ok, message, _ = _link(session, phone)
    assert ok, message
    first = drive(session, lambda: session.status()["pairing_code"], timeout=30, what="the pairing code")
    assert first == sim.link_code() and len(first.replace("-", "")) == 8
    second = drive(
        session, lambda: (session.status()["pairing_code"] or first) != first and session.status()["pairing_code"],
        timeout=30, what="a refreshed code",
    )  # fmt: skip
    assert second == sim.link_code()
    sim.enter_code(second)
    drive(session, lambda: session.state is WhatsAppState.READY and session.was_linked(), timeout=60, what="ready")
    status = session.status()
    assert status["pairing_state"] == "linked" and status["pairing_code"] is None
    assert sim.state()["counts"]["scans"] == 0 and sim.state()["logged_in"]


def test_wrong_number_is_a_clear_error_and_the_qr_comes_back(home: Home, sim: Simulator, closing: list[object]) -> None:
    """A number the page refuses ends the flow with the page's reason; the QR shows again; letters are refused
    before anything is typed."""
    session = _qr_session(home, sim, closing)
    ok, message, _ = _link(session, "+1 555-abc")
    assert not ok and "not a phone number" in message
    sim.set_mode("invalid_numbers", numbers=["19999999999"])
    assert _link(session, "19999999999")[0]
    error = drive(session, lambda: session.status()["pairing_error"], timeout=30, what="the error")
    assert "did not accept the number +19999999999" in error and "isn't valid" in error
    assert session.status()["pairing_code"] is None
    drive(session, lambda: session.qr_payload and sim.state()["qr"], timeout=30, what="the QR again")


def test_link_command_prints_the_code_and_ends_when_ready(home: Home, sim: Simulator) -> None:
    """`continuity whatsapp link --phone` against a real worker: a number WhatsApp refuses exits 1 with its reason;
    then the right number prints the page's code, the phone enters it, the command exits 0 saying linked, and no QR
    was ever scanned."""
    write_worker_config(home, sim.url)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(home.root)], start_new_session=True)
    try:
        sim.wait_qr(timeout_s=60)
        phone = sim.state()["account"]["phone"]
        sim.set_mode("invalid_numbers", numbers=["19999999999"])
        link = [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "whatsapp", "link", "--phone"]
        wrong = subprocess.run([*link, "1 999 999 9999"], capture_output=True, text=True, timeout=90)
        assert wrong.returncode == 1 and "did not accept the number +19999999999" in wrong.stderr, wrong.stderr
        sim.wait_qr(timeout_s=30)  # the QR is back for the next try
        cli = subprocess.Popen(
            [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "whatsapp", "link",
             "--phone", phone, "--wait", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert cli.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and lines[-1:] != [""]:
            lines.append(cli.stdout.readline())  # "" at EOF: the command ended without a code
            if lines[-1].startswith("code: "):
                break
        assert lines[-1].startswith("code: "), "".join(lines) + (cli.stderr.read() if cli.stderr else "")
        code = lines[-1].split()[1]
        assert code == sim.link_code(), lines
        sim.enter_code(code)
        out, err = cli.communicate(timeout=90)
        assert cli.returncode == 0, "".join(lines) + out + err
        assert "linked: WhatsApp is ready" in out
        assert sim.state()["counts"]["scans"] == 0
    finally:
        os.killpg(worker.pid, 9)
        worker.wait()
