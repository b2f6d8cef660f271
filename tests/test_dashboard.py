"""The dashboard in real headless Chromium, served by a real watchdog: status, QR, actions, escaping."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from continuity.watchdog.instance import Home
from tests._chromium import chromium, needs_chromium, wait_css
from tests._watchdog_harness import wait_for
from tests.test_api import ApiWatchdog, api_config, free_port

__all__ = ["chromium"]  # the fixture, re-exported for pytest

pytestmark = [pytest.mark.browser, needs_chromium]

XSS = "<img src=x onerror=alert(1)>"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def tiny_png(size: int = 21) -> bytes:
    """A real black-and-white PNG (a checkerboard standing in for a QR code)."""
    rows = b"".join(b"\x00" + bytes(255 * ((x + y) % 2) for x in range(size)) for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element("id", element_id).text)


def no_alert(driver: WebDriver) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018 - raises when no alert is open
    except NoAlertPresentException:
        return True
    return False


def test_dashboard_shows_status_qr_and_escapes_token_names(home: Home, chromium: Callable[..., WebDriver]) -> None:
    """The page renders the live figures and the QR, and shows a token named like an <img> tag as plain text."""
    port = free_port()
    api_config(home, port)
    whatsapp = {"state": "qr", "connected": False, "quality": XSS, "reconnect_attempts": 4, "browser_restarts": 2}
    tokens = [{"id": "t-1", "symbol": XSS, "chain": "sol"}, {"id": "t-2", "symbol": "ABC", "chain": XSS}]
    preview = {"count": 7, "items": tokens}  # the worker publishes it in its heartbeat (TokenStore.preview)
    status = {"whatsapp": whatsapp, "tokens": {"active": 7, "preview": preview}, "outbox": {"pending": 3}}
    (home.root / "fake_status.json").write_text(json.dumps(status))
    home.session_dir.mkdir(exist_ok=True)
    (home.session_dir / "qr.png").write_bytes(tiny_png())
    wd = ApiWatchdog(home, port)
    try:
        driver = chromium()
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 15).until(lambda d: "running" in text(d, "watchdog-state"))
        WebDriverWait(driver, 15).until(lambda d: text(d, "tokens-active") == "7")
        assert text(driver, "whatsapp-state") == "qr"
        assert text(driver, "whatsapp-quality") == XSS
        assert text(driver, "reconnects") == "4" and text(driver, "browser-restarts") == "2"
        assert text(driver, "outbox-pending") == "3"
        assert str(wd.worker_pid()) in text(driver, "worker-state")
        assert "Scan the QR code" in text(driver, "recommendations")
        cells = [c.text for c in driver.find_elements("css selector", "#tokens td")]
        assert cells == ["t-1", XSS, "sol", "t-2", "ABC", XSS]
        qr = wait_css(driver, "#qr-card:not([hidden]) #qr")
        WebDriverWait(driver, 10).until(lambda d: d.execute_script("return arguments[0].naturalWidth", qr) == 21)
        images = driver.find_elements("css selector", "img")
        assert [img.get_attribute("id") for img in images] == ["qr"]
        assert no_alert(driver)
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    finally:
        wd.stop()


def test_dashboard_button_restarts_the_worker_with_the_saved_token(
    home: Home, chromium: Callable[..., WebDriver]
) -> None:
    """Without a token a button asks for it; with the pasted token "Restart worker" gives a new worker pid."""
    port = free_port()
    api_config(home, port)
    wd = ApiWatchdog(home, port)
    try:
        driver = chromium()
        driver.get(f"http://localhost:{port}/")
        WebDriverWait(driver, 15).until(lambda d: "running" in text(d, "watchdog-state"))
        restart = driver.find_element("css selector", 'button[data-action="restart-worker"]')
        old = wd.worker_pid()
        restart.click()
        WebDriverWait(driver, 5).until(lambda d: "Paste the API token" in text(d, "action-result"))
        assert wd.worker_pid() == old
        driver.find_element("id", "token").send_keys(wd.token)
        driver.find_element("css selector", '#token-form button[type="submit"]').click()
        WebDriverWait(driver, 5).until(lambda d: "token saved" in text(d, "action-result"))
        restart.click()
        WebDriverWait(driver, 15).until(lambda d: "200" in text(d, "action-result"))
        wait_for(lambda: wd.worker_pid() not in (None, old), timeout=15, what="a new worker")
        driver.refresh()  # the token survives a reload (localStorage)
        assert driver.find_element("id", "token").get_attribute("value") == wd.token
        WebDriverWait(driver, 15).until(lambda d: str(wd.worker_pid()) in text(d, "worker-state"))
    finally:
        wd.stop()
