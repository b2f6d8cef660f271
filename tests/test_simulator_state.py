"""The simulator's account model on an injected clock: QR rotation, pairing, logout, sending, modes."""

from __future__ import annotations

import threading

import pytest

from continuity.devtools.simulator import NoQrShown
from continuity.devtools.simulator._state import CLIENT_FRESH_S, SimState


class FakeClock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    """A hand-driven clock."""
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> SimState:
    """An account whose QR rotates every 20 s, idle after 2 rotations."""
    return SimState(qr_rotate_s=20.0, qr_max_rotations=2, clock=clock)


def paired_token(state: SimState) -> str:
    """Pair page 'p1' and return the token its next poll receives."""
    state.page("p1", None)
    state.scan()
    result = state.page("p1", None)
    assert result["status"] == "syncing"
    return str(result["token"])


def test_qr_rotates_on_time_then_idles_and_reload_restarts(state: SimState, clock: FakeClock) -> None:
    """A QR lasts qr_rotate_s; after qr_max_rotations rotations the page idles; reload gives a fresh budget."""
    first = state.page("p1", None)
    assert first["status"] == "qr" and first["qr"].startswith("2@") and first["qr_expires_in_s"] == 20.0
    clock.now += 19.9
    assert state.page("p1", None)["qr"] == first["qr"]
    clock.now += 0.1
    second = state.page("p1", None)["qr"]
    assert second != first["qr"]
    clock.now += 20
    third = state.page("p1", None)["qr"]
    assert third not in (first["qr"], second)
    clock.now += 20
    assert state.page("p1", None)["status"] == "idle"
    assert state.state()["qr"] is None and state.state()["qr_idle"] is True
    with pytest.raises(NoQrShown):
        state.scan()
    fresh = state.reload_qr("p1")
    assert fresh["status"] == "qr" and fresh["qr"] not in (first["qr"], second, third)
    assert state.state()["qr_rotations"] == 0


def test_rotation_catches_up_after_a_long_gap(state: SimState, clock: FakeClock) -> None:
    """A page that polls rarely still sees the idle state once the whole budget has passed."""
    state.page("p1", None)
    clock.now += 61
    assert state.page("p1", None)["status"] == "idle"


def test_scan_pairs_the_freshest_page_showing_a_qr(state: SimState, clock: FakeClock) -> None:
    """scan() picks the page that polled last; a page silent for CLIENT_FRESH_S no longer counts."""
    state.page("old", None)
    clock.now += 1
    state.page("new", None)
    assert state.scan()["client"] == "new"
    assert state.page("new", None)["status"] == "syncing"
    clock.now += CLIENT_FRESH_S + 1
    with pytest.raises(NoQrShown, match="no page currently shows a QR code"):
        state.scan()


def test_scan_by_payload_only_matches_the_payload_shown(state: SimState) -> None:
    """scan(payload) pairs the page showing exactly that payload and refuses any other."""
    shown = state.page("p1", None)["qr"]
    with pytest.raises(NoQrShown, match="this QR payload"):
        state.scan("2@not-shown")
    assert state.scan(shown)["client"] == "p1"


def test_token_logs_a_new_page_in_until_the_phone_logs_out(state: SimState) -> None:
    """A stored token makes a new page 'ready'; after logout that page gets logged_out and new pages a QR."""
    token = paired_token(state)
    assert state.page("p2", token)["status"] == "ready"
    assert state.page("p3", "forged-token")["status"] == "qr"
    assert state.logout() == 1
    assert state.page("p2", token)["status"] == "logged_out"
    assert state.page("p4", token)["status"] == "qr"
    assert state.state()["logged_in"] is False


def test_send_records_once_and_respects_modes(state: SimState) -> None:
    """A message is delivered once however often it is re-sent; stuck/offline keep it pending; send_fail fails it."""
    token = paired_token(state)
    assert state.send(token, "15551234567", "hi", "3EB0AAAA0001") == {"status": "sent"}
    assert state.send(token, "15551234567", "hi", "3EB0AAAA0001") == {"status": "sent"}
    assert [d["text"] for d in state.delivered()] == ["hi"]
    for mode in ("stuck_clock", "offline", "phone_offline"):
        state.set_mode(mode)
        assert state.send(token, "15551234567", "later", "3EB0AAAA0002") == {"status": "pending"}
        state.set_mode(mode, on=False)
    assert state.page("p1", token)["pending"] == [{"id": "3EB0AAAA0002", "phone": "15551234567", "text": "later"}]
    assert state.send(token, "15551234567", "later", "3EB0AAAA0002") == {"status": "sent"}
    assert state.page("p1", token)["pending"] == []
    state.set_mode("send_fail")
    assert state.send(token, "15551234567", "doomed", "3EB0AAAA0003") == {"status": "failed"}
    state.set_mode("send_fail", on=False)
    assert state.send(token, "15551234567", "doomed", "3EB0AAAA0003") == {"status": "failed"}
    assert [d["text"] for d in state.delivered()] == ["hi", "later"]
    assert [m["status"] for m in state.history("15551234567")] == ["sent", "sent", "failed"]
    assert state.send("bad-token", "15551234567", "x", "3EB0AAAA0004") == {"status": "logged_out"}
    assert state.send(token, "12", "x", "3EB0AAAA0005") == {"status": "invalid"}


