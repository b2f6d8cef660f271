"""GET /metrics: Prometheus text format 0.0.4 written by hand, parsed here with prometheus_client's own parser."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from continuity.watchdog.instance import Home
from continuity.watchdog.metrics import CONTENT_TYPE, WHATSAPP_STATES, render_metrics
from tests._watchdog_harness import wait_for
from tests.test_api import ApiWatchdog, api_config, free_port, request

EXPECTED = {
    "continuity_up": "gauge",
    "continuity_worker_restarts": "counter",
    "continuity_whatsapp_state": "gauge",
    "continuity_whatsapp_ready": "gauge",
    "continuity_messages_sent": "counter",
    "continuity_messages_failed": "counter",
    "continuity_outbox_pending": "gauge",
    "continuity_tokens_active": "gauge",
    "continuity_heartbeat_age_seconds": "gauge",
    "continuity_browser_restarts": "counter",
    "continuity_reconnects": "counter",
}


def parse(text: str) -> dict[str, Any]:
    """{family name: (type, {(sample name, labels): value})} via prometheus_client's parser."""
    families = {}
    for family in text_string_to_metric_families(text):
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
        families[family.name] = (family.type, samples)
    return families


def test_every_metric_has_help_type_and_the_heartbeat_figures() -> None:
    """All eleven metrics parse with their types; each value is the heartbeat's figure it names."""
    beat = {
        "whatsapp": {"state": "ready", "browser_restarts": 2, "reconnect_attempts": 5},
        "outbox": {"pending": 4, "claimed": 0, "sent": 1234567, "failed": 3},
        "tokens": {"active": 7},
    }
    text = render_metrics(up=True, restarts_total=9, heartbeat=beat, age_s=1.25).decode()
    assert text.count("# HELP ") == len(EXPECTED) and text.count("# TYPE ") == len(EXPECTED)
    families = parse(text)
    assert {name: kind for name, (kind, _s) in families.items()} == EXPECTED
    value = {name: samples.get((f"{name}_total" if kind == "counter" else name, ())) for name, (kind, samples)
             in families.items()}  # fmt: skip
    assert value["continuity_up"] == 1 and value["continuity_worker_restarts"] == 9
    assert value["continuity_whatsapp_ready"] == 1 and value["continuity_messages_sent"] == 1234567
    assert value["continuity_messages_failed"] == 3 and value["continuity_outbox_pending"] == 4
    assert value["continuity_tokens_active"] == 7 and value["continuity_heartbeat_age_seconds"] == 1.25
    assert value["continuity_browser_restarts"] == 2 and value["continuity_reconnects"] == 5
    states = families["continuity_whatsapp_state"][1]
    assert {dict(labels)["state"]: v for (_n, labels), v in states.items()} == {
        s: (1.0 if s == "ready" else 0.0) for s in WHATSAPP_STATES
    }


def test_no_live_worker_reports_unknown_and_leaves_missing_figures_out() -> None:
    """Down: up 0, state unknown, not ready; figures no heartbeat gave are left out, never made up as 0."""
    families = parse(render_metrics(up=False, restarts_total=0, heartbeat=None, age_s=None).decode())
    assert families["continuity_up"][1] == {("continuity_up", ()): 0.0}
    current = [dict(labels)["state"] for (_n, labels), v in families["continuity_whatsapp_state"][1].items() if v]
    assert current == ["unknown"]
    assert families["continuity_whatsapp_ready"][1] == {("continuity_whatsapp_ready", ()): 0.0}
    for name in ("continuity_messages_sent", "continuity_outbox_pending", "continuity_heartbeat_age_seconds"):
        assert families[name][1] == {}


def test_a_strange_state_is_escaped_and_still_parses() -> None:
    """A state name the watchdog does not know (quotes, backslash, newline) is one escaped label value."""
    odd = 'new"state\\x\ny'
    text = render_metrics(up=True, restarts_total=0, heartbeat={"whatsapp": {"state": odd}}, age_s=0.0).decode()
    states = parse(text)["continuity_whatsapp_state"][1]
    assert states[("continuity_whatsapp_state", (("state", odd),))] == 1.0
    assert sum(states.values()) == 1.0


