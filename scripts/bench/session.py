"""Benchmark the WhatsApp session against the simulator in real headless Chromium.

Prints: kill -9 of Chromium -> ready again (goal <= 10 s); frozen page -> ready again; median time to deliver
one message (enqueue -> acked). Usage: python scripts/bench/session.py [--rounds 5] [--messages 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import EventLog, Home
from continuity.worker.delivery import OutboxSender
from continuity.worker.session import WhatsAppState
from continuity.worker.store import Outbox
from tests._session_harness import drive, linked_session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cb-") as tmp, Simulator(port=0) as sim:
        home = Home(Path(tmp))
        home.ensure()
        session = linked_session(home, sim, probe_interval=10.0, reconnect_backoff=[1.0, 60.0])
        try:

            def stable() -> None:  # each fault hits a stable session (as after stable_s of health), not a backoff
                session.ladder.failures = 0
                session.ladder.healthy_since = None

            kills = []
            for _ in range(args.rounds):
                stable()
                os.kill(session.browser.browser_pid, signal.SIGKILL)
                start = time.monotonic()
                drive(session, lambda: session.state is not WhatsAppState.READY, timeout=30, what="noticed")
                drive(session, lambda: session.state is WhatsAppState.READY, timeout=60, what="ready")
                kills.append(time.monotonic() - start)
            freezes = []
            for _ in range(max(1, args.rounds // 2)):
                stable()
                sim.set_mode("frozen")
                start = time.monotonic()
                drive(session, lambda: session.state is not WhatsAppState.READY, timeout=60, what="noticed")
                sim.set_mode("frozen", on=False)
                drive(session, lambda: session.state is WhatsAppState.READY, timeout=120, what="ready")
                freezes.append(time.monotonic() - start)
            outbox = Outbox.open(home)
            sender = OutboxSender(outbox, session, min_interval_s=0.0, events=EventLog(home.events_file, source="b"))
            deliveries = []
            for i in range(args.messages):
                ident = outbox.enqueue("15551234567", f"benchmark message {i}")[0]["id"]
                start = time.monotonic()
                drive(
                    session,
                    lambda ident=ident: outbox.get(ident)["state"] == "sent",
                    timeout=60,
                    what="sent",
                    extra=lambda: sender(None),
                )
                deliveries.append(time.monotonic() - start)
            outbox.close()
        finally:
            session.close()
    print(
        f"browser killed -> ready again: median {statistics.median(kills):.2f} s, max {max(kills):.2f} s "
        f"over {len(kills)} kills (goal <= 10 s; probe_interval 10 s)"
    )
    print(
        f"frozen page -> ready again: median {statistics.median(freezes):.2f} s over {len(freezes)} freezes "
        f"(two stuck probes of 5 s, then a browser restart)"
    )
    print(
        f"deliver one message (enqueue -> acked): median {statistics.median(deliveries):.2f} s, "
        f"max {max(deliveries):.2f} s over {len(deliveries)} messages"
    )
    return 0 if statistics.median(kills) <= 10.0 else 1


if __name__ == "__main__":
    sys.exit(main())
