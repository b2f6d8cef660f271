"""A heartbeat whose known fields have the wrong types (any command may write it): those fields are dropped and
named, never passed on to status, health or the API as they are."""

from __future__ import annotations

import json

from continuity.watchdog.health import assess
from continuity.watchdog.heartbeat import clean_heartbeat
from continuity.watchdog.home import Home
from tests._watchdog_harness import wait_for
from tests.test_api import ApiWatchdog, api_config, free_port, get_json

WRONG = {
    "whatsapp": {"state": 5, "restart_failures": "many", "probe_ms": "slow", "connected": "yes", "quality": "good"},
    "sending": {"stalled": "no", "pending": 2},
    "tokens": [1, 2],
    "rss_bytes": True,
}


def test_wrong_types_are_dropped_and_named() -> None:
    """Each known field of a wrong type goes (a bool is no count); the rest, and unknown fields, stay."""
    cleaned = clean_heartbeat({"pid": 7, "custom": {"x": 1}, **WRONG})
    assert cleaned["whatsapp"] == {"quality": "good"} and cleaned["sending"] == {"pending": 2}
    assert "tokens" not in cleaned and "rss_bytes" not in cleaned and cleaned["custom"] == {"x": 1}
    assert sorted(cleaned["invalid_fields"]) == sorted(
        ["tokens", "rss_bytes", "whatsapp.state", "whatsapp.restart_failures", "whatsapp.probe_ms",
         "whatsapp.connected", "sending.stalled"]
    )  # fmt: skip
    verdict = assess(watchdog_state="running", heartbeat=cleaned, heartbeat_age_s=1.0, heartbeat_timeout_s=120)
    assert verdict["session_health"] == "healthy" and len(verdict["warnings"]) == 7


def test_api_status_never_passes_wrong_types_on(home: Home) -> None:
    """A worker writing wrong types: /api/status answers 200 with those fields dropped and named, and a warning."""
    port = free_port()
    api_config(home, port)
    (home.root / "fake_status.json").write_text(json.dumps(WRONG))
    wd = ApiWatchdog(home, port)
    try:
        wait_for(lambda: "whatsapp" in json.loads(home.heartbeat_file.read_text()), timeout=10, what="the beat")
        report = get_json(port, "/api/status")
    finally:
        wd.stop()
    beat = report["heartbeat"]
    assert beat["whatsapp"] == {"quality": "good"} and "whatsapp.restart_failures" in beat["invalid_fields"]
    assert any("whatsapp.state" in w for w in report["health"]["warnings"])
