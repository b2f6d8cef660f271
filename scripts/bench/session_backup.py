"""Session backup benchmark: backup/restore durations and the cost of a periodic backup's clean restart.

Real headless Chromium against the local simulator (127.0.0.1 only); prints medians over a few rounds:

- backup of a closed profile (tar.gz + scrypt + AES-GCM + verify), and its size
- periodic backup as the worker does it: clean browser restart with the backup in between, ready -> ready
- restore after the profile was deleted: new session start -> ready from the backup (vs a normal start)

Usage: python scripts/bench/session_backup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for tests._session_harness

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import EventLog, Home, read_events
from continuity.worker.session import WhatsAppSession, WhatsAppState
from continuity.worker.session.crypto import KEY_ENV
from tests._session_harness import drive, linked_session, session_config


def _ready_session(home: Home, sim: Simulator) -> tuple[WhatsAppSession, float]:
    session = WhatsAppSession(home, session_config(sim.url), events=EventLog(home.events_file, source="bench"))
    started = time.monotonic()
    drive(session, lambda: session.state is WhatsAppState.READY, timeout=60, what="ready")
    return session, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ[KEY_ENV] = "benchmark passphrase, not a secret"
    root = Path(tempfile.mkdtemp(prefix="continuity-bench-"))
    home = Home(root / "home")
    home.root.mkdir()
    home.ensure()
    create, periodic, restore, normal, apply_s, sizes = [], [], [], [], [], []
    try:
        with Simulator(port=0, poll_s=0.3) as sim:
            session = linked_session(home, sim)
            for _ in range(args.rounds):
                started = time.monotonic()
                ok, message, _ = session.action_handlers()["backup-session"]({})
                assert ok, message
                drive(session, lambda: session.state is WhatsAppState.READY, timeout=60, what="ready")
                periodic.append(time.monotonic() - started)
            session.close()
            for _ in range(args.rounds):
                started = time.monotonic()
                path = session.backups.create(reason="bench")
                create.append(time.monotonic() - started)
                sizes.append(path.stat().st_size)
            for _ in range(args.rounds):
                s, seconds = _ready_session(home, sim)
                normal.append(seconds)
                s.close()
                shutil.rmtree(home.profile_dir)
                s, seconds = _ready_session(home, sim)
                restore.append(seconds)
                s.close()
            applied = [e["seconds"] for e in read_events(home.events_file) if e["event"] == "session_restore_applied"]
            apply_s.extend(applied)
            scans = sim.state()["counts"]["scans"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = statistics.median
    print(f"rounds: {args.rounds}; scans in all: {scans} (1 = the pairing only)")
    print(f"backup of a closed profile:        median {med(create):.3f} s, {med(sizes) / 1024:.0f} KiB")
    print(f"periodic backup, ready -> ready:   median {med(periodic):.2f} s (clean restart + backup)")
    print(f"start -> ready, profile present:   median {med(normal):.2f} s")
    print(f"start -> ready, profile deleted:   median {med(restore):.2f} s (QR seen, backup restored, relaunch)")
    print(f"  of which decrypt+unpack+apply:   median {med(apply_s):.3f} s (apply step only)")


if __name__ == "__main__":
    main()
