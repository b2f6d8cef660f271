"""The worker's first heartbeat, written before anything else loads (not even json: it costs ~10 ms at startup)."""

from __future__ import annotations

import os
import time


def starting_heartbeat_text(pid: int, now: float) -> str:
    """The "starting" heartbeat as JSON text (numbers only, so no escaping is needed)."""
    return (
        f'{{"pid": {pid}, "seq": 0, "ts": {now!r}, "started_at": {now!r}, "uptime_s": 0.0, '
        '"whatsapp": {"state": "starting", "connected": false}}'
    )


def write_starting_heartbeat() -> None:
    """Write run/heartbeat.json with state "starting" (atomic replace; skipped when no path is known)."""
    path = os.environ.get("CONTINUITY_HEARTBEAT")  # instance.HEARTBEAT_ENV, spelled out: nothing is imported yet
    if not path:
        return
    tmp = f"{path}.{os.getpid()}.starting"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(starting_heartbeat_text(os.getpid(), time.time()))
        os.replace(tmp, path)
    except OSError:
        try:  # noqa: SIM105 - contextlib.suppress would cost ~6 ms of startup here
            os.unlink(tmp)
        except OSError:
            pass
