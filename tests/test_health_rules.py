"""Health rules, and the recovery ladder and session classification, as pure logic in simulated time."""

from __future__ import annotations

import random
from typing import Any

import pytest

from continuity.watchdog.health import assess
from continuity.watchdog.instance import SlidingWindow
from continuity.worker.session.rules import RecoveryLadder, classify, is_browser_dead, quality
from continuity.worker.session.states import WhatsAppState


def _health(wa: dict[str, Any] | None = None, *, watchdog: str | None = "running", age: float = 1.0) -> dict[str, Any]:
    return assess(
        watchdog_state=watchdog,
        heartbeat={"whatsapp": wa or {"state": "ready"}},
        heartbeat_age_s=age,
        heartbeat_timeout_s=120,
    )


def test_ready_session_is_healthy() -> None:
    """Watchdog running, fresh heartbeat, WhatsApp ready: healthy with no recommendation."""
    result = _health({"state": "ready", "recent_reconnects": 0, "probe_ms": 40})
    assert result["session_health"] == "healthy" and not any(result["recommendations"].values())


@pytest.mark.parametrize(
    ("wa", "level", "recommendation"),
    [
        ({"state": "logged_out"}, "critical", "needs_qr_scan"),
        ({"state": "browser_dead", "restart_failures": 3}, "critical", "should_clear_session"),
        ({"state": "ready", "profile_mb": 612.0, "session_max_mb": 500.0}, "critical", "should_clear_session"),
        ({"state": "offline"}, "degraded", "should_reconnect"),
        ({"state": "qr"}, "degraded", "needs_qr_scan"),
        ({"state": "ready", "recent_reconnects": 4}, "degraded", "should_reconnect"),
        ({"state": "ready", "probe_ms": 3500.0}, "degraded", None),
    ],
)
def test_rules_give_level_and_recommendation(wa: dict[str, Any], level: str, recommendation: str | None) -> None:
    """Each documented rule yields its level, a reason, and its recommendation."""
    result = _health(wa)
    assert result["session_health"] == level and result["reasons"]
    if recommendation:
        assert result["recommendations"][recommendation] is True


def _sending(**section: Any) -> dict[str, Any]:
    heartbeat = {"whatsapp": {"state": "ready"}, "sending": section}
    return assess(watchdog_state="running", heartbeat=heartbeat, heartbeat_age_s=1.0, heartbeat_timeout_s=120)


def test_stalled_sending_is_degraded_then_critical_naming_the_step_and_role() -> None:
    """Ready is not healthy when nothing goes out: degraded with the failing step and role, critical after 15 min."""
    problem = "compose box not found (role compose) at step 'type the message'"
    stalled = {"stalled": True, "pending": 4, "failing_role": "compose", "problem": problem}
    first = _sending(**stalled, failing_for_s=40.0)
    assert first["session_health"] == "degraded"
    assert any(problem in reason for reason in first["reasons"])
    assert first["recommendations"]["fix_sending"].startswith(problem) and "selectors" not in problem
    assert "WhatsApp changed its page" in first["recommendations"]["fix_sending"]
    assert _sending(**stalled, failing_for_s=900.0)["session_health"] == "critical"
    recovering = _sending(stalled=False, pending=4, failing_for_s=30.0, consecutive_failures=1)
    assert recovering["session_health"] == "healthy" and recovering["recommendations"]["fix_sending"] is None


def test_page_drift_verdicts() -> None:
    """Unrecognized page: critical with check_page; unknown popup: degraded; a fallback role: only a warning."""
    unrecognized = _health({"state": "unrecognized", "web_version": "2.3000.1"})
    assert unrecognized["session_health"] == "critical" and "2.3000.1" in unrecognized["recommendations"]["check_page"]
    assert _health({"state": "ready", "unknown_popup": ["Later", "Update"]})["session_health"] == "degraded"
    fallback = _health({"state": "ready", "fallback_roles": {"compose": "fallback 1 (footer div[...])"}})
    assert fallback["session_health"] == "healthy" and fallback["warnings"] == [
        "role compose works only through fallback 1 (footer div[...])"
    ]


