"""One WhatsApp Web session kept up 24/7, wired into the worker loop: the turn (launch, probe, recover, recycle as
due), the heartbeat's whatsapp section, sending from the outbox, the control actions. The parts: machine.py (the
page's states and the recovery ladder, the base class), browser_slot.py (the browser), login.py (linked.json,
durability, backups, automatic restore)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from continuity.watchdog.instance import directory_size

from ..delivery import OutboxSender, SendOutcome
from ..pacing import pacer_from_outbox
from .actions import Handler, session_action_handlers
from .linking import link_phone_handler
from .login import read_linked
from .machine import PageMachine
from .page_send import send_message
from .security import report_permission_problems
from .states import WhatsAppState

__all__ = ["WhatsAppSession", "read_linked"]

logger = logging.getLogger("continuity.whatsapp")

LIVENESS_CHECK_S = 1.0  # between probes, the browser process is checked this often (no WebDriver call)
LINKING_PROBE_S = 0.25  # s between probes while linking by phone number (the code is printed as soon as shown)
PROFILE_SIZE_EVERY_S = 300.0  # the profile's size (heartbeat whatsapp.profile_mib) is walked at most this often


class WhatsAppSession(PageMachine):
    """Drives one browser on the instance's profile (PageMachine's arguments). `turn` is called by the worker loop
    every pass."""

    sender: OutboxSender | None = None  # the outbox's sender, once attached to a worker loop
    _next_probe = 0.0  # the turn's next probe (monotonic s)
    _profile_size_at: float | None = None
    _profile_mib_value: float | None = None

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
        self.slot.beat = loop.beat_if_due
        loop.status_providers.append(lambda: {"whatsapp": self.status(), "sending": sender.status()})
        loop.news_sources.append(self.news)
        for name, handler in self.action_handlers().items():
            actions.register(name, handler)
        report_permission_problems(self.home, self.config, self.events)  # "security_warning" events, once

    def action_handlers(self) -> dict[str, Handler]:
        """The control actions this session answers (run/control/, the CLI and the API)."""
        return {**session_action_handlers(self), "link-phone": link_phone_handler(self)}

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
            self.slot.start()
            return 0.0 if self.browser is not None else max(0.0, self._next_action_at - self._clock())
        if not self.slot.alive():
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

    def probe_soon(self) -> None:
        """Probe at the next turn (not after the probe interval)."""
        self._next_probe = 0.0

    # -- recycling (recycle.py): a clean restart when the browser's memory or age is over its limit -----------
    def _recycle_if_due(self) -> bool:
        """Measure the browser's tree when due (psutil, every RSS_MEASURE_EVERY_S s); when a limit is crossed at a
        quiet moment, restart it cleanly, login kept (not a failure: `browser_recycles`, not `browser_restarts`).
        Called from the turn, never during a send. True when the browser was restarted."""
        policy = self.recycle
        if policy.measure_due():
            policy.observe_rss(self.slot.tree_rss_mib())
        due = policy.due(ready=self.ready() and self._pending_step is None, sends_waiting=self._sends_waiting)
        if due is None:
            return False
        policy.recycling()
        logger.info("recycling the browser (%s: %s)", due.reason, due.details)
        self.events.emit("browser_recycled", reason=due.reason, count=policy.recycles, **due.details)
        backup = self.login.backup_closed if self.backups.due() else None  # due anyway: taken while it is closed
        self.slot.restart(reason=f"recycle ({due.reason})", counted=False, while_closed=backup)
        self._next_probe = self._clock()  # see the new page at once (no "starting" for a probe interval)
        return True

    def _sends_waiting(self) -> bool:
        return self.sender is not None and self.sender.outbox.open_count() > 0

    # -- sending (MessageSender) --------------------------------------------------------------------------
    def send(self, message: dict[str, Any], note: Callable[..., Any]) -> SendOutcome:
        assert self.page is not None
        self._navigated_at = self._clock()  # /send reloads the page: "loading" for a moment is expected
        try:
            return send_message(self.page, message, note, ack_timeout_s=self.wa.send_ack_timeout)
        finally:
            self._next_probe = self._clock()

    # -- status -----------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The heartbeat's "whatsapp" section (DESIGN.md)."""
        return {
            "state": self.state.value,
            "connected": self.state is WhatsAppState.READY,
            "quality": self.quality,
            "reconnect_attempts": self.reconnect_attempts,
            "recent_reconnects": self.recent_reconnects.count(self._clock()),
            "browser_restarts": self.browser_restarts,
            "restart_failures": self.slot.failures,
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
            self._profile_mib_value = round(directory_size(self.home.profile_dir) / 2**20, 1)
        return self._profile_mib_value

    def close(self) -> None:
        """Close the browser cleanly (the worker is stopping)."""
        self.slot.close()
