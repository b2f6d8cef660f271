"""Pure session rules: page markers -> state, probe latency -> quality, and the recovery ladder (seconds)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from continuity.watchdog.instance import backoff_delay

from .selectors import CONFLICT_TEXTS, USE_HERE_LABELS
from .states import WhatsAppState

EXCELLENT_S, GOOD_S = 0.3, 1.0  # probe round trip below these: excellent, good; else poor


def is_conflict(markers: dict[str, Any]) -> bool:
    """The "open on another computer / in another window" popup: by its text, or a "Use here" button."""
    text = (markers.get("popup_text") or "").lower()
    labels = [str(label).strip().lower() for label in markers.get("popup_labels") or ()]
    return any(t in text for t in CONFLICT_TEXTS) or any(label in USE_HERE_LABELS for label in labels)


def classify(markers: dict[str, Any], *, was_linked: bool) -> WhatsAppState:
    """The state a probe's markers show. A QR after the session had been linked means logged out. A loaded page
    (no progress bar) showing none of the known screens is UNRECOGNIZED (the session waits before saying so)."""
    if is_conflict(markers):
        return WhatsAppState.CONFLICT
    if markers.get("main"):
        return WhatsAppState.OFFLINE if markers.get("offline") else WhatsAppState.READY
    if "post_logout=1" in (markers.get("url") or ""):
        return WhatsAppState.LOGGED_OUT
    if markers.get("qr") is not None or markers.get("qr_idle") or _linking_screen(markers):
        return WhatsAppState.LOGGED_OUT if was_linked else WhatsAppState.QR
    if markers.get("ready_state") == "complete" and not markers.get("loading"):
        return WhatsAppState.UNRECOGNIZED
    return WhatsAppState.LOADING


def _linking_screen(markers: dict[str, Any]) -> bool:
    """The phone-number linking screens (number entry, code) stand in for the QR: not linked yet."""
    return markers.get("link_code") is not None or bool(markers.get("link_phone_input"))


def quality(state: WhatsAppState, latency_s: float | None) -> str:
    """excellent / good / poor from the probe's round trip while ready; offline otherwise."""
    if state is not WhatsAppState.READY or latency_s is None:
        return "offline"
    if latency_s < EXCELLENT_S:
        return "excellent"
    return "good" if latency_s < GOOD_S else "poor"


DEAD_MARKERS = (
    "invalid session id",
    "chrome not reachable",
    "cannot connect to chrome",
    "session deleted",
    "tab crashed",
    "no such window",
    "target window already closed",
    "disconnected",
    "connection refused",
    "max retries exceeded",
    "session not created",
    "remote end closed connection",
)


def is_browser_dead(error: BaseException) -> bool:
    """True for errors that mean the browser or chromedriver is gone (a restart is the only cure)."""
    text = f"{type(error).__name__}: {error}".lower()
    return any(marker in text for marker in DEAD_MARKERS)


def is_hang(error: BaseException) -> bool:
    """True for a call that did not return in time (a frozen page, a hung renderer)."""
    text = f"{type(error).__name__}: {error}".lower()
    return "timeout" in text or "timed out" in text


LADDER = ("recheck", "reload", "reopen", "restart_browser")


@dataclass
class RecoveryLadder:
    """Consecutive failures climb: re-check -> reload -> reopen WhatsApp -> restart the browser, with
    exponential backoff (`first_s` doubling to `cap_s`, full jitter on the upper half) between attempts;
    `stable_s` of uninterrupted health resets it."""

    first_s: float
    cap_s: float
    stable_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    healthy_since: float | None = None

    def delay(self) -> float:
        return backoff_delay(attempt=self.failures, first_s=self.first_s, cap_s=self.cap_s, rng=self.rng)

    def on_failure(self, *, now: float, dead: bool = False) -> tuple[str, float]:
        """Record a failure; returns (step to take, seconds to wait before taking it)."""
        self.failures += 1
        self.healthy_since = None
        step = "restart_browser" if dead else LADDER[min(self.failures, len(LADDER)) - 1]
        wait = 0.0 if (dead and self.failures == 1) else self.delay()
        return step, wait

    def on_ok(self, *, now: float) -> bool:
        """Record a healthy probe; returns True when this reset the ladder (stable for `stable_s`)."""
        if self.healthy_since is None:
            self.healthy_since = now
        if self.failures and now - self.healthy_since >= self.stable_s:
            self.failures = 0
            return True
        return False
