"""One WhatsApp Web session kept up 24/7: probe, recover, keep the login durable, send from the outbox."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import Config, EventLog, Home, read_json_or_none, write_json_atomic

from ..delivery import OutboxSender, SendOutcome
from ..pacing import pacer_from_outbox
from . import rules
from .actions import Handler, session_action_handlers
from .backup import SessionBackups
from .browser_life import BrowserLife
from .drift import PageWatch
from .linking import PhoneLinking, link_phone_handler
from .page import Page, PageHang
from .page_send import send_message
from .qr import clear_qr, write_qr
from .recycle import RecyclePolicy
from .security import report_permission_problems
from .states import WhatsAppState

logger = logging.getLogger("continuity.whatsapp")

NAVIGATION_GRACE_S = 15.0  # s after opening a chat during which a loading page still counts as ready
LIVENESS_CHECK_S = 1.0  # between probes, the browser process is checked this often (no WebDriver call)
LINKING_PROBE_S = 0.25  # s between probes while linking by phone number (the code is printed as soon as shown)
PROFILE_SIZE_EVERY_S = 300.0  # the profile's size (heartbeat whatsapp.profile_mib) is walked at most this often


class WhatsAppSession(BrowserLife):
    """Drives one browser on the instance's profile. `turn` is called by the worker loop every pass."""

    def __init__(
        self,
        home: Home,
        config: Config,
        *,
        events: EventLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        launcher: Callable[..., Any] | None = None,
    ) -> None:
        self.home = home
        self.config = config
        self.wa = config.whatsapp
        self.events = events or EventLog(home.events_file, source="worker")
        self._clock = clock
        self._wall = wall_clock
        self._launcher = launcher
        self.browser: Any = None
        self.page: Page | None = None
        self.state = WhatsAppState.STARTING
        self.quality = "offline"
        self.ladder = rules.RecoveryLadder(first_s=self.wa.reconnect_backoff[0], cap_s=self.wa.reconnect_backoff[1])
        self.recent_reconnects = rules.RecentCounter(window_s=300.0, clock=clock)
        self.reconnect_attempts = 0
        self.browser_restarts = 0
        self.restart_failures = 0
        self.last_ok: float | None = None
        self.connected_since: float | None = None
        self.probe_s: float | None = None
        self.qr_payload: str | None = None
        self._next_probe = 0.0
        self._next_action_at = 0.0
        self._pending_step: str | None = None
        self._state_since = clock()
        self._navigated_at = -1e9
        self._alive: Callable[[], None] = lambda: None  # the worker loop's beat_if_due, once attached
        self._profile_size_at: float | None = None
        self._profile_mib_value: float | None = None
        self.on_connected: list[Callable[[], None]] = []
        self.on_disconnected: list[Callable[[str], None]] = []
        self.on_reconnecting: list[Callable[[int], None]] = []
        self.on_qr: list[Callable[[str], None]] = []
        self.sender: OutboxSender | None = None
        self.backups = SessionBackups(home, config.session, events=self.events, clock=clock, wall_clock=wall_clock)
        self.watch = PageWatch(home, self.wa, events=self.events, clock=clock, wall_clock=wall_clock)
        self.linking = PhoneLinking(self.events, clock=clock)  # `whatsapp link --phone`: the code flow
        self.recycle = RecyclePolicy.for_config(self.wa, clock=clock)

    # -- wiring -------------------------------------------------------------------------------------------
    def attach(self, loop: Any, *, outbox: Any, actions: Any) -> None:
        """Add this session's turns, heartbeat section and actions to a worker loop."""
        released = outbox.release_claims(except_owner=f"worker-{os.getpid()}")
        if released:
            self.events.emit("outbox_claims_released", count=released)
        sender = OutboxSender(
            outbox,
            self,
            min_interval_s=self.wa.send_min_interval,
            events=self.events,
            stall_after_s=self.wa.send_stall_after,
            pacer=pacer_from_outbox(self.wa, outbox),  # sending limits; the day's count survives a restart
        )
        self.sender = sender
        loop.turns.extend([self.turn, sender])
        self._alive = loop.beat_if_due
        loop.status_providers.append(lambda: {"whatsapp": self.status(), "sending": sender.status()})
        loop.news_sources.append(self.news)
        for name, handler in self.action_handlers().items():
            actions.register(name, handler)
        report_permission_problems(self.home, self.config, self.events)  # "security_warning" events, once

    @property
    def linked_file(self) -> Path:
        return self.home.linked_file

    def was_linked(self) -> bool:
        return self.linked_file.exists()

    # -- the turn -----------------------------------------------------------------------------------------
    def turn(self, _loop: Any = None) -> float | None:
        """Launch, probe or recover as due; returns seconds until the session wants the next pass."""
        now = self._clock()
        if now < self._next_action_at:
            return min(self._next_action_at - now, LIVENESS_CHECK_S)
        if self._pending_step is not None:
            step, self._pending_step = self._pending_step, None
            self._recover(step)
            self._next_probe = self._clock()
        if self.browser is None:
            self._start_browser()
            return 0.0 if self.browser is not None else max(0.0, self._next_action_at - self._clock())
        if not self._browser_alive():
            self._failure(WhatsAppState.BROWSER_DEAD, "the browser process is gone", dead=True)
            return 0.0
        if self._recycle_if_due():  # over its memory or age limit, at a quiet moment: a clean restart
            return 0.0
        if self._clock() >= self._next_probe:
            self.probe()
            waiting_s = LINKING_PROBE_S if self.linking.active else 1.0  # the code flow's screens change fast
            ready = self.state is WhatsAppState.READY
            self._next_probe = self._clock() + (self.wa.probe_interval if ready else waiting_s)
        return max(0.0, min(self._next_probe - self._clock(), LIVENESS_CHECK_S))

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
            self.backups.on_ready()
            self.linking.on_ready()
            if previous in (WhatsAppState.QR, WhatsAppState.LOGGED_OUT) or not self.was_linked():
                self._make_login_durable()
            elif self.backups.due():  # periodic backup: Chromium must be closed for a consistent copy
                self._restart_browser(reason="session backup", counted=False, while_closed=self._backup_closed)
            self.last_ok = self._wall()
            if self.ladder.on_ok(now=self._clock()):
                self.events.emit("whatsapp_stable", after_failures=True)
        elif state in (WhatsAppState.QR, WhatsAppState.LOGGED_OUT):
            if state is WhatsAppState.LOGGED_OUT and self._restore_login(self.backups.for_lost_login(markers)):
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
            self._restart_browser(reason="page not recognized")

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
            clear_qr(self.home.session_dir)
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
            path = write_qr(self.home.session_dir, payload)
            if first:
                self.events.emit("qr_needed", state=self.state.value, png=str(path))
            self._call(self.on_qr, payload)

    def _make_login_durable(self) -> None:
        """A new login lives only in Chromium's memory for a few seconds: a clean restart writes it to disk."""
        self.events.emit("login_durability", step="restarting browser cleanly")
        backup = functools.partial(self._backup_closed, reason="paired")
        self._restart_browser(reason="make the new login durable", counted=False, while_closed=backup)
        write_json_atomic(self.linked_file, {"linked_at": self._wall()}, mode=0o600)
        self.events.emit("login_durable")

    # -- failures and the recovery ladder -----------------------------------------------------------------
    def _failure(self, state: WhatsAppState, reason: str, *, dead: bool = False) -> None:
        self._set_state(state, reason)
        self.quality = "offline"
        step, wait = self.ladder.on_failure(now=self._clock(), dead=dead)
        self.reconnect_attempts += 1
        self.recent_reconnects.add()
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
                self._restart_browser(reason="recovery")
        except Exception as exc:  # the next probe judges the result
            logger.warning("recovery step %s failed: %s", step, exc)

    # -- sending (MessageSender) --------------------------------------------------------------------------
    def ready(self) -> bool:
        return bool(
            self.state is WhatsAppState.READY and self.page is not None and self._clock() >= self._next_action_at
        )

    def send(self, message: dict[str, Any], note: Callable[..., Any]) -> SendOutcome:
        assert self.page is not None
        self._navigated_at = self._clock()  # /send reloads the page: "loading" for a moment is expected
        try:
            return send_message(self.page, message, note, ack_timeout_s=self.wa.send_ack_timeout)
        finally:
            self._next_probe = self._clock()

    # -- status and actions -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The heartbeat's "whatsapp" section (DESIGN.md)."""
        return {
            "state": self.state.value,
            "connected": self.state is WhatsAppState.READY,
            "quality": self.quality,
            "reconnect_attempts": self.reconnect_attempts,
            "recent_reconnects": self.recent_reconnects.count(),
            "browser_restarts": self.browser_restarts,
            "restart_failures": self.restart_failures,
            "last_ok": self.last_ok,
            "probe_ms": None if self.probe_s is None else round(self.probe_s * 1000, 1),
            "connected_for_s": None if self.connected_since is None else round(self._clock() - self.connected_since, 1),
            "linked": self.was_linked(),
            "needs_qr_scan": self.state in (WhatsAppState.QR, WhatsAppState.LOGGED_OUT),
            "qr": self.qr_payload,
            "profile_mib": self._profile_mib(),  # MiB, the unit of session_max_mb and of the trimmer
            "session_max_mb": self.wa.session_max_mb,
            "session_backups": self.backups.status(),
            **self.recycle.status(),  # browser_rss_mib (MiB), browser_age_h (hours), browser_recycles
            **self.watch.status(self.page),
            **self.linking.status(),  # pairing_code, pairing_state, pairing_error
        }

    def news(self) -> tuple[object, ...]:
        """What the heartbeat reports at once when it changes (the rest waits for heartbeat_interval)."""
        return (
            self.state,
            self.quality,
            self.qr_payload,
            self.reconnect_attempts,
            self.browser_restarts,
            self.recycle.recycles,
            self.watch.version,
            self.watch.unknown_popup,
            self.sender.health.stalled if self.sender else None,
            self.sender.paced_until() if self.sender else None,
            self.linking.news(),
        )

    def _profile_mib(self) -> float | None:
        """The profile's size in MiB, measured at most every PROFILE_SIZE_EVERY_S seconds (a directory walk)."""
        now = self._clock()
        if self._profile_size_at is None or now - self._profile_size_at >= PROFILE_SIZE_EVERY_S:
            self._profile_size_at = now
            total = 0
            for root, _dirs, files in os.walk(self.home.profile_dir):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(root, name)).st_size
            self._profile_mib_value = round(total / 2**20, 1)
        return self._profile_mib_value

    def action_handlers(self) -> dict[str, Handler]:
        """The control actions this session answers (run/control/, the CLI and the API)."""
        return {**session_action_handlers(self), "link-phone": link_phone_handler(self)}


def read_linked(home: Home) -> dict[str, Any] | None:
    """session/linked.json: when this profile was last linked (None if never)."""
    data = read_json_or_none(home.linked_file)
    return data if isinstance(data, dict) else None