def test_metrics_need_no_token_and_follow_the_live_watchdog(home: Home) -> None:
    """A real watchdog serves /metrics without a token (0.0.4 content type) from the fake worker's heartbeat, and
    continuity_worker_restarts_total counts a kill -9 of the worker."""
    port = free_port()
    api_config(home, port)
    beat = {"whatsapp": {"state": "offline", "reconnect_attempts": 12, "browser_restarts": 101},
            "outbox": {"pending": 2, "sent": 40, "failed": 1}, "tokens": {"active": 3}}  # fmt: skip
    (home.root / "fake_status.json").write_text(json.dumps(beat))
    wd = ApiWatchdog(home, port)
    try:

        def scrape() -> dict[str, Any]:
            status, headers, body = request(port, "GET", "/metrics")
            assert status == 200 and headers["content-type"] == CONTENT_TYPE
            return parse(body.decode())

        families = wait_for(lambda: (f := scrape())["continuity_up"][1][("continuity_up", ())] == 1 and f,
                            timeout=15, what="continuity_up 1")  # fmt: skip
        assert families["continuity_reconnects"][1][("continuity_reconnects_total", ())] == 12
        assert families["continuity_browser_restarts"][1][("continuity_browser_restarts_total", ())] == 101
        assert families["continuity_messages_sent"][1][("continuity_messages_sent_total", ())] == 40
        assert families["continuity_whatsapp_state"][1][("continuity_whatsapp_state", (("state", "offline"),))] == 1
        assert families["continuity_worker_restarts"][1][("continuity_worker_restarts_total", ())] == 0
        assert families["continuity_heartbeat_age_seconds"][1][("continuity_heartbeat_age_seconds", ())] < 5
        first = wd.worker_pid()
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: scrape()["continuity_worker_restarts"][1][("continuity_worker_restarts_total", ())] == 1,
                 timeout=15, what="the restart to be counted")  # fmt: skip
        assert request(port, "POST", "/metrics")[0] == 405
    finally:
        wd.stop()


def test_a_scrape_is_answered_without_building_the_dashboard_api() -> None:
    """GET /metrics with an allowed Host never builds the full API (nor imports it); a foreign Host or a POST does,
    so that it is refused and recorded there."""
    from continuity.watchdog._http import Request, Response
    from continuity.watchdog.api_server import _LazyApp
    from continuity.watchdog.instance import HostGuard

    built: list[str] = []

    def factory() -> Any:
        built.append("api")
        return lambda request: Response(403, b"refused by the full app")

    app = _LazyApp(factory, light={"/metrics": lambda request: Response(200, b"m 1\n")})
    get = Request("GET", "/metrics", {}, {"host": "127.0.0.1:9"})
    assert app(get).status == 403 and built == ["api"]  # no guard yet (port unknown): the full app answers
    app = _LazyApp(factory, light={"/metrics": lambda request: Response(200, b"m 1\n")})
    app.set_guard(HostGuard("127.0.0.1", 9))
    for host in ("127.0.0.1:9", "localhost"):
        assert app(Request("GET", "/metrics", {}, {"host": host})).status == 200
    assert app(Request("HEAD", "/metrics", {}, {"host": "localhost:9"})).status == 200
    assert built == ["api"]
    assert app(Request("GET", "/metrics", {}, {"host": "evil.example"})).status == 403
    assert app(Request("POST", "/metrics", {}, {"host": "localhost"})).status == 403


def test_serving_metrics_imports_nothing_new_into_the_watchdog(tmp_path: Any) -> None:
    """The metrics module loads nothing the idle watchdog has not loaded (status.py and api.py cost ~1.5 MB) but
    itself and the contract's small heartbeat reader (the idle watchdog only watches the file: heartbeat_monitor)."""
    import subprocess
    import sys

    script = (
        "import sys; import continuity.watchdog.run, continuity.watchdog.supervisor, continuity.watchdog.api_server\n"
        "before = set(sys.modules)\n"
        "from continuity.watchdog.metrics import render_metrics\n"
        "render_metrics(up=True, restarts_total=1, heartbeat={'whatsapp': {'state': 'ready'}}, age_s=1.0)\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['continuity.watchdog.instance._heartbeat', 'continuity.watchdog.metrics']"
