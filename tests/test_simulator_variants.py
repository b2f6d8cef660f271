"""The simulator's markup variants in real headless Chromium: each one shows the markup it promises, and the page
still sends through its own UI (the variants are drifted pages, not broken ones)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from continuity.devtools.simulator import VARIANTS, Simulator

from ._chromium import make_driver, needs_chromium, quit_driver, wait_css

pytestmark = [pytest.mark.browser, needs_chromium]

QR = "div[data-ref]"
SIDE = "#side #pane-side div[aria-label='Chat list'][role='grid']"


@dataclass(frozen=True)
class Markup:
    """What one variant's page shows, as a bot would look for it."""

    main: str  # a selector proving the main screen is up
    acked: tuple[str, str] = ("msg-check", "msg-dblcheck")  # ticks once the server took a message: sent, delivered
    compose_tab: str = "10"  # data-tab of the open chat's compose box
    send_tab: str = "11"  # data-tab of the send button
    icon: str = "wds-ic-send-filled"  # data-icon inside the send button
    ids: bool = True  # #side and #pane-side
    grid: bool = True  # div[aria-label="Chat list"][role="grid"] and the [contenteditable][data-tab="3"] search box
    footer: bool = True  # the composer sits in #main footer (else in section.composer-v4, with no role)

    @property
    def compose(self) -> str:
        if not self.footer:
            return f"#main section.composer-v4 div[contenteditable='true']:not([role])[data-tab='{self.compose_tab}']"
        return f"#main footer div[contenteditable='true'][role='textbox'][data-tab='{self.compose_tab}']"

    @property
    def send(self) -> str:
        return send_icon(self.icon, where="#main footer" if self.footer else "#main section.composer-v4")


def send_icon(icon: str, label: str = "Send", where: str = "#main footer") -> str:
    """The send button's icon as a bot finds it: by the button's (localized) aria-label and the icon name."""
    return f"{where} button[aria-label='{label}'] span[data-icon='{icon}']"


MARKUP = {
    "default": Markup(SIDE),
    "compose_tab_11": Markup(SIDE, compose_tab="11", send_tab="12"),
    "send_icon_renamed": Markup(SIDE, icon="ic-paper-plane"),
    "ticks_renamed": Markup(SIDE, acked=("msg-check-v2", "msg-dblcheck-ack")),
    "side_ids_renamed": Markup("div[aria-label='Chat list'][role='grid']", ids=False),
    "unrecognized_main": Markup("div[data-panel='chats']", ids=False, grid=False),
    "compose_moved": Markup(SIDE, compose_tab="11", send_tab="12", footer=False),
}

# One round trip: the markup facts a bot would rely on, on whatever screen the page shows.
FACTS = """
const q = (s) => document.querySelector(s);
const box = q('#main footer div[contenteditable="true"][role="textbox"]')
  || q('#main section.composer-v4 div[contenteditable="true"]');
const send = q('#main footer button[aria-label="Send"]') || q('#main section.composer-v4 button[aria-label="Send"]');
const outs = Array.from(document.querySelectorAll('#main div.message-out'));
return {
  side: !!q('#side'), pane_side: !!q('#pane-side'), chat_list: !!q('div[aria-label="Chat list"][role="grid"]'),
  any_grid: !!q('[role="grid"]'), any_chat_list_label: !!q('[aria-label="Chat list"]'),
  search_tab3: !!q('[contenteditable][data-tab="3"], input[data-tab="3"]'), any_tab3: !!q('[data-tab="3"]'),
  panel: !!q('div[data-panel="chats"]'), progress: !!q('progress'), qr: !!q('div[data-ref]'),
  compose_tab: box && box.getAttribute('data-tab'), send_tab: send && send.getAttribute('data-tab'),
  send_icon: send && send.querySelector('span[data-icon]').getAttribute('data-icon'),
  id_on_bubble: outs.some((o) => o.hasAttribute('data-id')),
  bubbles: outs.map((o) => ({
    text: o.querySelector('span.selectable-text').textContent,
    id: o.parentElement.closest('[data-id]') ? o.parentElement.closest('[data-id]').getAttribute('data-id') : null,
    row: !!o.closest('[role="row"]'),
    tick: o.querySelector('span[data-icon^="msg-"]').getAttribute('data-icon'),
  })),
};
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """One simulator for the module (fast polls), logged in once by the first test."""
    with Simulator(qr_rotate_s=5.0, qr_max_rotations=3, poll_s=0.25) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One Chromium for the module."""
    made = make_driver(tmp_path_factory.mktemp("variants") / "profile")
    yield made
    quit_driver(made)


