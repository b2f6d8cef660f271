"""The page state machine of a WhatsApp session: probe the page, classify it (rules.py), act on the state (a QR
shown, a login made durable or restored, a conflict taken over, an unrecognized page reported) and climb the
recovery ladder on failures (reload, reopen, restart the browser: the BrowserSlot). The base of WhatsAppSession
(session.py), which adds the worker loop's wiring: the turn, the heartbeat, sending, the control actions."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from continuity.watchdog.instance import Config, EventLog, Home, SlidingWindow

from . import rules
from .backup import SessionBackups
from .browser_slot import BrowserSlot
from .drift import PageWatch
from .linking import PhoneLinking
from .login import LoginKeeper
from .page import Page, PageHang
from .qr import clear_qr, write_qr
from .recycle import RecyclePolicy
from .states import WhatsAppState

logger = logging.getLogger("continuity.whatsapp")

NAVIGATION_GRACE_S = 15.0  # s after opening a chat during which a loading page still counts as ready
RECENT_RECONNECTS_S = 300.0  # the window of the heartbeat's whatsapp.recent_reconnects


class PageMachine:
    """The states of one WhatsApp Web page on `slot`'s browser; `probe()` reads the page once and acts."""

    def __init__(
        self,
        home: Home,
        config: Config,
        *,
        events: EventLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        launcher: Callable[..., Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.home = home
        self.config = config
        self.wa = config.whatsapp
        self.events = events or EventLog(home.events_file, source="worker")
        self._clock = clock
        self._wall = wall_clock
        rng = rng or random.Random()
        self.state = WhatsAppState.STARTING
        self.quality = "offline"
        first_s, cap_s = self.wa.reconnect_backoff
        self.ladder = rules.RecoveryLadder(first_s=first_s, cap_s=cap_s, rng=rng)
        self.recent_reconnects = SlidingWindow(window_s=RECENT_RECONNECTS_S)  # times on `clock`
        self.reconnect_attempts = 0
        self.last_ok: float | None = None
        self.connected_since: float | None = None
        self.probe_s: float | None = None
        self.qr_payload: str | None = None
        self._next_action_at = 0.0  # no launch, probe or recovery step before this (a backoff)
        self._pending_step: str | None = None  # the recovery step due at _next_action_at
        self._state_since = clock()
        self._navigated_at = -1e9
        self.on_connected: list[Callable[[], None]] = []
        self.on_disconnected: list[Callable[[str], None]] = []
        self.on_reconnecting: list[Callable[[int], None]] = []
        self.on_qr: list[Callable[[str], None]] = []
        self.slot = BrowserSlot(
            home,
            config,
            events=self.events,
            recycle=RecyclePolicy.for_config(self.wa, clock=clock),
            on_starting=lambda: self._set_state(WhatsAppState.STARTING),
            on_start_failed=self._start_failed,
            launcher=launcher,
            rng=rng,
        )
        backups = SessionBackups(home, config.session, events=self.events, clock=clock, wall_clock=wall_clock)
        self.login = LoginKeeper(backups, self.slot)
        self.watch = PageWatch(home, self.wa, events=self.events, clock=clock, wall_clock=wall_clock)
        self.linking = PhoneLinking(self.events, clock=clock)  # `whatsapp link --phone`: the code flow

    # -- the parts, as the heartbeat, the actions and tests read them ----------------------------------------
    @property
    def browser(self) -> Any:
        return self.slot.browser

    @property
    def page(self) -> Page | None:
        return self.slot.page

    @property
    def browser_restarts(self) -> int:
        return self.slot.restarts

    @property
    def recycle(self) -> RecyclePolicy:
        return self.slot.recycle

    @recycle.setter
    def recycle(self, policy: RecyclePolicy) -> None:
        self.slot.recycle = policy

    @property
    def backups(self) -> SessionBackups:
        return self.login.backups

    def was_linked(self) -> bool:
        return self.login.was_linked()

    def ready(self) -> bool:
        """Ready to send: the main screen shows and no recovery step is waiting."""
        return bool(
            self.state is WhatsAppState.READY and self.page is not None and self._clock() >= self._next_action_at
        )

    # -- probe -> state -> action -------------------------------------------------------------------------
    def probe(self) -> WhatsAppState:
        """Read the page once and act on what it shows; returns the state."""
        assert self.page is not None
        started = self._clock()
        try:
            markers = self.page.probe()
        except Exception as exc:
            dead = rules.is_browser_dead(exc)
            hang = isinstance(exc, PageHang) or rules.is_hang(exc)
            state = WhatsAppState.BROWSER_DEAD if dead else WhatsAppState.CRASHED
            self._failure(
                state, f"{type(exc).__name__}: {str(exc)[:200]}", dead=dead or (hang and self.ladder.failures >= 1)
            )
            return self.state
        self.probe_s = self._clock() - started
        self.watch.observe_version(markers.get("version"))
        state = rules.classify(markers, was_linked=self.was_linked())
        if state is not WhatsAppState.UNRECOGNIZED and self.watch.unrecognized_since is not None:
            self.watch.recognized()
        self.watch.observe_popup(markers, known=state is WhatsAppState.CONFLICT)
        self._handle(state, markers)
        return self.state

    def _handle(self, state: WhatsAppState, markers: dict[str, Any]) -> None:
        previous = self.state
        if state is WhatsAppState.READY:
            self._set_state(state)
            self.login.on_ready()
            self.linking.on_ready()
            if previous in (WhatsAppState.QR, WhatsAppState.LOGGED_OUT) or not self.was_linked():
                self.login.make_durable()
            elif self.backups.due():  # periodic backup: Chromium must be closed for a consistent copy
                self.login.back_up(reason="periodic")
            self.last_ok = self._wall()
            if self.ladder.on_ok(now=self._clock()):
                self.events.emit("whatsapp_stable", after_failures=True)
        elif state in (WhatsAppState.QR, WhatsAppState.LOGGED_OUT):
            if state is WhatsAppState.LOGGED_OUT and self.login.restore_lost(markers):
                return  # the login was lost (profile deleted, replaced, corrupt): a backup was put back
            self._set_state(state)
            self._show_qr(markers)
            self.linking.step(self.page, markers)  # linking by phone number, when asked
        elif state is WhatsAppState.CONFLICT:
            self._set_state(state, "open on another computer, browser or tab")
            if self.wa.takeover_on_conflict and self.page is not None:
                clicked = self.page.click_use_here()  # the button labelled "Use here", never one by position
                self.events.emit("conflict_taken_over", clicked=clicked)
        elif state is WhatsAppState.OFFLINE:
            self._set_state(state, "computer or phone not connected")
        elif (
            self.state is WhatsAppState.READY
            and self._clock() - self._navigated_at < NAVIGATION_GRACE_S
            and not (state is WhatsAppState.UNRECOGNIZED and self.watch.unrecognized_for_long())
        ):
            return  # our own navigation (opening a chat) reloads the page: still ready (the unrecognized clock runs)
        elif state is WhatsAppState.UNRECOGNIZED:
            self._unrecognized(markers)
        elif state is WhatsAppState.LOADING:
            self._set_state(state)
            if self._clock() - self._state_since > self.wa.loading_timeout:
                self._failure(WhatsAppState.LOADING, f"still loading after {self.wa.loading_timeout:g} s")
        self.quality = rules.quality(self.state, self.probe_s)

    def _unrecognized(self, markers: dict[str, Any]) -> None:
        """A loaded page with no known screen: loading for `unrecognized_after` s, then reported, with at most
        one browser restart per 10 minutes (the heartbeat goes on: the watchdog has nothing to fix)."""
        if not self.watch.unrecognized_for_long():
            if self.state is not WhatsAppState.UNRECOGNIZED:
                self._set_state(WhatsAppState.LOADING, "page loaded, no known screen yet")
            return
        self._set_state(WhatsAppState.UNRECOGNIZED, "the page shows none of the known screens")
        self.quality = "offline"
        self.watch.report_unrecognized(self.page, markers)
        if self.watch.may_restart():
            self.slot.restart(reason="page not recognized")

    # -- states, events, callbacks ------------------------------------------------------------------------
    def _set_state(self, state: WhatsAppState, reason: str = "") -> None:
        if state is self.state:
            return
        old, self.state = self.state, state
        self._state_since = self._clock()
        logger.info("whatsapp %s -> %s %s", old.value, state.value, reason)
        self.events.emit("whatsapp_state", old=old.value, new=state.value, reason=reason)
        if state is WhatsAppState.READY:
            self.connected_since = self._clock()
            clear_qr(self.home)
            self.qr_payload = None
            self.events.emit("whatsapp_connected")
            self._call(self.on_connected)
        elif old is WhatsAppState.READY:
            self.connected_since = None
            self.events.emit("whatsapp_disconnected", reason=reason or state.value)
            self._call(self.on_disconnected, reason or state.value)
        if state is WhatsAppState.LOGGED_OUT:
            self.events.emit("logged_out")

    def _call(self, callbacks: list[Callable[..., None]], *args: Any) -> None:
        for callback in callbacks:
            try:
                callback(*args)
            except Exception:
                logger.exception("a session callback failed")

    def _show_qr(self, markers: dict[str, Any]) -> None:
        payload = markers.get("qr")
        if markers.get("qr_idle") and self.page is not None:
            self.page.click("qr_reload")  # keep a fresh QR available for whoever scans later
            self.events.emit("qr_reloaded")
        if payload and payload != self.qr_payload:
            first = self.qr_payload is None
            self.qr_payload = payload
            path = write_qr(self.home, payload)
            if first:
                self.events.emit("qr_needed", state=self.state.value, png=str(path))
            self._call(self.on_qr, payload)

    # -- failures and the recovery ladder -----------------------------------------------------------------
    def _start_failed(self, wait_s: float) -> None:
        self._set_state(WhatsAppState.BROWSER_DEAD, "cannot start the browser")
        self._next_action_at = self._clock() + wait_s

    def _failure(self, state: WhatsAppState, reason: str, *, dead: bool = False) -> None:
        self._set_state(state, reason)
        self.quality = "offline"
        step, wait = self.ladder.on_failure(now=self._clock(), dead=dead)
        self.reconnect_attempts += 1
        self.recent_reconnects.add(self._clock())
        logger.warning("whatsapp %s (%s): %s in %.1f s", state.value, reason, step, wait)
        self.events.emit(
            "whatsapp_reconnecting", attempt=self.ladder.failures, step=step, wait_s=round(wait, 3), reason=reason
        )
        self._call(self.on_reconnecting, self.ladder.failures)
        self._pending_step = step
        self._next_action_at = self._clock() + wait

    def _recover(self, step: str) -> None:
        try:
            if step == "reload" and self.page is not None:
                self.page.reload()
            elif step == "reopen" and self.page is not None:
                self.page.open()
            elif step == "restart_browser":
                self.slot.restart(reason="recovery")
        except Exception as exc:  # the next probe judges the result
            logger.warning("recovery step %s failed: %s", step, exc)
