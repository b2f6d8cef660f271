"""The worker's first heartbeat, written with nothing but the standard library before anything else loads."""

from __future__ import annotations

import contextlib
import json
import os
import time


def write_starting_heartbeat() -> None:
    """Write run/heartbeat.json with state "starting" (atomic replace; skipped when no path is known)."""
    path = os.environ.get("CONTINUITY_HEARTBEAT")
    if not path:
        return
    now = time.time()
    payload = {
        "pid": os.getpid(),
        "seq": 0,
        "ts": now,
        "started_at": now,
        "uptime_s": 0.0,
        "whatsapp": {"state": "starting", "connected": False},
    }
    tmp = f"{path}.{os.getpid()}.starting"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