@pytest.mark.parametrize(
    ("msg_id", "text"), [("short", "x"), ("3eb0lowercase", "x"), ("3EB0AAAA0001", ""), ("3EB0AAAA0001", "x" * 70000)]
)
def test_send_rejects_bad_ids_and_texts(state: SimState, msg_id: str, text: str) -> None:
    """A malformed message id, an empty or oversized text is a ValueError and records nothing."""
    token = paired_token(state)
    with pytest.raises(ValueError, match="send needs id"):
        state.send(token, "15551234567", text, msg_id)
    assert state.history("15551234567") == [] and state.delivered() == []


def test_invalid_numbers_mode_and_phone_shapes(state: SimState) -> None:
    """8-15 digits are valid; invalid_numbers lists numbers that are not on WhatsApp."""
    assert state.open_chat("1234567")["valid"] is False
    assert state.open_chat("1234567890123456")["valid"] is False
    assert state.open_chat("+15551234567")["valid"] is False
    assert state.open_chat("15551234567") == {"valid": True, "messages": [], "incoming": []}
    state.set_mode("invalid_numbers", numbers="15551234567, 15550000000")
    assert state.open_chat("15551234567")["valid"] is False
    assert state.state()["modes"]["invalid_numbers"] == {"numbers": ["15550000000", "15551234567"]}


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("nope", {}, "unknown mode 'nope'"),
        ("conflict", {"x": 1}, "takes no parameters"),
        ("slow", {"seconds": 0}, "seconds must be a number"),
        ("slow", {"seconds": "2"}, "seconds must be a number"),
        ("slow", {"seconds": True}, "seconds must be a number"),
        ("slow", {"delay": 2}, "takes only 'seconds'"),
        ("locale", {"lang": "fr"}, "lang must be one of de, pt"),
        ("invalid_numbers", {}, "needs numbers"),
        ("invalid_numbers", {"numbers": ["12a"]}, "digit strings"),
    ],
)
def test_bad_modes_are_refused_and_change_nothing(state: SimState, name: str, params: dict, message: str) -> None:
    """Unknown modes and bad params raise ValueError naming the problem; the active modes stay as they were."""
    state.set_mode("offline")
    with pytest.raises(ValueError, match=message):
        state.set_mode(name, **params)
    assert state.state()["modes"] == {"offline": {}}


def test_switching_off_needs_no_params_and_rejects_unknown_names(state: SimState) -> None:
    """Turning a parameterised mode off works without params; an unknown name or params when off is refused."""
    state.set_mode("slow", seconds=1.5)
    assert state.mode("slow") == {"seconds": 1.5}
    state.set_mode("slow", on=False)
    assert state.mode("slow") is None
    with pytest.raises(ValueError, match="unknown mode"):
        state.set_mode("nope", on=False)
    with pytest.raises(ValueError, match="takes no parameters"):
        state.set_mode("slow", on=False, seconds=1)


def test_constructor_rejects_bad_timing() -> None:
    """qr_rotate_s must be positive and qr_max_rotations non-negative."""
    with pytest.raises(ValueError, match="qr_rotate_s"):
        SimState(qr_rotate_s=0, qr_max_rotations=1)
    with pytest.raises(ValueError, match="qr_max_rotations"):
        SimState(qr_rotate_s=1, qr_max_rotations=-1)


def test_concurrent_resends_deliver_once(state: SimState) -> None:
    """Eight threads re-sending the same message id at once record exactly one delivery."""
    token = paired_token(state)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def resend() -> None:
        barrier.wait()
        results.append(state.send(token, "15551234567", "race", "3EB0RACE0001")["status"])

    threads = [threading.Thread(target=resend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["sent"] * 8
    assert [d["id"] for d in state.delivered()] == ["3EB0RACE0001"]


def test_variant_is_kept_reported_and_validated(clock: FakeClock) -> None:
    """The variant starts as given, set_variant changes it and state() reports it; unknown names are refused."""
    with pytest.raises(ValueError, match="unknown variant 'nope'; known variants: default, compose_tab_11"):
        SimState(qr_rotate_s=20.0, qr_max_rotations=2, variant="nope")
    state = SimState(qr_rotate_s=20.0, qr_max_rotations=2, clock=clock, variant="ticks_renamed")
    assert state.variant() == "ticks_renamed" and state.state()["variant"] == "ticks_renamed"
    assert state.set_variant("unrecognized_main") == "unrecognized_main"
    assert state.state()["variant"] == "unrecognized_main"
    with pytest.raises(ValueError, match="unknown variant 'Default'"):
        state.set_variant("Default")
    assert state.variant() == "unrecognized_main"