@pytest.fixture
def fresh(sim: Simulator) -> Simulator:
    """The module's simulator with every mode off and the default variant."""
    for mode in sim.state()["modes"]:
        sim.set_mode(mode, on=False)
    sim.set_variant("default")
    return sim


def load(driver: WebDriver, sim: Simulator, main: str) -> None:
    """Load the page; scan a QR if one shows (the first load of the module); wait for `main`."""
    driver.get(sim.url)
    wait_css(driver, f"{QR}, {main}")
    refs = driver.find_elements("css selector", QR)
    if refs:
        sim.scan(refs[0].get_attribute("data-ref"))
    wait_css(driver, main)


def facts(driver: WebDriver) -> dict[str, Any]:
    """The FACTS probe's answer."""
    found: dict[str, Any] = driver.execute_script(FACTS)
    return found


def wait_until(predicate: Any, timeout: float = 10.0) -> Any:
    """Poll `predicate` every 50 ms until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def last_tick(driver: WebDriver, text: str) -> str | None:
    """The tick icon of the last outgoing bubble with `text`."""
    ticks = [b["tick"] for b in facts(driver)["bubbles"] if b["text"] == text]
    return ticks[-1] if ticks else None


def test_the_variant_table_matches_the_simulator() -> None:
    """This module covers exactly the variants the simulator offers."""
    assert set(MARKUP) == set(VARIANTS)


@pytest.mark.parametrize("variant", list(MARKUP))
def test_variant_markup_and_a_send_through_the_page(driver: WebDriver, fresh: Simulator, variant: str) -> None:
    """Each variant's main screen and open chat show its promised markup, and typing + Send delivers once."""
    markup, phone = MARKUP[variant], f"1555200{list(MARKUP).index(variant):04d}"
    fresh.set_variant(variant)
    load(driver, fresh, markup.main)
    main = facts(driver)
    assert (main["side"], main["pane_side"]) == (markup.ids, markup.ids)
    assert (main["chat_list"], main["any_grid"], main["any_chat_list_label"]) == (markup.grid,) * 3
    assert (main["search_tab3"], main["any_tab3"]) == (markup.grid, markup.grid)
    assert main["panel"] is (variant == "unrecognized_main")
    assert not main["progress"] and not main["qr"]

    driver.get(fresh.url + f"send?phone={phone}&text=prefilled")
    compose = wait_css(driver, markup.compose)
    wait_until(lambda: compose.text == "prefilled")
    compose.send_keys(Keys.CONTROL, "a")
    compose.send_keys(Keys.DELETE)
    wait_css(driver, "#main span[data-icon='mic-outlined']")
    compose.send_keys(f"typed in {variant}")
    wait_css(driver, markup.send).click()
    seen: set[str | None] = set()

    def delivered_tick() -> bool:
        seen.add(last_tick(driver, f"typed in {variant}"))
        return markup.acked[1] in seen

    wait_until(delivered_tick)
    assert seen <= {"msg-time", *markup.acked}, "only the variant's own tick names"
    delivered = [d for d in fresh.delivered() if d["phone"] == phone]
    assert [d["text"] for d in delivered] == [f"typed in {variant}"]

    chat = facts(driver)
    assert chat["compose_tab"] == markup.compose_tab
    assert chat["send_tab"] is None, "no Send button once the box is empty again"
    assert chat["id_on_bubble"] is False, "data-id is on the row's wrapper, not on div.message-out"
    want = {"text": f"typed in {variant}", "id": f"true_{phone}@c.us_{delivered[0]['id']}", "row": True}
    assert [{k: b[k] for k in ("text", "id", "row")} for b in chat["bubbles"]] == [want]

    driver.get(fresh.url + f"send?phone={phone}&text=again")  # the history renders with the same markup
    wait_css(driver, markup.send)
    reopened = facts(driver)
    assert [b["tick"] for b in reopened["bubbles"]] == [markup.acked[1]]
    assert [b["id"] for b in reopened["bubbles"]] == [want["id"]]
    assert (reopened["send_icon"], reopened["send_tab"]) == (markup.icon, markup.send_tab)
    if variant == "send_icon_renamed":
        assert "send" not in reopened["send_icon"], "no 'send' left in the icon's name"


def test_unrecognized_main_lists_chats_in_the_panel_and_opens_them(driver: WebDriver, fresh: Simulator) -> None:
    """unrecognized_main: chat rows live under div[data-panel="chats"] (no role=row there) and open #main."""
    fresh.set_variant("unrecognized_main")
    load(driver, fresh, "div[data-panel='chats']")
    driver.get(fresh.url + "send?phone=15552100001&text=via%20panel")
    wait_css(driver, send_icon("wds-ic-send-filled")).click()
    wait_until(lambda: last_tick(driver, "via panel") == "msg-dblcheck")
    driver.get(fresh.url)
    row = wait_css(driver, "div[data-panel='chats'] span[title='+15552100001']")
    assert not driver.find_elements("css selector", "div[data-panel='chats'] [role]")
    row.click()
    wait_until(lambda: last_tick(driver, "via panel") == "msg-dblcheck")
    assert not facts(driver)["side"]


