"""The WhatsApp Web simulator in real headless Chromium, driven by plain Selenium with the real site's selectors."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from urllib3.exceptions import ReadTimeoutError

from continuity.devtools.simulator import Simulator

from ._chromium import (
    kill_driver_tree,
    make_driver,
    needs_chromium,
    quit_driver,
    set_client_timeout,
    wait_css,
    wait_gone,
)

pytestmark = [pytest.mark.browser, needs_chromium]

QR = 'div[data-ref] > canvas[aria-label="Scan this QR code to link a device!"]'
MAIN = "#side #pane-side div[aria-label='Chat list']"
BOX = "#main footer div[contenteditable='true'][role='textbox'][data-tab='10']"
SEND = "#main footer button[aria-label='Send'] span[data-icon='wds-ic-send-filled']"
POPUP = "div[data-animate-modal-popup='true']"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """One simulator for the module's logged-in tests (fast polls, quick QR rotation)."""
    with Simulator(qr_rotate_s=2.0, qr_max_rotations=3, poll_s=0.25) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def shared_driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One Chromium for the module's tests that do not restart the browser."""
    driver = make_driver(tmp_path_factory.mktemp("shared") / "profile")
    yield driver
    quit_driver(driver)


def login(driver: WebDriver, sim: Simulator) -> None:
    """Open the page; scan the QR if one is shown; wait for the main screen."""
    driver.get(sim.url)
    wait_css(driver, f"{QR}, {MAIN}")
    refs = driver.find_elements("css selector", "div[data-ref]")
    if refs:
        sim.scan(refs[0].get_attribute("data-ref"))
    wait_css(driver, MAIN)


@pytest.fixture
def page(sim: Simulator, shared_driver: WebDriver) -> WebDriver:
    """The shared Chromium on the main screen, logged in, with every mode off."""
    for mode in sim.state()["modes"]:
        sim.set_mode(mode, on=False)
    login(shared_driver, sim)
    return shared_driver


def icon_of(driver: WebDriver, text: str) -> str | None:
    """The tick icon of the last outgoing bubble whose text is `text`."""
    icon: str | None = driver.execute_script(
        """const rows = [...document.querySelectorAll('#main div.message-out')]
             .filter(r => r.querySelector('span.selectable-text').textContent === arguments[0]);
           if (!rows.length) return null;
           return rows[rows.length - 1].querySelector('span[data-icon^="msg-"]').getAttribute('data-icon');""",
        text,
    )
    return icon


def text_of(driver: WebDriver, css: str) -> str:
    """innerText of the first match of `css`, "" when there is none (no stale-element races)."""
    text: str = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css
    )
    return text


