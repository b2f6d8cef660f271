"""Benchmark the durable inbox: real worker processes, real headless Chromium, the simulator.

Prints:
- incoming message -> stored in data/inbox.* latency while WhatsApp is ready (median, p90, max), with the default
  [inbox] scan_interval (2 s), probe_interval (10 s) and the simulator page's 1 s poll;
- a burst of 20 incoming messages (over 4 chats) with the worker SIGKILLed (its whole process group, Chromium
  included) in the middle (while a chat is being read, or after 1, 5, 10 are stored), then a new worker: how many
  the inbox holds, how many distinct, duplicates (want 20, 20, 0).

Usage: python scripts/bench/inbox.py [--samples 15] [--rounds 4] [--scan-interval 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import Home, read_heartbeat
from continuity.worker.store._inbox import Inbox
from tests._session_harness import WORKER, linked_session

PEOPLE = ["15557000001", "15557000002", "15557000003"]


def wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.01)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def start_worker(home: Home) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(home.root)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def ready(home: Home, pid: int) -> bool:
    beat = read_heartbeat(home.heartbeat_file) or {}
    return beat.get("pid") == pid and (beat.get("whatsapp") or {}).get("state") == "ready"


def write_config(home: Home, sim: Simulator, scan_interval: float) -> None:
    home.config_file.write_text(
        f'[worker]\nheartbeat_interval = 1\n[whatsapp]\nurl = "{sim.url}"\nheadless = true\n'
        f"send_min_interval = 0\nreconnect_backoff = [0.5, 5.0]\n[inbox]\nscan_interval = {scan_interval}\n",
        encoding="utf-8",
    )


def latency(home: Home, sim: Simulator, samples: int) -> list[float]:
    proc = start_worker(home)
    try:
        wait(lambda: ready(home, proc.pid), 90, "worker ready")
        time.sleep(3)
        out = []
        with Inbox.open(home) as inbox:
            for i in range(samples):
                sent = sim.receive(PEOPLE[i % len(PEOPLE)], f"latency {i}")
                started = time.monotonic()
                key = str(sent["data_id"])
                wait(lambda key=key: inbox.has(key), 60, f"message {i} stored")  # type: ignore[misc]
                out.append(time.monotonic() - started)
                time.sleep(0.7 + (i % 5) * 0.37)  # arrivals not in step with the scans
        return out
    finally:
        kill(proc)


def burst(home: Home, sim: Simulator, round_no: int, kill_after: int | None) -> tuple[int, int, int, bool]:
    """20 messages over 4 chats (3 people and a group) 50 ms apart; the worker is killed once `kill_after` of them
    are stored (None: as soon as a chat is noted as being read, i.e. opened or about to be, before its store); a new
    worker runs until every one is stored (or 60 s). Returns (held, distinct texts, distinct ids, killed mid-read)."""
    tag = f"burst{round_no}"
    proc = start_worker(home)
    mid_read = False
    with Inbox.open(home) as inbox:

        def ours() -> list[dict[str, Any]]:
            return [m for m in inbox.messages() if str(m["text"]).startswith(tag)]

        def kill_due() -> bool:
            nonlocal mid_read
            if kill_after is None:
                mid_read = bool(inbox.readings())
                return mid_read
            return len(ours()) >= kill_after

        wait(lambda: ready(home, proc.pid), 90, "worker ready")
        time.sleep(2)
        sent_at = time.monotonic()
        for i in range(20):
            if i % 4 == 3:
                sim.receive("group:Token Alerts", f"{tag} #{i}", sender="15558000000", name="Grace")
            else:
                sim.receive(PEOPLE[i % 4 % len(PEOPLE)], f"{tag} #{i}")
            while time.monotonic() < sent_at + 0.05 * (i + 1):
                if proc.poll() is None and kill_due():
                    kill(proc)
                time.sleep(0.002)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_due():
                kill(proc)
            time.sleep(0.002)
        if proc.poll() is None:
            kill(proc)
        second = start_worker(home)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len({m["text"] for m in ours()}) < 20:
                time.sleep(0.1)
            time.sleep(2)  # would anything be stored twice?
        finally:
            kill(second)
        found = ours()
        return len(found), len({m["text"] for m in found}), len({m["id"] for m in found}), mid_read


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--scan-interval", type=float, default=2.0, help="[inbox] scan_interval (s), default 2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cb-") as tmp, Simulator(port=0) as sim:
        home = Home(Path(tmp))
        home.ensure()
        linked_session(home, sim).close()
        write_config(home, sim, args.scan_interval)
        lat = sorted(latency(home, sim, args.samples))
        print(
            f"incoming -> inbox latency while ready ({len(lat)} samples, scan_interval {args.scan_interval:g} s): "
            f"median {statistics.median(lat):.2f} s, p90 {lat[int(0.9 * (len(lat) - 1))]:.2f} s, max {lat[-1]:.2f} s"
        )
        for round_no in range(args.rounds):
            kill_after = (None, 1, 5, 10)[round_no % 4]
            held, distinct, ids, mid_read = burst(home, sim, round_no, kill_after)
            when = "while a chat was being read" if kill_after is None else f"after {kill_after} stored"
            print(
                f"burst of 20 incoming, worker SIGKILLed {when}: inbox holds {held} "
                f"({distinct} distinct texts, {ids} distinct ids, {held - distinct} duplicates) after the restart"
                + ("" if kill_after is not None or mid_read else " [no reading caught: killed at the end]")
            )
        from continuity.watchdog.instance import read_events

        resumed = [e for e in read_events(home.events_file, since=0.0) if e["event"] == "inbox_reading_resumed"]
        print(f"kills that caught a chat between its note and its store (read again at restart): {len(resumed)}")
        receipts = sum(len(r["ids"]) for r in sim.receipts())
        with Inbox.open(home) as inbox:
            total = len(inbox.messages())
        print(f"messages read on the page (receipts sent): {receipts}; stored in the inbox: {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
