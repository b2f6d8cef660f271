"""The dashboard's timeline, outbox and event panels in real headless Chromium, served by a real watchdog running a
real worker (no browser of its own): each panel renders, and is saved as a screenshot in test-artifacts/."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from continuity.watchdog.instance import Home
from continuity.worker.outbox_view import VIEW_FILE
from continuity.worker.store import Outbox
from tests._chromium import chromium, needs_chromium
from tests._watchdog_harness import events, start_watchdog, stop_watchdog, wait_for
from tests.test_api import free_port
from tests.test_dashboard import ARTIFACTS, XSS, no_alert, text
from tests.test_outbox_panel import PHONE, fail_for_good, real_worker_config

__all__ = ["chromium"]  # the fixture, re-exported for pytest

pytestmark = [pytest.mark.browser, needs_chromium]


def history(now: float) -> list[dict[str, Any]]:
    """A day of events: state changes, 2 worker restarts, 3 browser restarts, 30 sends, and 150 recent events."""
    return [
        {"ts": now - 23 * 3600, "event": "whatsapp_state", "old": "starting", "new": "qr"},
        {"ts": now - 22 * 3600, "event": "whatsapp_state", "old": "qr", "new": "ready"},
        {"ts": now - 12 * 3600, "event": "whatsapp_state", "old": "ready", "new": "offline"},
        {"ts": now - 11 * 3600, "event": "worker_exited", "pid": 1},
        {"ts": now - 11 * 3600 + 5, "event": "worker_spawned", "pid": 2, "restarts_total": 1},
        {"ts": now - 11 * 3600 + 60, "event": "whatsapp_state", "old": "starting", "new": "ready"},
        {"ts": now - 6 * 3600, "event": "worker_spawned", "pid": 3, "restarts_total": 2},
        *({"ts": now - h * 3600, "event": "browser_restart", "reason": "dead"} for h in (20, 9, 3)),
        *({"ts": now - 5 * 3600 - i * 60, "event": "message_sent", "id": f"m{i}"} for i in range(30)),
        *({"ts": now - 1800 + i, "event": "note", "n": i} for i in range(150)),
    ]


def events_file_text(now: float) -> str:
    """The history as EventLog writes it: one compact JSON object a line, "ts" first, oldest first."""
    rows = sorted(history(now), key=lambda row: row["ts"])
    return "".join(json.dumps({"ts": row.pop("ts"), "source": "test", **row}, separators=(",", ":")) + "\n"
                   for row in rows)  # fmt: skip


def shoot(driver: WebDriver, element_id: str) -> None:
    """Save one panel as test-artifacts/panel-<id>.png; a blank or missing panel gives a tiny image."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"panel-{element_id}.png"
    path.write_bytes(driver.find_element("id", element_id).screenshot_as_png)
    assert path.stat().st_size > 3000, f"{element_id} looks empty"


def count(driver: WebDriver, css: str) -> int:
    return len(driver.find_elements("css selector", css))


def test_timeline_outbox_and_event_panels_render(home: Home, chromium: Callable[..., WebDriver]) -> None:
    """The timeline draws its bands, restart marks and sent bars as inline SVG; the outbox lists pending and failed
    messages (as text, never HTML) and Cancel works with the saved token; event numbers past 99 are whole."""
    port = free_port()
    real_worker_config(home, port)
    now = time.time()
    home.events_file.write_text(events_file_text(now))
    with Outbox.open(home) as outbox:
        failed = fail_for_good(outbox, "not on WhatsApp " + XSS)
        pending = outbox.enqueue(PHONE, XSS)[0]["id"]
    proc = start_watchdog(home)
    try:
        wait_for(lambda: (home.run_dir / "api_token").exists() and (home.run_dir / VIEW_FILE).exists(),
                 timeout=30, what="the API and the outbox view")  # fmt: skip
        token = (home.run_dir / "api_token").read_text().strip()
        driver = chromium()
        driver.set_window_size(1280, 2400)
        before = len([e for e in events(home, "worker_spawned") if e.get("restarts_total")])
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 15).until(lambda d: count(d, "#timeline svg rect.band") > 0)
        states = [el.get_attribute("data-state") for el in driver.find_elements("css selector", "#timeline .band")]
        assert states[:7] == ["starting", "qr", "ready", "offline", "down", "starting", "ready"], states
        restarts = len([e for e in events(home, "worker_spawned") if e.get("restarts_total")])
        assert 2 <= before <= count(driver, "#timeline line.worker-restart") <= restarts  # 2 in the history
        assert count(driver, "#timeline polygon.browser-restart") == 3
        bars = driver.find_elements("css selector", "#timeline rect.sent-bar")
        assert 3 <= len(bars) <= 4 and all(bar.size["height"] > 0 for bar in bars)
        assert driver.find_element("css selector", "#timeline svg").size["width"] > 600
        assert "Paste the API token" in text(driver, "outbox-note")
        driver.find_element("id", "token").send_keys(token)
        driver.find_element("css selector", '#token-form button[type="submit"]').click()
        WebDriverWait(driver, 15).until(lambda d: count(d, "#outbox tbody tr") == 2)
        rows = {r.get_attribute("data-id"): r for r in driver.find_elements("css selector", "#outbox tbody tr")}
        assert rows[pending].find_elements("css selector", "td")[2].text == XSS
        assert XSS in rows[failed].find_element("css selector", "td.reason").text
        assert [b.text for b in rows[failed].find_elements("css selector", "button")] == ["Retry"]
        WebDriverWait(driver, 15).until(lambda d: count(d, "#events li") >= 150)
        shoot(driver, "timeline-card")
        shoot(driver, "outbox-card")
        shoot(driver, "events")
        numbers = driver.execute_script(
            "const list = document.getElementById('events').getBoundingClientRect();"
            "return [...document.querySelectorAll('#events .n')].map((n) => {const r = n.getBoundingClientRect();"
            "return [n.textContent, r.left >= list.left - 0.5, n.scrollWidth <= n.clientWidth + 0.5];});"
        )
        assert numbers[149][0] == "150" and all(inside and whole for _n, inside, whole in numbers), numbers[99:102]
        rows[pending].find_element("css selector", 'button[data-op="cancel"]').click()
        WebDriverWait(driver, 20).until(lambda d: "200" in text(d, "action-result"))
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element("css selector", f'#outbox tr[data-id="{pending}"] td').text == "cancelled"
        )
        assert no_alert(driver)
        driver.save_screenshot(str(ARTIFACTS / "dashboard-panels.png"))
    finally:
        stop_watchdog(proc)
    with Outbox.open(home) as outbox:
        assert outbox.get(pending)["state"] == "failed"  # type: ignore[index]
