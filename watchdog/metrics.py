"""GET /metrics: Prometheus text exposition format 0.0.4, written by hand (no client library in the watchdog).

Every figure comes from what the watchdog already has: its supervisor (restarts, whether the worker runs with a
fresh heartbeat) and the last heartbeat (whatsapp, outbox and tokens sections). Counters that live in the worker
(browser restarts, reconnects) count from that worker's start; the message counters are the outbox's counts of
sent and failed messages, so they survive worker restarts.

Served without the rest of the API (api_server's light path): this module imports only what the idle watchdog has
loaded already, and the contract's small heartbeat reader, so a Prometheus scrape every few seconds does not grow
the watchdog (status.py alone is ~0.9 MB).
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Any

from ._http import Response
from .instance import read_heartbeat
from .states import WatchdogState

if TYPE_CHECKING:
    from .instance import Home
    from .supervisor import Supervisor

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# worker/session/states.py WhatsAppState values (not imported: the watchdog never loads the session), "unknown"
# when no worker reports one.
WHATSAPP_STATES = (
    "starting", "loading", "qr", "ready", "offline", "conflict", "logged_out", "crashed", "browser_dead",
    "unrecognized", "disabled", "unknown",
)  # fmt: skip


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _section(beat: dict[str, Any], name: str) -> dict[str, Any]:
    section = beat.get(name)
    return section if isinstance(section, dict) else {}


def _format(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples: list[tuple[str, float | None]]) -> None:
        """HELP and TYPE, then each (labels, value) sample with a value (None: left out, e.g. no heartbeat yet)."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if value is not None:
                self.lines.append(f"{name}{labels} {_format(value)}")


def render_metrics(*, up: bool, restarts_total: int, heartbeat: dict[str, Any] | None, age_s: float | None) -> bytes:
    """The exposition text: `up` is the watchdog running a worker whose heartbeat is fresh; `heartbeat` the last one
    read (None: none yet); `age_s` its age in seconds."""
    beat = heartbeat or {}
    wa, outbox, tokens = (_section(beat, name) for name in ("whatsapp", "outbox", "tokens"))
    state = str(wa.get("state") or "unknown") if up else "unknown"
    states = WHATSAPP_STATES if state in WHATSAPP_STATES else (*WHATSAPP_STATES, state)
    out = _Writer()
    out.metric("continuity_up", "gauge", "1 when the watchdog runs a worker whose heartbeat is fresh.",
               [("", 1.0 if up else 0.0)])  # fmt: skip
    out.metric("continuity_worker_restarts_total", "counter", "Worker restarts by this watchdog.",
               [("", float(restarts_total))])  # fmt: skip
    out.metric("continuity_whatsapp_state", "gauge", "1 for WhatsApp's current state (unknown: no live worker).",
               [(f'{{state="{_label(name)}"}}', 1.0 if name == state else 0.0) for name in states])  # fmt: skip
    out.metric("continuity_whatsapp_ready", "gauge", "1 when WhatsApp is ready to send.",
               [("", 1.0 if state == "ready" else 0.0)])  # fmt: skip
    out.metric("continuity_messages_sent_total", "counter", "Messages in the outbox that were sent.",
               [("", _number(outbox.get("sent")))])  # fmt: skip
    out.metric("continuity_messages_failed_total", "counter", "Messages in the outbox that failed for good.",
               [("", _number(outbox.get("failed")))])  # fmt: skip
    out.metric("continuity_outbox_pending", "gauge", "Messages waiting to be sent.",
               [("", _number(outbox.get("pending")))])  # fmt: skip
    out.metric("continuity_tokens_active", "gauge", "Tracked tokens in the store.",
               [("", _number(tokens.get("active")))])  # fmt: skip
    out.metric("continuity_heartbeat_age_seconds", "gauge", "Seconds since the worker last wrote its heartbeat.",
               [("", None if age_s is None else round(age_s, 3))])  # fmt: skip
    out.metric("continuity_browser_restarts_total", "counter", "Browser restarts after failures (this worker).",
               [("", _number(wa.get("browser_restarts")))])  # fmt: skip
    out.metric("continuity_reconnects_total", "counter", "WhatsApp reconnect attempts (this worker).",
               [("", _number(wa.get("reconnect_attempts")))])  # fmt: skip
    return ("\n".join(out.lines) + "\n").encode("utf-8")


def metrics_response(home: Home, supervisor: Supervisor, *, wall_clock: Any = time.time) -> Response:
    """GET /metrics for `supervisor`: up when it runs a worker whose heartbeat is fresh (the /healthz rule)."""
    sup = supervisor
    up = sup.state is WatchdogState.RUNNING and sup.monitor.last_change is not None and not sup.monitor.is_stale()
    try:
        age: float | None = max(0.0, wall_clock() - os.stat(home.heartbeat_file).st_mtime)
    except OSError:
        age = None
    beat = read_heartbeat(home.heartbeat_file)
    body = render_metrics(up=up, restarts_total=sup.restarts_total, heartbeat=beat, age_s=age)
    return Response(200, body, CONTENT_TYPE)
