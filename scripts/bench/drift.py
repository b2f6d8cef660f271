"""Benchmark what a changed WhatsApp Web page does to a session (real headless Chromium, the simulator's variants),
with the production defaults (probe_interval 10 s, unrecognized_after 60 s, send_stall_after 120 s).

Prints:
- compose box moved (variant compose_moved: no selector of the table finds it): seconds from the first failed send
  to `send_stalled` and to health "degraded" (goal: within 180 s), and that the messages stay queued;
- unrecognized main screen (variant unrecognized_main): seconds from the page change to state `unrecognized`
  (goal: unrecognized_after plus one probe), and browser restarts over `--minutes` (goal: at most 1 per 10 min).

Usage: python scripts/bench/drift.py [--minutes 10]     (takes about --minutes + 4 minutes)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from continuity.devtools.simulator import Simulator
from continuity.watchdog.health import assess
from continuity.watchdog.instance import EventLog, Home, read_events
from continuity.worker.delivery import OutboxSender
from continuity.worker.session import WhatsAppSession, WhatsAppState
from continuity.worker.store import Outbox
from tests._session_harness import drive, linked_session

DEFAULTS = {"probe_interval": 10.0, "reconnect_backoff": [1.0, 60.0], "send_ack_timeout": 30.0}


def _first(home: Home, kind: str) -> dict[str, object] | None:
    return next((e for e in read_events(home.events_file) if e["event"] == kind), None)


def compose_moved(root: Path) -> None:
    home = Home(root / "compose")
    home.ensure()
    with Simulator(port=0) as sim:
        session = linked_session(home, sim, **DEFAULTS)
        outbox = Outbox.open(home)
        sender = OutboxSender(outbox, session, min_interval_s=3.0, events=EventLog(home.events_file, source="b"))
        session.sender = sender
        try:
            sim.set_variant("compose_moved")
            assert session.page is not None
            session.page.reload()
            for k in range(3):
                outbox.enqueue("15551234567", f"drift message {k}")

            def degraded() -> bool:
                beat = {"whatsapp": session.status(), "sending": sender.status()}
                verdict = assess(watchdog_state="running", heartbeat=beat, heartbeat_age_s=1, heartbeat_timeout_s=120)
                return verdict["session_health"] != "healthy"

            drive(session, degraded, timeout=600, what="degraded", extra=lambda: sender(None))
            done = time.time()
            first_fail = _first(home, "message_retry")
            stalled = _first(home, "send_stalled")
            assert first_fail is not None and stalled is not None
            since = float(first_fail["ts"])  # type: ignore[arg-type]
            print(
                f"compose moved: first failed send -> send_stalled {float(stalled['ts']) - since:6.1f} s "  # type: ignore[arg-type]
                f"-> health degraded {done - since:6.1f} s (goal <= 180 s); problem: {sender.status()['problem']}"
            )
            print(f"  messages still queued: {outbox.open_count()} of 3, delivered: {len(sim.delivered())}")
        finally:
            session.close()
            outbox.close()


def unrecognized(root: Path, minutes: float) -> None:
    home = Home(root / "unrecognized")
    home.ensure()
    with Simulator(port=0) as sim:
        linked_session(home, sim, **DEFAULTS).close()
        sim.set_variant("unrecognized_main")
        from tests._session_harness import session_config

        session = WhatsAppSession(
            home, session_config(sim.url, **DEFAULTS), events=EventLog(home.events_file, source="b")
        )
        try:
            started = time.monotonic()
            drive(session, lambda: session.state is WhatsAppState.UNRECOGNIZED, timeout=300, what="unrecognized")
            took = time.monotonic() - started
            print(f"unrecognized main screen: state unrecognized after {took:5.1f} s (goal <= 60 s + one 10 s probe)")
            end = started + minutes * 60
            longest = 0.0
            while time.monotonic() < end:
                turn_started = time.monotonic()
                hint = session.turn()
                longest = max(longest, time.monotonic() - turn_started)
                time.sleep(min(1.0, hint if hint is not None else 1.0))
            seen = read_events(home.events_file)
            recovery = [e for e in seen if e["event"] == "browser_restart" and e.get("reason") == "page not recognized"]
            reports = sum(1 for e in seen if e["event"] == "page_unrecognized")
            print(
                f"  over {minutes:g} min: {len(recovery)} browser restart(s) for the unrecognized page "
                f"(goal <= {int(minutes // 10) + 1}); longest turn {longest:.1f} s (the heartbeat never starves); "
                f"page_unrecognized events: {reports}"
            )
        finally:
            session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to watch the unrecognized page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        compose_moved(Path(tmp))
        unrecognized(Path(tmp), args.minutes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
