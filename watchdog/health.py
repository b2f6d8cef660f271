"""Health rules as pure functions: healthy / degraded / critical, with recommendations and the reasons.

Rules (each reason is reported):
- critical: the watchdog is not running, gave up (fatal) or spent its restart budget; WhatsApp logged out or its
  browser dead; browser restarts failing (3 or more in a row); the profile over `session_max_mb` (MiB).
- degraded: the worker restarting or stopping; no heartbeat yet, or one older than heartbeat_timeout; WhatsApp
  starting, loading, showing a QR, offline, in conflict or crashed; any reconnect in the last 5 minutes; probes
  slower than 2 s.
- sending (the heartbeat's "sending" section): messages waiting while sends keep failing ("stalled") is degraded,
  and critical after SEND_STALL_CRITICAL_S; ready is not healthy when nothing goes out.
- the page: WhatsApp showing a page this version does not recognize is critical; an unknown popup is degraded;
  a role found only through a fallback selector is a warning (it works, but the table needs updating).
- jobs (the heartbeat's "jobs" section): a job whose last JOB_FAILURES_DEGRADED runs or more all raised is
  degraded, and fix_job is a sentence naming it and its last error.
- recommendations: should_clear_session when browser restarts keep failing or the profile is over its limit;
  should_reconnect when offline, in conflict, crashed, or after 3+ reconnects in 5 minutes; needs_qr_scan when a
  QR code is waiting for a scan; fix_sending (a sentence naming the failing step and page role) when sending is
  stalled; check_page when the page is unrecognized.
"""

from __future__ import annotations

from typing import Any

HEALTHY, DEGRADED, CRITICAL = "healthy", "degraded", "critical"
_RANK = {HEALTHY: 0, DEGRADED: 1, CRITICAL: 2}

_WHATSAPP_CRITICAL = {"logged_out", "browser_dead", "unrecognized"}
_WHATSAPP_DEGRADED = {"starting", "loading", "qr", "offline", "conflict", "crashed"}
RESTART_FAILURES_CRITICAL = 3
SLOW_PROBE_MS = 2000.0
RECONNECTS_TO_RECOMMEND = 3
SEND_STALL_CRITICAL_S = 900.0
WEBHOOK_WARN_S = 300.0  # s of a failing inbox webhook before status warns
DRIFT_HELP = "if WhatsApp changed its page, see README 'WhatsApp changed its page: what to do'"
JOB_FAILURES_DEGRADED = 3  # runs in a row that raised


def _failing_jobs(heartbeat: dict[str, Any] | None) -> list[tuple[str, int, str]]:
    """(name, runs in a row, last error) of each job in the heartbeat's "jobs" section that keeps failing."""
    failing = []
    for job in (heartbeat or {}).get("jobs") or ():
        if not isinstance(job, dict):
            continue
        runs = job.get("consecutive_errors")
        if isinstance(runs, int) and runs >= JOB_FAILURES_DEGRADED:
            failing.append((str(job.get("name")), runs, str(job.get("last_error") or "no error text")[:200]))
    return failing


def _inbox_warnings(inbox: dict[str, Any]) -> list[str]:
    """The inbox's webhook failing for WEBHOOK_WARN_S or more (its messages wait; nothing is lost)."""
    hook = inbox.get("webhook")
    if not isinstance(hook, dict):
        return []
    failing = hook.get("failing_for_s")
    if not isinstance(failing, int | float) or isinstance(failing, bool) or failing < WEBHOOK_WARN_S:
        return []
    waiting = inbox.get("webhook_pending", "?")
    return [f"inbox webhook failing for {failing:.0f} s ({waiting} waiting): {hook.get('last_error') or 'no 2xx'}"]


