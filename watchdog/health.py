"""Health rules as pure functions: healthy / degraded / critical, with recommendations and reasons."""

from __future__ import annotations

from typing import Any

HEALTHY, DEGRADED, CRITICAL = "healthy", "degraded", "critical"
_RANK = {HEALTHY: 0, DEGRADED: 1, CRITICAL: 2}

# WhatsApp states (DESIGN.md) and what they mean for health.
_WHATSAPP_CRITICAL = {"logged_out", "browser_dead"}
_WHATSAPP_DEGRADED = {"starting", "loading", "qr", "offline", "conflict", "crashed"}


def assess(
    *,
    watchdog_state: str | None,
    heartbeat: dict[str, Any] | None,
    heartbeat_age_s: float | None,
    heartbeat_timeout_s: float,
) -> dict[str, Any]:
    """Overall health from the watchdog's state and the worker's last heartbeat (ages in seconds)."""
    level = HEALTHY
    reasons: list[str] = []

    def worse(new: str, why: str) -> None:
        nonlocal level
        reasons.append(why)
        if _RANK[new] > _RANK[level]:
            level = new

    if watchdog_state is None:
        worse(CRITICAL, "the watchdog is not running")
    elif watchdog_state in ("fatal", "budget_spent"):
        worse(CRITICAL, f"the watchdog is {watchdog_state.replace('_', ' ')}")
    elif watchdog_state in ("backoff", "starting", "stopping"):
        worse(DEGRADED, f"the worker is {'restarting' if watchdog_state != 'stopping' else 'stopping'}")
    if watchdog_state is not None and heartbeat is None:
        worse(DEGRADED, "no heartbeat from the worker yet")
    elif heartbeat_age_s is not None and heartbeat_age_s > heartbeat_timeout_s:
        worse(DEGRADED, f"heartbeat is {heartbeat_age_s:.0f} s old")
    whatsapp = (heartbeat or {}).get("whatsapp") or {}
    wa_state = whatsapp.get("state")
    if wa_state in _WHATSAPP_CRITICAL:
        worse(CRITICAL, f"WhatsApp is {wa_state.replace('_', ' ')}")
    elif wa_state in _WHATSAPP_DEGRADED:
        worse(DEGRADED, f"WhatsApp is {wa_state}")
    recommendations = {
        "should_clear_session": False,
        "should_reconnect": wa_state in ("offline", "conflict", "crashed"),
        "needs_qr_scan": wa_state in ("qr", "logged_out"),
    }
    return {"session_health": level, "reasons": reasons, "recommendations": recommendations}
