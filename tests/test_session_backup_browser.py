"""Session backups in real headless Chromium against the simulator: pair -> backup, lost profile -> restored."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import EventLog, Home
from continuity.worker.session import WhatsAppSession, WhatsAppState
from continuity.worker.session.crypto import KEY_ENV
from tests._session_harness import drive, linked_session, session_config
from tests._watchdog_harness import events

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    secret = "correct horse battery staple 42"
    monkeypatch.setenv(KEY_ENV, secret)
    return secret


def _backups(home: Home) -> list[Path]:
    return sorted(home.session_backups_dir.glob("*.cbk"), reverse=True)


def _forms(token: str) -> list[bytes]:
    """The token as Chromium may store it: one byte a char (LevelDB, V8) or UTF-16."""
    return [token.encode("ascii"), token.encode("utf-16-le")]


def _tree_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _restart_lost_profile(home: Home, sim: Simulator, closing: list[Any]) -> WhatsAppSession:
    """The worker stops, the profile is deleted, a new session (a new worker) starts on the same home."""
    closing[-1].close()
    shutil.rmtree(home.profile_dir)
    session = WhatsAppSession(home, session_config(sim.url), events=EventLog(home.events_file, source="t2"))
    closing.append(session)
    return session


def test_pair_backs_up_and_a_deleted_profile_comes_back_without_a_scan(
    home: Home, sim: Simulator, closing: list[Any]
) -> None:
    """Pairing writes an encrypted 0600 backup holding no login value in the clear; a deleted profile is restored
    from it and WhatsApp is ready again with no new scan."""
    closing.append(linked_session(home, sim))
    [backup] = _backups(home)
    assert [e["reason"] for e in events(home, "session_backup_created")] == ["paired"]
    assert backup.stat().st_mode & 0o777 == 0o600 and backup.parent.stat().st_mode & 0o777 == 0o700
    token = sim.state()["devices"][0]["token"]
    profile_bytes = _tree_bytes(home.profile_dir)
    assert any(form in profile_bytes for form in _forms(token)), "the profile should hold the token (test premise)"
    assert not any(form in backup.read_bytes() for form in _forms(token))
    scans = sim.state()["counts"]["scans"]

    session = _restart_lost_profile(home, sim, closing)
    drive(session, lambda: session.state is WhatsAppState.READY, timeout=60, what="ready from the backup")
    assert sim.state()["counts"]["scans"] == scans
    [restored] = events(home, "session_restored")
    assert restored["file"] == str(backup)
    assert not events(home, "qr_needed")[1:], "no second QR was asked for"
    assert not events(home, "logged_out")


def test_a_tampered_newest_backup_is_refused_and_the_next_one_used(
    home: Home, sim: Simulator, closing: list[Any]
) -> None:
    """One flipped byte in the newest backup: it is refused (event naming it) and the older backup brings the
    login back; asked for by hand (restore-session), the tampered file is refused and nothing is touched."""
    first = linked_session(home, sim)
    closing.append(first)
    ok, message, _ = first.action_handlers()["backup-session"]({})
    assert ok, message
    newest, older = _backups(home)
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x01
    newest.write_bytes(bytes(data))
    scans = sim.state()["counts"]["scans"]

    session = _restart_lost_profile(home, sim, closing)
    drive(session, lambda: session.state is WhatsAppState.READY, timeout=60, what="ready from the older backup")
    assert sim.state()["counts"]["scans"] == scans
    [rejected] = events(home, "session_backup_rejected")
    assert rejected["file"] == str(newest) and "authentication failed" in rejected["reason"]
    assert events(home, "session_restored")[0]["file"] == str(older)
    ok, message, _ = session.action_handlers()["restore-session"]({"file": str(newest)})
    assert not ok and str(newest) in message and "authentication failed" in message
    assert session.state is WhatsAppState.READY, "a refused restore leaves the running browser alone"


def test_a_wrong_passphrase_is_refused_and_a_qr_is_asked_for(
    home: Home, sim: Simulator, closing: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With another passphrase the backup is refused with a clear error, the session asks for a QR, no crash."""
    closing.append(linked_session(home, sim))
    [backup] = _backups(home)
    monkeypatch.setenv(KEY_ENV, "not the passphrase it was made with")
    session = _restart_lost_profile(home, sim, closing)
    drive(session, lambda: session.state is WhatsAppState.LOGGED_OUT, timeout=60, what="logged_out with a QR")
    drive(session, lambda: session.qr_payload is not None, timeout=30, what="a QR payload")
    [rejected] = events(home, "session_backup_rejected")
    assert rejected["file"] == str(backup) and "wrong passphrase" in rejected["reason"]
    assert events(home, "session_restore_failed")
    assert not events(home, "session_restore_applied")
    assert os.environ[KEY_ENV] not in home.events_file.read_text()


def test_a_logout_from_the_phone_does_not_restore(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """The phone logs the device out (?post_logout=1): no backup is put back, the session asks for a QR."""
    session = linked_session(home, sim)
    closing.append(session)
    sim.logout()
    drive(session, lambda: session.state is WhatsAppState.LOGGED_OUT, timeout=30, what="logged_out")
    assert events(home, "session_restore_skipped")
    assert not events(home, "session_login_lost") and not events(home, "session_restore_applied")
