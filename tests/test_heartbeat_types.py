"""A heartbeat whose known fields have the wrong types (any command may write it): those fields are dropped and
named, never passed on to status, health or the API as they are."""

from __future__ import annotations

import json

from continuity.watchdog.health import assess
from continuity.watchdog.instance import Home, clean_heartbeat
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


def test_the_schema_and_its_runtime_check_agree() -> None:
    """The TypedDict schema (instance.Heartbeat and its sections) names the same fields, with the same types, as
    the table clean_heartbeat checks them against: the two cannot drift apart."""
    from continuity.watchdog.instance import _heartbeat as hb

    number, opt_number, opt_str = (int, float), (int, float, type(None)), (str, type(None))
    runtime = {
        "int": (int,), "bool": (bool,), "str": (str,), "float": number, "float | None": opt_number,
        "str | None": opt_str, "dict[str, Any]": (dict,), "list[Any]": (list,), "list[Any] | None": (list, type(None)),
        "list[dict[str, Any]]": (list,), "TokenPreview": (dict,),
    }  # fmt: skip
    sections = {"tokens": hb.TokensSection, "outbox": hb.OutboxSection, "whatsapp": hb.WhatsAppSection,
                "sending": hb.SendingSection, "inbox": hb.InboxSection}  # fmt: skip

    def hints(schema: type) -> dict[str, str]:  # the annotations as written (ForwardRefs: postponed annotations)
        return {name: getattr(hint, "__forward_arg__", hint) for name, hint in schema.__annotations__.items()}

    top = {name: hint for name, hint in hints(hb.Heartbeat).items() if name != "invalid_fields"}
    assert set(top) == set(hb._TOP)
    for name, hint in top.items():
        assert hb._TOP[name] == ((dict,) if name in sections else runtime[hint]), name
    assert set(sections) == set(hb._SECTIONS)
    for section, schema in sections.items():
        assert set(hints(schema)) == set(hb._SECTIONS[section]), section
        for name, hint in hints(schema).items():
            assert hb._SECTIONS[section][name] == runtime[hint], f"{section}.{name}"