def test_default_chat_list_rows_are_grid_rows(driver: WebDriver, fresh: Simulator) -> None:
    """default: a chat is a div[role=row] directly under the Chat list grid inside #pane-side, titled +phone."""
    load(driver, fresh, SIDE)
    driver.get(fresh.url + "send?phone=15552100002&text=row%20check")
    wait_css(driver, send_icon("wds-ic-send-filled")).click()
    wait_until(lambda: last_tick(driver, "row check") == "msg-dblcheck")
    wait_css(driver, f"{SIDE} > div[role='row'] span[title='+15552100002']")


def test_a_variant_change_shows_on_the_next_load_only(driver: WebDriver, fresh: Simulator) -> None:
    """set_variant leaves a loaded page's markup alone (even a chat opened later from its list) until it reloads."""
    load(driver, fresh, SIDE)
    driver.get(fresh.url + "send?phone=15552100004&text=listed")
    wait_css(driver, send_icon("wds-ic-send-filled")).click()
    wait_until(lambda: last_tick(driver, "listed") == "msg-dblcheck")
    driver.get(fresh.url)
    row = wait_css(driver, f"{SIDE} span[title='+15552100004']")
    fresh.set_variant("compose_tab_11")
    time.sleep(1.0)  # four polls
    row.click()
    wait_css(driver, MARKUP["default"].compose)
    assert facts(driver)["compose_tab"] == "10"
    driver.refresh()
    wait_css(driver, f"{SIDE} span[title='+15552100004']").click()
    wait_css(driver, MARKUP["compose_tab_11"].compose)


def test_ticks_renamed_keeps_pending_and_failed(driver: WebDriver, fresh: Simulator) -> None:
    """ticks_renamed: msg-time while held, then msg-check-v2 -> msg-dblcheck-ack; send_fail still ends msg-failed."""
    fresh.set_variant("ticks_renamed")
    load(driver, fresh, SIDE)
    fresh.set_mode("stuck_clock")
    driver.get(fresh.url + "send?phone=15552100003&text=held")
    wait_css(driver, send_icon("wds-ic-send-filled")).click()
    wait_until(lambda: last_tick(driver, "held") == "msg-time")
    time.sleep(0.6)
    assert last_tick(driver, "held") == "msg-time"
    fresh.set_mode("stuck_clock", on=False)
    seen: set[str | None] = set()

    def acked() -> bool:
        seen.add(last_tick(driver, "held"))
        return "msg-dblcheck-ack" in seen

    wait_until(acked)
    assert "msg-check-v2" in seen and seen <= {"msg-time", "msg-check-v2", "msg-dblcheck-ack"}
    fresh.set_mode("send_fail")
    driver.get(fresh.url + "send?phone=15552100003&text=doomed")
    wait_css(driver, send_icon("wds-ic-send-filled")).click()
    wait_until(lambda: last_tick(driver, "doomed") == "msg-failed")
    assert [d["text"] for d in fresh.delivered() if d["phone"] == "15552100003"] == ["held"]


@pytest.mark.parametrize(
    ("variant", "main", "icon"),
    [
        ("side_ids_renamed", "div[aria-label='Chatliste'][role='grid']", "wds-ic-send-filled"),
        ("send_icon_renamed", "#side #pane-side div[aria-label='Chatliste'][role='grid']", "ic-paper-plane"),
        ("unrecognized_main", "div[data-panel='chats']", "wds-ic-send-filled"),
    ],
)
def test_variants_combine_with_the_locale(
    driver: WebDriver, fresh: Simulator, variant: str, main: str, icon: str
) -> None:
    """German locale plus a variant: the variant's markup with German aria-labels, and sending still works."""
    fresh.set_variant(variant)
    fresh.set_mode("locale", lang="de")
    load(driver, fresh, main)
    shown = facts(driver)
    assert driver.execute_script("return document.documentElement.lang") == "de"
    assert shown["side"] is (variant == "send_icon_renamed") and not shown["any_chat_list_label"]
    phone = f"1555220{list(VARIANTS).index(variant):04d}"
    driver.get(fresh.url + f"send?phone={phone}&text=hallo%20{variant}")
    wait_css(driver, MARKUP[variant].compose)
    wait_css(driver, send_icon(icon, "Senden")).click()
    wait_until(lambda: [d["text"] for d in fresh.delivered() if d["phone"] == phone] == [f"hallo {variant}"])