def test_stale_heartbeat_and_watchdog_states() -> None:
    """An old heartbeat is degraded; a spent budget or a missing watchdog is critical."""
    assert _health(age=500)["session_health"] == "degraded"
    assert _health(watchdog="budget_spent")["session_health"] == "critical"
    assert (
        assess(watchdog_state=None, heartbeat=None, heartbeat_age_s=None, heartbeat_timeout_s=120)["session_health"]
        == "critical"
    )


def test_reconnects_leave_the_five_minute_window() -> None:
    """A reconnect counts for 5 minutes of (simulated) time, then no longer degrades health."""
    now = [0.0]
    counter = SlidingWindow(window_s=300)  # the session's recent_reconnects
    counter.add(now[0])
    now[0] = 299.0
    assert _health({"state": "ready", "recent_reconnects": counter.count(now[0])})["session_health"] == "degraded"
    now[0] = 300.5
    assert _health({"state": "ready", "recent_reconnects": counter.count(now[0])})["session_health"] == "healthy"


def test_ladder_climbs_backs_off_and_resets_when_stable() -> None:
    """recheck -> reload -> reopen -> restart_browser, waits growing to the cap; stable time resets it."""
    ladder = RecoveryLadder(first_s=1, cap_s=8, stable_s=60, rng=random.Random(1))
    steps, waits = zip(*(ladder.on_failure(now=float(i)) for i in range(6)), strict=True)
    assert steps == ("recheck", "reload", "reopen", "restart_browser", "restart_browser", "restart_browser")
    assert all(0.5 <= w <= 1 for w in waits[:1]) and all(4 <= w <= 8 for w in waits[4:])
    assert not ladder.on_ok(now=100.0)
    assert ladder.on_ok(now=160.0) and ladder.failures == 0


def test_dead_browser_restarts_at_once() -> None:
    """A dead browser skips the ladder: restart now, the first time without waiting."""
    ladder = RecoveryLadder(first_s=1, cap_s=60)
    assert ladder.on_failure(now=0.0, dead=True) == ("restart_browser", 0.0)
    assert is_browser_dead(RuntimeError("Message: invalid session id"))
    assert not is_browser_dead(RuntimeError("element not interactable"))


@pytest.mark.parametrize(
    ("markers", "was_linked", "state"),
    [
        ({"main": True}, True, WhatsAppState.READY),
        ({"main": True, "offline": True}, True, WhatsAppState.OFFLINE),
        ({"qr": "2@x"}, False, WhatsAppState.QR),
        ({"qr": "2@x"}, True, WhatsAppState.LOGGED_OUT),
        ({"url": "http://x/?post_logout=1"}, False, WhatsAppState.LOGGED_OUT),
        ({"main": True, "popup_buttons": 2, "popup_labels": ["Abmelden", "Hier verwenden"]}, True,
         WhatsAppState.CONFLICT),
        ({"main": True, "popup_buttons": 2, "popup_text": "WhatsApp is open on another computer"}, True,
         WhatsAppState.CONFLICT),
        ({"main": True, "popup_buttons": 2, "popup_labels": ["Later", "Update now"]}, True, WhatsAppState.READY),
        ({"loading": True, "ready_state": "complete"}, True, WhatsAppState.LOADING),
        ({"ready_state": "interactive"}, True, WhatsAppState.LOADING),
        ({"ready_state": "complete"}, True, WhatsAppState.UNRECOGNIZED),
        ({"ready_state": "complete", "chat_open": True}, True, WhatsAppState.UNRECOGNIZED),
        ({}, True, WhatsAppState.LOADING),
    ],
)  # fmt: skip
def test_classify_markers(markers: dict[str, Any], was_linked: bool, state: WhatsAppState) -> None:
    """Page markers map to states without relying on translated text; a two-button popup that is not the
    conflict is no conflict (it is never clicked); a loaded page with no known screen is unrecognized."""
    assert classify(markers, was_linked=was_linked) is state


def test_quality_from_probe_latency() -> None:
    """Probe round trips map to excellent / good / poor; anything but ready is offline."""
    assert [quality(WhatsAppState.READY, s) for s in (0.05, 0.5, 3.0)] == ["excellent", "good", "poor"]
    assert quality(WhatsAppState.OFFLINE, 0.01) == "offline"