def wait_until(predicate: Any, timeout: float = 10.0) -> Any:
    """Poll `predicate` every 50 ms until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def test_qr_payload_is_readable_rotates_goes_idle_and_reloads(shared_driver: WebDriver) -> None:
    """The QR payload is in data-ref, rotates, goes idle after N rotations, and 'Click to reload' resumes it."""
    with Simulator(qr_rotate_s=0.6, qr_max_rotations=2, poll_s=0.25) as own:
        shared_driver.get(own.url)  # another origin: no login stored for it
        wait_css(shared_driver, QR)
        first = shared_driver.find_element("css selector", "div[data-ref]").get_attribute("data-ref")
        assert first and first.startswith("2@") and first == own.state()["qr"]
        dark = shared_driver.execute_script(
            """const c = document.querySelector('div[data-ref] canvas');
               const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n;"""
        )
        assert dark > 1000, "the QR canvas has something drawn on it"
        seen = {first}

        def idle_or_collect() -> bool:
            for el in shared_driver.find_elements("css selector", "div[data-ref]"):
                with contextlib.suppress(WebDriverException):
                    seen.add(el.get_attribute("data-ref") or "")
            return bool(shared_driver.find_elements("css selector", "button.qr-reload"))

        wait_until(idle_or_collect, timeout=8)
        assert len(seen) == 3, "the first payload plus qr_max_rotations=2 rotations"
        assert not shared_driver.find_elements("css selector", "div[data-ref]")
        assert own.state()["qr"] is None and own.state()["qr_idle"]
        button = shared_driver.find_element("css selector", "button.qr-reload")
        assert button.text == "Click to reload QR code"
        button.click()
        wait_css(shared_driver, QR)
        fresh = shared_driver.find_element("css selector", "div[data-ref]").get_attribute("data-ref")
        assert fresh not in seen and fresh == own.state()["qr"]


def test_scan_logs_in_and_the_login_survives_a_browser_restart(tmp_path: Path) -> None:
    """Scan -> main screen; the same profile restarts logged in without a QR; a fresh profile gets a QR."""
    with Simulator(qr_rotate_s=20, qr_max_rotations=5, poll_s=0.25) as own:
        driver = make_driver(tmp_path / "a")
        try:
            driver.get(own.url)
            wait_css(driver, QR)
            own.scan()
            wait_css(driver, "progress")
            assert "Loading your chats" in driver.find_element("css selector", "body").text
            wait_css(driver, MAIN)
            wait_css(driver, "#side div[contenteditable='true'][role='textbox'][data-tab='3']")
            token = driver.execute_script("return localStorage.getItem('WASimSession')")
            assert token and token == own.state()["devices"][0]["token"]
            stored = driver.execute_async_script(
                """const done = arguments[arguments.length - 1];
                   const req = indexedDB.open('wawc');
                   req.onsuccess = () => {
                     const get = req.result.transaction('user').objectStore('user').get('WASimSession');
                     get.onsuccess = () => done(get.result ? get.result.token : null);
                   };
                   req.onerror = () => done(null);"""
            )
            assert stored == token, "the login is also recorded in IndexedDB"
            assert own.state()["logged_in"]
        finally:
            quit_driver(driver)

        driver = make_driver(tmp_path / "a")
        try:
            driver.get(own.url)
            saw_qr = wait_until(lambda: driver.find_elements("css selector", f"div[data-ref], {MAIN}"))
            assert saw_qr[0].get_attribute("data-ref") is None, "a restarted profile shows no QR"
            wait_css(driver, MAIN)
        finally:
            quit_driver(driver)

        driver = make_driver(tmp_path / "b")
        try:
            driver.get(own.url)
            wait_css(driver, QR)
        finally:
            quit_driver(driver)


def test_send_flow_records_one_delivery_and_shows_history(page: WebDriver, sim: Simulator) -> None:
    """/send: Starting chat, prefilled lexical box, Send -> check -> dblcheck, one delivery, history on reopen."""
    before = len(sim.delivered())
    page.get(sim.url + "send?phone=15551234567&text=hello%20there")
    assert "Starting chat" in wait_css(page, POPUP).text
    box = wait_css(page, BOX)
    assert box.find_element("css selector", "p.selectable-text.copyable-text").text == "hello there"
    wait_css(page, SEND).click()
    assert wait_until(lambda: icon_of(page, "hello there") in ("msg-check", "msg-dblcheck"))
    wait_until(lambda: icon_of(page, "hello there") == "msg-dblcheck")
    time.sleep(0.6)  # a few polls: a delivered message is never re-sent
    new = sim.delivered()[before:]
    assert [(d["phone"], d["text"]) for d in new] == [("15551234567", "hello there")]
    assert page.current_url == sim.url

    page.get(sim.url + "send?phone=15551234567&text=draft")  # a bot replaces the draft, as on the real site
    box = wait_css(page, BOX)
    wait_until(lambda: icon_of(page, "hello there") == "msg-dblcheck")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    wait_css(page, "#main footer span[data-icon='mic-outlined']")
    assert not page.find_elements("css selector", "#main footer button[aria-label='Send']")
    box.send_keys("second")
    box.send_keys(Keys.SHIFT, Keys.ENTER)
    box.send_keys("line")
    wait_css(page, SEND)
    box.send_keys(Keys.ENTER)
    wait_until(lambda: icon_of(page, "second\nline") == "msg-dblcheck")
    assert [d["text"] for d in sim.delivered()[before:]] == ["hello there", "second\nline"]
    wait_css(page, "#main footer span[data-icon='mic-outlined']")
    page.get(sim.url)
    wait_css(page, "#pane-side span[title='+15551234567']").click()
    wait_until(lambda: icon_of(page, "second\nline") == "msg-dblcheck")
    origins = page.execute_script("return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    assert origins and set(origins) == {sim.url.rstrip("/")}, "the page talks to its own origin only"


def test_stuck_clock_then_fail(page: WebDriver, sim: Simulator) -> None:
    """stuck_clock: msg-time, nothing delivered; once cleared the queue delivers it once; send_fail: msg-failed."""
    before = len(sim.delivered())
    sim.set_mode("stuck_clock")
    page.get(sim.url + "send?phone=15550009999&text=stuck%20one")
    wait_css(page, SEND).click()
    wait_until(lambda: icon_of(page, "stuck one") == "msg-time")
    time.sleep(1.0)
    assert icon_of(page, "stuck one") == "msg-time"
    assert len(sim.delivered()) == before
    assert [m["status"] for m in sim.history("15550009999")] == ["pending"]
    page.get(sim.url)  # a fresh page with the chat closed still owns the queue
    wait_css(page, MAIN)
    sim.set_mode("stuck_clock", on=False)
    wait_until(lambda: len(sim.delivered()) > before)
    time.sleep(0.6)
    assert [d["text"] for d in sim.delivered()[before:]] == ["stuck one"], "retried until taken, then once"
    wait_css(page, "#pane-side span[title='+15550009999']").click()
    wait_until(lambda: icon_of(page, "stuck one") == "msg-dblcheck")

    sim.set_mode("send_fail")
    page.get(sim.url + "send?phone=15550009999&text=doomed")
    wait_css(page, SEND).click()
    wait_until(lambda: icon_of(page, "doomed") == "msg-failed")
    assert [d["text"] for d in sim.delivered()[before:]] == ["stuck one"]


def test_invalid_numbers_get_the_popup(page: WebDriver, sim: Simulator) -> None:
    """A malformed number and a number listed in invalid_numbers both show the invalid popup with OK."""
    sim.set_mode("invalid_numbers", numbers=["15557770000"])
    for phone in ("123", "15557770000"):
        page.get(sim.url + f"send?phone={phone}&text=x")
        wait_until(lambda: "Phone number shared via url is invalid." in text_of(page, POPUP))
        page.find_element("css selector", f"{POPUP} button").click()
        wait_gone(page, POPUP)
        assert not page.find_elements("css selector", "#main")
    assert sim.history("15557770000") == []


def test_overlays_and_use_here(page: WebDriver, sim: Simulator) -> None:
    """conflict and another_tab overlays clear with Use here; offline banners follow their modes."""
    sim.set_mode("conflict")
    wait_until(lambda: "WhatsApp is open on another computer or browser" in text_of(page, POPUP))
    popup = wait_css(page, POPUP)
    labels = [b.text for b in popup.find_elements("css selector", "button")]
    assert labels == ["Log out", "Use here"]
    popup.find_elements("css selector", "button")[1].click()
    wait_gone(page, POPUP)
    assert "conflict" not in sim.state()["modes"]

    sim.set_mode("another_tab")
    wait_until(lambda: "WhatsApp is open in another window" in text_of(page, POPUP))
    popup = wait_css(page, POPUP)
    assert [b.text for b in popup.find_elements("css selector", "button")] == ["Close", "Use here"]
    popup.find_elements("css selector", "button")[0].click()  # Close: this window gives up
    wait_gone(page, "#side")
    assert "WhatsApp is open in another window" in text_of(page, "body")
    page.refresh()
    popup = wait_css(page, POPUP)
    wait_until(lambda: "Use here" in text_of(page, POPUP))
    popup.find_elements("css selector", "button")[1].click()
    wait_gone(page, POPUP)
    assert "another_tab" not in sim.state()["modes"]

    sim.set_mode("offline")
    sim.set_mode("phone_offline")
    wait_until(lambda: "Computer not connected" in text_of(page, "#side"))
    wait_until(lambda: "Trying to reach phone" in text_of(page, "#side"))
    sim.set_mode("offline", on=False)
    wait_until(lambda: "Computer not connected" not in text_of(page, "#side"))

    sim.set_mode("conflict")
    wait_until(lambda: "Log out" in text_of(page, POPUP))
    page.find_elements("css selector", f"{POPUP} button")[0].click()
    wait_until(lambda: "post_logout=1" in page.current_url)
    wait_css(page, QR)
    assert sim.state()["devices"] == [], "Log out unlinks this browser"


def test_loading_can_stick_at_100(page: WebDriver, sim: Simulator) -> None:
    """loading_stuck: a logged-in reload stops at 100 % on 'Loading your chats' and never shows the chats."""
    sim.set_mode("loading_stuck")
    page.refresh()
    wait_until(lambda: page.execute_script("const p = document.querySelector('progress'); return p && p.value") == 100)
    time.sleep(0.8)
    assert "Loading your chats" in page.find_element("css selector", "body").text
    assert not page.find_elements("css selector", "#side")


def test_locale_variant_keeps_the_stable_markers(page: WebDriver, sim: Simulator) -> None:
    """German: aria-labels translated, data-ref/data-icon/data-tab/ids unchanged (main, send, QR screens)."""
    sim.set_mode("locale", lang="de")
    page.refresh()
    wait_css(page, "#side #pane-side div[aria-label='Chatliste']")
    assert not page.find_elements("css selector", MAIN)
    page.get(sim.url + "send?phone=15551234567&text=hallo")
    wait_css(page, "#main footer button[aria-label='Senden'] span[data-icon='wds-ic-send-filled']")
    wait_css(page, BOX)
    sim.logout()
    wait_css(page, 'div[data-ref] > canvas[aria-label="Scanne diesen QR-Code, um ein Gerät zu verknüpfen!"]')
    assert not page.find_elements("css selector", QR)


def test_phone_logout_goes_to_post_logout_and_qr(page: WebDriver, sim: Simulator) -> None:
    """Logout from the phone: the page navigates to ?post_logout=1, forgets its token and shows a QR."""
    sim.logout()
    wait_until(lambda: "post_logout=1" in page.current_url)
    wait_css(page, QR)
    assert page.execute_script("return localStorage.getItem('WASimSession')") is None
    assert not sim.state()["logged_in"]

    page.get(sim.url + "send?phone=15551234567&text=after%20login")  # logged out: QR first, then the chat
    wait_css(page, QR)
    sim.scan()
    box = wait_css(page, BOX)
    wait_until(lambda: box.text == "after login")


def test_frozen_page_makes_script_calls_time_out(tmp_path: Path) -> None:
    """frozen: the page's JS busy-loops on its next poll, so a WebDriver script call times out."""
    with Simulator(poll_s=0.25) as own:
        driver = make_driver(tmp_path / "frozen")
        try:
            driver.get(own.url)
            wait_css(driver, QR)
            assert driver.execute_script("return 1") == 1
            own.set_mode("frozen")
            time.sleep(0.8)
            driver.set_script_timeout(1)
            # chromedriver enforces the script timeout inside the page, which a busy loop never lets run: only
            # the client's own HTTP timeout ends the call. That is what a watchdog-style worker must rely on.
            set_client_timeout(driver, 3)
            started = time.monotonic()
            with pytest.raises((TimeoutException, WebDriverException, ReadTimeoutError, TimeoutError)):
                driver.execute_script("return 1")
            assert 2.5 < time.monotonic() - started < 20
        finally:
            kill_driver_tree(driver)  # a frozen page never quits on its own
            with contextlib.suppress(Exception):
                driver.service.stop()
