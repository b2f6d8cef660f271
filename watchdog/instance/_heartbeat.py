"""run/heartbeat.json: written by the worker's main loop (write_heartbeat), read by status, health, the API and
the alerts (read_heartbeat). The watchdog's liveness look at the file is watchdog/heartbeat_monitor.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from ._atomicfile import read_json_or_none, write_json_atomic


# The schema: the fields status, health, metrics and the API read. Every field is optional (a worker that has not
# got that far, or any `watchdog.worker_command`, leaves it out) and unknown fields pass through. _TOP and _SECTIONS
# below are its runtime check (tests/test_heartbeat_types.py keeps the two in step).
class WhatsAppSection(TypedDict, total=False):
    state: str
    connected: bool
    quality: str
    reconnect_attempts: int
    recent_reconnects: int
    browser_restarts: int
    restart_failures: int
    last_ok: float | None
    probe_ms: float | None
    profile_mib: float | None
    profile_mb: float | None
    session_max_mb: float | None
    needs_qr_scan: bool
    qr: str | None
    web_version: str | None
    fallback_roles: dict[str, Any]
    bad_selectors: list[Any]
    unknown_popup: list[Any] | None
    browser_rss_mib: float | None
    browser_age_h: float | None
    browser_recycles: int
    pairing_code: str | None
    pairing_state: str | None
    pairing_error: str | None


class SendingSection(TypedDict, total=False):
    pending: int
    stalled: bool
    failing_for_s: float | None
    consecutive_failures: int
    failing_step: str | None
    failing_role: str | None
    problem: str | None
    last_sent_at: float | None
    paced_until: float | None
    paced_by: str | None


class TokenPreview(TypedDict):
    count: int
    items: list[dict[str, str]]  # the first tokens added: id, symbol, chain


class TokensSection(TypedDict, total=False):
    active: int
    preview: TokenPreview


class OutboxSection(TypedDict, total=False):
    pending: int


class InboxSection(TypedDict, total=False):
    messages: int
    jobs_pending: int
    webhook_pending: int
    reading: int
    webhook: dict[str, Any]
    jobs: dict[str, Any]


class Heartbeat(TypedDict, total=False):
    """run/heartbeat.json (a float field may hold an int: JSON has one number type; a bool is never a number)."""

    pid: int
    seq: int
    ts: float
    started_at: float
    uptime_s: float
    rss_bytes: int
    tokens: TokensSection
    outbox: OutboxSection
    whatsapp: WhatsAppSection
    sending: SendingSection
    jobs: list[dict[str, Any]]  # one per job: name, runs, errors, consecutive_errors, ...
    notify: dict[str, Any]
    inbox: InboxSection
    invalid_fields: list[str]  # added by read_heartbeat: the known fields dropped for their type


_NUMBER = (int, float)
_OPT_NUMBER = (int, float, type(None))
_OPT_STR = (str, type(None))
# Heartbeat's fields with the types they may have. Any command may write the heartbeat (`watchdog.worker_command`):
# a field of another type is dropped and named in "invalid_fields"; unknown fields pass through.
_TOP: dict[str, tuple[type, ...]] = {
    "pid": (int,), "seq": (int,), "ts": _NUMBER, "started_at": _NUMBER, "uptime_s": _NUMBER, "rss_bytes": (int,),
    "tokens": (dict,), "outbox": (dict,), "whatsapp": (dict,), "sending": (dict,), "jobs": (list,), "notify": (dict,),
    "inbox": (dict,),
}  # fmt: skip
_SECTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "whatsapp": {
        "state": (str,), "connected": (bool,), "quality": (str,), "reconnect_attempts": (int,),
        "recent_reconnects": (int,), "browser_restarts": (int,), "restart_failures": (int,), "last_ok": _OPT_NUMBER,
        "probe_ms": _OPT_NUMBER, "profile_mib": _OPT_NUMBER, "profile_mb": _OPT_NUMBER,
        "session_max_mb": _OPT_NUMBER, "needs_qr_scan": (bool,), "qr": _OPT_STR, "web_version": _OPT_STR,
        "fallback_roles": (dict,), "bad_selectors": (list,), "unknown_popup": (list, type(None)),
        "browser_rss_mib": _OPT_NUMBER, "browser_age_h": _OPT_NUMBER, "browser_recycles": (int,),
        "pairing_code": _OPT_STR, "pairing_state": _OPT_STR, "pairing_error": _OPT_STR,
    },
    "sending": {
        "pending": (int,), "stalled": (bool,), "failing_for_s": _OPT_NUMBER, "consecutive_failures": (int,),
        "failing_step": _OPT_STR, "failing_role": _OPT_STR, "problem": _OPT_STR, "last_sent_at": _OPT_NUMBER,
        "paced_until": _OPT_NUMBER, "paced_by": _OPT_STR,
    },
    "tokens": {"active": (int,), "preview": (dict,)},
    "outbox": {"pending": (int,)},
    "inbox": {"messages": (int,), "jobs_pending": (int,), "webhook_pending": (int,), "reading": (int,),
              "webhook": (dict,), "jobs": (dict,)},
}  # fmt: skip


def _typed(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance, except that a bool is no number (JSON true is not 1 here)."""
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def clean_heartbeat(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without the known fields whose type is wrong; those are listed in "invalid_fields"."""
    out = dict(data)
    invalid: list[str] = []
    for key, types in _TOP.items():
        if key in out and not _typed(out[key], types):
            invalid.append(key)
            del out[key]
    for name, fields in _SECTIONS.items():
        section = out.get(name)
        if isinstance(section, dict):
            bad = [key for key, types in fields.items() if key in section and not _typed(section[key], types)]
            if bad:
                out[name] = {k: v for k, v in section.items() if k not in bad}
                invalid.extend(f"{name}.{key}" for key in bad)
    if isinstance(out.get("jobs"), list):
        out["jobs"] = [job for job in out["jobs"] if isinstance(job, dict)]
    if invalid:
        out["invalid_fields"] = invalid
    return out


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    """The heartbeat as written, or None when missing, truncated or not a JSON object; known fields of a wrong
    type are dropped and named in "invalid_fields" (see clean_heartbeat)."""
    data = read_json_or_none(path)
    return clean_heartbeat(data) if isinstance(data, dict) else None


def write_heartbeat(path: Path, payload: dict[str, Any]) -> None:
    """Atomically replace the heartbeat (not fsynced: losing one to a power cut is harmless)."""
    write_json_atomic(path, payload, durable=False)
