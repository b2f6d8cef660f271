"""Benchmark the store and the real worker at scale (issue "Scale"): 10k and 100k tokens (`--sizes` adds 1000000).

Usage: python scripts/bench/scale.py [--sizes 10000,100000] [--idle-s 60] [--settle-s 35] [--writes 200] [--skip-queue]

Per size, in a fresh home:
1. `continuity tokens import FILE` as a real process (seconds); TokenStore.open (seconds); one durable update
   (median and p99, fsynced as in production).
2. queue: the real worker (`python -m continuity.worker`, `[whatsapp] enabled = false`, one recipient) started on
   the imported tokens: seconds until it queued one message per token (skipped with --skip-queue: the messages are
   then queued through the store API).
3. pending: a new worker on those N pending messages (nothing can be sent): seconds until its second notify pass
   (seen in the heartbeat, written every 10 s), then, once `--settle-s` seconds passed since it started (the backup
   owed for the changes made before it started is taken within backup_interval, 30 s), its CPU % over `--idle-s`
   seconds and its RSS.
4. notified: every message marked sent, every id in the ledger and every token given notified_at, through the
   store API (bulk commits, for speed); a new worker, measured the same way.
Worker settings are the defaults (heartbeat every 10 s, notify every 2 s). Goals (issue "Scale"): worker CPU idle
<= 1 %, RSS <= 120 MB at 100k tokens. Seconds everywhere, MB = 10**6 bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from continuity.worker.store import Ledger, Outbox, TokenStore

PHONE = "15551234567"
CPU_GOAL_PCT = 1.0
RSS_GOAL_MB = 120.0
RSS_GOAL_TOKENS = 100_000  # the RSS goal is for up to this many tokens


def _key(ident: str) -> str:
    return f"notify:{ident}:{PHONE}"


def _write_home(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "continuity.toml").write_text(
        f'[whatsapp]\nenabled = false\n[api]\nenabled = false\n[notify]\nrecipients = ["{PHONE}"]\n',
        encoding="utf-8",
    )


def _import(home: Path, size: int) -> float:
    """`continuity tokens import` of `size` tokens as a real process; its wall seconds."""
    path = home / "import.json"
    records = [{"id": f"tok{k:07d}", "symbol": f"S{k}", "chain": "sol", "mc": k} for k in range(size)]
    path.write_text(json.dumps(records), encoding="utf-8")
    argv = [sys.executable, "-m", "continuity.watchdog", "--home", str(home), "tokens", "import", str(path)]
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=3600)
    return time.perf_counter() - started


def _store_figures(home: Path, size: int, writes: int) -> str:
    started = time.perf_counter()
    store = TokenStore.open(home / "data", backup_interval=1e9)
    open_s = time.perf_counter() - started
    rng = random.Random(1)
    samples = []
    for k in range(writes):
        ident = f"tok{rng.randrange(size):07d}"
        started = time.perf_counter()
        store.update(ident, mc=k)
        samples.append(time.perf_counter() - started)
    store.close()
    samples.sort()
    median, p99 = statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return f"open {open_s:.3f} s | one write: median {median * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


class Worker:
    """`python -m continuity.worker` on `home`, stopped with SIGTERM."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.beat = home / "run" / "heartbeat.json"
        self.beat.unlink(missing_ok=True)
        env = {**os.environ, "CONTINUITY_HOME": str(home), "CONTINUITY_HEARTBEAT": str(self.beat)}
        env.pop("CONTINUITY_WATCHDOG_PID", None)
        log = open(home / "worker-bench.log", "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "continuity.worker"], env=env, stdout=log, stderr=log)
        self.ps = psutil.Process(self.proc.pid)
        self.started = time.perf_counter()

    def heartbeat(self) -> dict[str, Any]:
        try:
            beat: dict[str, Any] = json.loads(self.beat.read_bytes())
            return beat
        except (OSError, ValueError):
            return {}

    def notify_job(self) -> dict[str, Any]:
        return next((j for j in self.heartbeat().get("jobs", []) if j.get("name") == "notify"), {})

    def wait(self, what: str, done: Any, timeout_s: float) -> float:
        """Seconds since start until `done()`; exits when the worker died or the timeout passed."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the worker exited ({self.proc.returncode}) while waiting for {what}")
            if done():
                return time.perf_counter() - self.started
            time.sleep(0.2)
        raise SystemExit(f"{what}: not within {timeout_s:g} s")

    def idle(self, idle_s: float) -> tuple[float, float, int]:
        """(CPU % of one core, RSS MB, notify overruns) over `idle_s` seconds."""
        runs_before = self.notify_job().get("overruns", 0)
        cpu0, wall0 = sum(self.ps.cpu_times()[:2]), time.perf_counter()
        time.sleep(idle_s)
        cpu1, wall1 = sum(self.ps.cpu_times()[:2]), time.perf_counter()
        rss = self.ps.memory_info().rss / 1e6
        overruns = int(self.notify_job().get("overruns", 0)) - int(runs_before)
        return 100.0 * (cpu1 - cpu0) / (wall1 - wall0), rss, overruns

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _measure(home: Path, label: str, size: int, args: argparse.Namespace, startup_timeout_s: float) -> str:
    worker = Worker(home)
    idle_s = args.idle_s
    try:
        # the heartbeat is written after a pass: two notify runs done = the first (full) pass and one more
        ready_s = worker.wait("two notify passes", lambda: worker.notify_job().get("runs", 0) >= 2, startup_timeout_s)
        time.sleep(max(0.0, args.settle_s - (time.perf_counter() - worker.started)))
        cpu, rss, overruns = worker.idle(idle_s)
    finally:
        worker.stop()
    cpu_ok = "ok" if cpu <= CPU_GOAL_PCT else "OVER"
    rss_ok = "ok" if rss <= RSS_GOAL_MB else "OVER"
    if size > RSS_GOAL_TOKENS:
        rss_ok = f"set for {RSS_GOAL_TOKENS} tokens"
    return (
        f"{label:<9} two passes after {ready_s:6.1f} s | idle CPU {cpu:6.2f} % (goal <= {CPU_GOAL_PCT:g} %: {cpu_ok})"
        f" | RSS {rss:6.1f} MB (goal <= {RSS_GOAL_MB:g} MB: {rss_ok}) | job_overrun {overruns} in {idle_s:g} s"
    )


def _queue_by_worker(home: Path, size: int, timeout_s: float) -> str:
    worker = Worker(home)
    outbox = Outbox.open(home / "data", backup_interval=1e9)
    try:
        queued_s = worker.wait("every message queued", lambda: outbox.open_count() >= size, timeout_s)
    finally:
        outbox.close()
        worker.stop()
    return f"queue     the worker queued {size} messages in {queued_s:6.1f} s"


def _commit_in_batches(outbox: Outbox, records: list[dict[str, Any]]) -> None:
    """Put whole records through the outbox's own commit, 2000 a journal record (bench setup only: fast)."""
    for start in range(0, len(records), 2000):
        with outbox._writing():
            outbox._commit_locked([["p", r["id"], r] for r in records[start : start + 2000]])


def _queue_by_api(home: Path, size: int) -> str:
    with Outbox.open(home / "data", backup_interval=1e9) as outbox:
        started = time.perf_counter()
        first, _ = outbox.enqueue(PHONE, "New token S0 on sol (tok0000000)", dedupe_key=_key("tok0000000"))
        records = []
        for k in range(1, size):
            ident = f"tok{k:07d}"
            text = f"New token S{k} on sol ({ident})"
            records.append({**first, "id": f"{first['id']}-{k}", "text": text, "dedupe_key": _key(ident)})
        _commit_in_batches(outbox, records)
        return f"queue     {size} messages queued through the store API in {time.perf_counter() - started:6.1f} s"


def _mark_all_notified(home: Path) -> None:
    data = home / "data"
    now = round(time.time(), 3)
    with Outbox.open(data, backup_interval=1e9) as outbox:
        sent = [{**m, "state": "sent", "sent_at": now} for m in outbox.list() if m["state"] != "sent"]
        _commit_in_batches(outbox, sent)
    with TokenStore.open(data, backup_interval=1e9) as store:
        ids = store.ids()
        with store.transaction() as tx:
            for ident in ids:
                tx.update(ident, notified_at=now)
    Ledger(data).extend(ids)


def bench(size: int, root: Path, args: argparse.Namespace) -> None:
    home = root / f"n{size}"
    _write_home(home)
    print(f"--- {size} tokens", flush=True)
    print(f"import    {_import(home, size):.2f} s | {_store_figures(home, size, args.writes)}", flush=True)
    timeout_s = max(300.0, size / 100)
    if args.skip_queue:
        print(_queue_by_api(home, size), flush=True)
    else:
        print(_queue_by_worker(home, size, timeout_s), flush=True)
    print(_measure(home, "pending", size, args, timeout_s), flush=True)
    _mark_all_notified(home)
    print(_measure(home, "notified", size, args, timeout_s), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="token counts, comma separated (e.g. add 1000000)")
    parser.add_argument("--idle-s", type=float, default=60.0, help="seconds of idle CPU measurement")
    parser.add_argument("--settle-s", type=float, default=35.0, help="seconds after a worker's start before measuring")
    parser.add_argument("--writes", type=int, default=200, help="durable single-token updates timed")
    parser.add_argument("--skip-queue", action="store_true", help="queue through the store API, not the worker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            bench(size, Path(tmp), args)


if __name__ == "__main__":
    main()