def _profile_mib(wa: dict[str, Any]) -> float | None:
    """The profile's size in MiB (2**20 bytes, the trimmer's unit); an older worker's "profile_mb" (10**6) converted."""
    size = wa.get("profile_mib")
    if isinstance(size, int | float):
        return float(size)
    size = wa.get("profile_mb")
    return float(size) * 1e6 / 2**20 if isinstance(size, int | float) else None


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
    wa = (heartbeat or {}).get("whatsapp") or {}
    state = wa.get("state")
    if state in _WHATSAPP_CRITICAL:
        worse(CRITICAL, f"WhatsApp is {state.replace('_', ' ')}")
    elif state in _WHATSAPP_DEGRADED:
        worse(DEGRADED, f"WhatsApp is {state}")
    restart_failures = int(wa.get("restart_failures") or 0)
    if restart_failures >= RESTART_FAILURES_CRITICAL:
        worse(CRITICAL, f"the browser failed to start {restart_failures} times in a row")
    profile_mib, limit_mib = _profile_mib(wa), wa.get("session_max_mb")  # session_max_mb is in MiB
    over_limit = profile_mib is not None and isinstance(limit_mib, int | float) and profile_mib > limit_mib
    if over_limit:
        worse(CRITICAL, f"the browser profile is {profile_mib:.0f} MiB, over its {limit_mib:.0f} MiB limit")
    recent = int(wa.get("recent_reconnects") or 0)
    if recent:
        worse(DEGRADED, f"{recent} reconnect(s) in the last 5 minutes")
    probe_ms = wa.get("probe_ms")
    if probe_ms is not None and probe_ms > SLOW_PROBE_MS:
        worse(DEGRADED, f"probes are slow ({probe_ms:.0f} ms)")
    sending = (heartbeat or {}).get("sending") or {}
    fix_sending = None
    if sending.get("stalled"):
        failing_for = float(sending.get("failing_for_s") or 0.0)
        problem = sending.get("problem") or "sends keep failing"
        level_now = CRITICAL if failing_for >= SEND_STALL_CRITICAL_S else DEGRADED
        worse(level_now, f"messages are not going out ({sending.get('pending', 0)} waiting): {problem}")
        fix_sending = f"{problem}; {DRIFT_HELP}" if sending.get("failing_role") else problem
    warnings = [f"role {role} works only through {how}" for role, how in (wa.get("fallback_roles") or {}).items()]
    warnings += [
        f"heartbeat field {name} has the wrong type (ignored)" for name in (heartbeat or {}).get("invalid_fields") or ()
    ]
    warnings += [f"selector refused by the browser: {bad}" for bad in wa.get("bad_selectors") or ()]
    warnings += _inbox_warnings((heartbeat or {}).get("inbox") or {})
    popup = wa.get("unknown_popup")
    if popup:
        worse(DEGRADED, f"an unknown popup is open (buttons: {', '.join(map(str, popup))}); it is not clicked")
    failing_jobs = _failing_jobs(heartbeat)
    for name, runs, error in failing_jobs:
        worse(DEGRADED, f"job {name} failed {runs} runs in a row ({error})")
    recommendations = {
        "should_clear_session": restart_failures >= RESTART_FAILURES_CRITICAL or over_limit,
        "should_reconnect": state in ("offline", "conflict", "crashed") or recent >= RECONNECTS_TO_RECOMMEND,
        "needs_qr_scan": state in ("qr", "logged_out") or bool(wa.get("needs_qr_scan")),
        "fix_sending": fix_sending,
        "check_page": f"WhatsApp Web (version {wa.get('web_version') or 'unknown'}) shows a page this version does "
        f"not recognize: see logs/diagnostics/ and `continuity whatsapp inspect`; {DRIFT_HELP}"
        if state == "unrecognized"
        else None,
        "fix_job": "; ".join(
            f"job {name} fails on every run ({runs} in a row, last: {error}): fix the job or the data it reads; "
            "the traceback is in logs/worker.log"
            for name, runs, error in failing_jobs
        )
        or None,
    }
    return {"session_health": level, "reasons": reasons, "warnings": warnings, "recommendations": recommendations}
