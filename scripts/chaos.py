"""Chaos soak: a real watchdog + worker + Chromium against the simulator, faults injected at random.

While tokens are added and messages queued at random, at random moments it kills the worker (-9), kills Chromium
(-9), kills chromedriver, hangs the worker (SIGSTOP), freezes the page, raises a conflict, logs the phone out and
scans again, damages tracked_tokens.json (and again right after its restore), and leaves a stale profile lock.
Then it checks: every token notified and every message delivered exactly once (the simulator's record), nothing
lost from the store, no orphan Chromium, restarts within the budget, and the worst time to recover. Exit 0 only
when every check holds.

Usage: python scripts/chaos.py --minutes 3 [--seed N] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

from continuity.devtools.rig import Rig, RigError
from continuity.worker.browser import find_profile_holders, private_driver_path
from continuity.worker.store import Outbox

RECIPIENTS = ["15551230001", "15551230002"]
FAULTS = (
    "kill_worker",
    "kill_chromium",
    "kill_chromedriver",
    "hang_worker",
    "freeze_page",
    "conflict",
    "logout_and_scan",
    "damage_store",
    "stale_lock",
)


def chromium_main(rig: Rig) -> psutil.Process | None:
    for proc in find_profile_holders(rig.home.profile_dir):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(proc.cmdline())
            if "--user-data-dir" in cmd and "--type=" not in cmd:
                return proc
    return None


def _truncate(path: Path) -> None:
    """Cut a file to half its length plus garbage, in place (a bad edit, a sync tool, a disk error)."""
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)] + b"\x00garbage")


def inject(rig: Rig, fault: str, rng: random.Random) -> str:
    """Cause one fault; returns what was done (or why it was skipped)."""
    if fault in ("kill_worker", "hang_worker"):
        pid = rig.worker_pid()
        if pid is None:
            return "skipped: no worker"
        os.kill(pid, signal.SIGKILL if fault == "kill_worker" else signal.SIGSTOP)
        return f"pid {pid}"
    if fault == "kill_chromium":
        proc = chromium_main(rig)
        if proc is None:
            return "skipped: no chromium"
        proc.kill()
        return f"pid {proc.pid}"
    if fault == "kill_chromedriver":
        driver = str(private_driver_path(rig.home))
        for proc in psutil.process_iter(["exe", "status"]):
            if proc.info["exe"] == driver and proc.info["status"] != psutil.STATUS_ZOMBIE:
                proc.kill()
                return f"pid {proc.pid}"
        return "skipped: no chromedriver"
    if fault == "freeze_page":
        rig.sim.set_mode("frozen")
        time.sleep(rng.uniform(2, 6))
        rig.sim.set_mode("frozen", on=False)
        return "frozen for a few seconds"
    if fault == "conflict":
        rig.sim.set_mode("conflict")
        return "conflict overlay"
    if fault == "logout_and_scan":
        rig.sim.logout()
        rig.wait(lambda: rig.home.qr_text_file.exists(), timeout_s=60, what="QR after logout")
        time.sleep(rng.uniform(0.5, 3))
        rig.sim.scan()
        return "logged out, scanned again"
    if fault == "damage_store":
        path = rig.home.data_dir / "tracked_tokens.json"
        if not path.exists():
            return "skipped: no snapshot yet"
        restores = len(rig.events("store_restored"))
        _truncate(path)
        rig.cli("tokens", "list")  # opening the store restores it, writing a snapshot no backup holds yet
        if len(rig.events("store_restored")) == restores:
            raise RigError("tracked_tokens.json was damaged but not restored")
        _truncate(path)  # damaged again right after the restore
        return "tracked_tokens.json truncated, restored, truncated again"
    if fault == "stale_lock":
        lock = rig.home.profile_dir / "SingletonLock"
        proc = chromium_main(rig)
        if proc is not None:
            proc.kill()
            proc.wait(5)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.symlink("some-other-host-4242", lock)
        return "chromium killed, lock names another host"
    raise ValueError(fault)


def recovery_time(rig: Rig, injected_at: float) -> float:
    """Seconds from the fault until WhatsApp is ready again; 0 when the fault never disturbed it (40 s look)."""
    pid = rig.worker_pid()
    try:
        rig.wait(
            lambda: rig.whatsapp_state() != "ready" or rig.worker_pid() != pid, timeout_s=40, what="disturbed"
        )  # a SIGSTOP shows only after heartbeat_timeout
    except RigError:
        return 0.0
    rig.wait(lambda: rig.whatsapp_state() == "ready", timeout_s=180, what="ready again")
    return time.monotonic() - injected_at


def drain(rig: Rig, tokens: list[str], expected: Counter[tuple[str, str]], *, stall_s: float = 120.0) -> None:
    """Wait until every token is notified and every message delivered. Sending is paced on purpose (one message
    per send_min_interval, acked on a tick), so a long soak leaves a backlog: fail only when no new delivery came
    for `stall_s` seconds (or after an hour)."""
    give_up = time.monotonic() + 3600
    last_count, last_progress = -1, time.monotonic()
    while True:
        delivered = rig.sim.delivered()
        if set(rig.ledger()) >= set(tokens) and {(d["phone"], d["text"]) for d in delivered} >= set(expected):
            return
        if len(delivered) != last_count:
            last_count, last_progress = len(delivered), time.monotonic()
        if time.monotonic() - last_progress > stall_s or time.monotonic() > give_up:
            raise RigError(f"draining stalled at {last_count} deliveries (WhatsApp {rig.whatsapp_state()})")
        time.sleep(1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the instance directory")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # a log keeps every line
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="continuity-chaos-"))
    print(f"chaos: seed {seed}, {args.minutes:g} min, home {root}", flush=True)
    injected: Counter[str] = Counter()
    recoveries: list[tuple[str, float]] = []
    tokens: list[str] = []
    messages: list[tuple[str, str]] = []
    failures: list[str] = []
    with Rig(root, recipients=RECIPIENTS) as rig:
        text = rig.home.config_file.read_text().replace("heartbeat_timeout = 30", "heartbeat_timeout = 15")
        rig.home.config_file.write_text(text)
        rig.start()
        rig.link()
        deadline = time.monotonic() + args.minutes * 60
        next_fault = time.monotonic() + rng.uniform(5, 10)
        while time.monotonic() < deadline:
            if rng.random() < 0.5:
                ident = f"t{len(tokens):04d}"
                if rig.cli("tokens", "add", ident, "--symbol", f"S{len(tokens)}", "--chain", "sol").returncode == 0:
                    tokens.append(ident)
            else:
                phone, body = rng.choice(RECIPIENTS), f"chaos message {len(messages)}"
                if rig.cli("send", phone, body).returncode == 0:
                    messages.append((phone, body))
            if time.monotonic() >= next_fault:
                fault = rng.choice(FAULTS)
                injected_at = time.monotonic()
                try:
                    what = inject(rig, fault, rng)
                except RigError as exc:
                    failures.append(f"{fault}: {exc}")
                    what = f"error: {exc}"
                injected[fault] += 0 if what.startswith("skipped") else 1
                print(f"  {time.strftime('%H:%M:%S')} {fault}: {what}", flush=True)
                if not what.startswith(("skipped", "error")):
                    try:
                        recoveries.append((fault, recovery_time(rig, injected_at)))
                    except RigError as exc:
                        failures.append(f"no recovery after {fault}: {exc}")
                next_fault = time.monotonic() + rng.uniform(8, 20)
            time.sleep(rng.uniform(0.2, 1.5))
        print("chaos: faults over; waiting for the queue to drain", flush=True)
        expected = Counter({(p, f"New token S{i} on sol ({t})"): 1 for i, t in enumerate(tokens) for p in RECIPIENTS})
        expected.update(Counter(messages))
        drain_started = time.monotonic()
        try:
            drain(rig, tokens, expected)
        except RigError as exc:
            failures.append(str(exc))
        print(f"chaos: drained in {time.monotonic() - drain_started:.0f} s", flush=True)
        delivered = Counter((d["phone"], d["text"]) for d in rig.sim.delivered())
        duplicates = sum(n - 1 for n in delivered.values())
        undelivered = sorted(set(expected) - set(delivered))
        outbox = Outbox.open(rig.home)
        queued = {(m["phone"], m["text"]) for m in outbox.list() if m["state"] in ("pending", "claimed")}
        outbox.close()
        lost = [m for m in undelivered if m not in queued]  # neither delivered nor still in the durable outbox
        listed = json.loads(rig.cli("tokens", "list", "--json").stdout or "[]")
        missing_tokens = sorted(set(tokens) - {record["id"] for record in listed})
        spawns = [e["ts"] for e in rig.events("worker_spawned")][1:]
        window = max((sum(1 for t in spawns if s <= t < s + 300) for s in spawns), default=0)
        code = rig.stop()
        orphans = find_profile_holders(rig.home.profile_dir)
    if duplicates:
        failures.append(f"{duplicates} duplicate deliveries")
    if lost:
        failures.append(f"{len(lost)} messages LOST (not delivered, not queued), e.g. {lost[:3]}")
    if len(undelivered) > len(lost):
        failures.append(f"{len(undelivered) - len(lost)} messages still queued in the outbox, not yet delivered")
    if missing_tokens:
        failures.append(f"tokens lost from the store: {missing_tokens[:5]}")
    if orphans:
        failures.append(f"orphan processes on the profile: {[p.pid for p in orphans]}")
    if window > 10:
        failures.append(f"{window} restarts within 300 s (budget 10)")
    if code != 0:
        failures.append(f"watchdog exited {code}")
    worst = max(recoveries, key=lambda r: r[1], default=("none", 0.0))
    print(f"faults injected: {sum(injected.values())} ({', '.join(f'{k} {v}' for k, v in sorted(injected.items()))})")
    print(
        f"tokens added: {len(tokens)}, messages queued: {len(messages)}, delivered: {sum(delivered.values())}, "
        f"duplicates: {duplicates}, lost: {len(lost)}, still queued: {len(undelivered) - len(lost)}, "
        f"tokens missing from store: {len(missing_tokens)}"
    )
    print(f"worker restarts: {len(spawns)} (max {window} in any 300 s), orphans after stop: {len(orphans)}")
    print(
        f"worst recovery: {worst[1]:.1f} s after {worst[0]}; median "
        f"{sorted(r for _, r in recoveries)[len(recoveries) // 2] if recoveries else 0:.1f} s"
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    if failures:
        print("chaos FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("chaos passed: nothing lost, nothing duplicated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
