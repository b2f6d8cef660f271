"""Benchmark how long writes wait while the store compacts and takes backups (issue "Scale": <= 50 ms p99).

Usage: python scripts/bench/store_stall.py [--size 100000] [--seconds 20] [--backup-interval 2]

A store of `--size` tokens; for `--seconds`, two writers update random tokens, each update fsynced as in production:
- "worker": this process, the store opened as the worker opens it (background=True: the slow part of a compaction
  or backup runs in a thread of its own), with `backup_interval` = `--backup-interval` s, so backups (each one a
  compaction: a new snapshot generation) happen all through the window;
- "cli": a second process writing to the same files at the same time (as `continuity tokens add` would), opened
  without background.
Prints each writer's update latency (median, p99, max) and how many backups and compactions happened meanwhile.
Seconds everywhere; figures in ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from continuity.worker.store import TokenStore


def _records(size: int) -> list[dict[str, object]]:
    return [
        {"id": f"tok{k:07d}", "symbol": f"S{k}", "chain": "sol", "pair": "0x" + "ab" * 20, "mc": k} for k in range(size)
    ]


def _write_loop(store: TokenStore, size: int, seconds: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    samples = []
    end = time.perf_counter() + seconds
    k = 0
    while time.perf_counter() < end:
        k += 1
        ident = f"tok{rng.randrange(size):07d}"
        started = time.perf_counter()
        store.update(ident, mc=k, seen_at=time.time())
        samples.append(time.perf_counter() - started)
    return samples


def _figures(samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return (
        f"{len(samples):6d} updates | median {statistics.median(samples) * 1000:6.2f} ms"
        f" | p99 {p99 * 1000:6.2f} ms | max {samples[-1] * 1000:7.2f} ms"
        f" | over 50 ms: {sum(s > 0.05 for s in samples)}"
    )


def _child(data_dir: str, size: int, seconds: float) -> None:
    store = TokenStore.open(data_dir, backup_interval=1e9, lock_timeout=60)
    samples = _write_loop(store, size, seconds, seed=2)
    store.close()
    print(json.dumps(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backup-interval", type=float, default=2.0)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), float(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="store-stall-") as tmp:
        data_dir = Path(tmp) / "data"
        with TokenStore.open(data_dir, backup_interval=1e9) as setup:
            setup.import_records(_records(args.size))
            setup.compact()
        snapshot_mb = (data_dir / "tracked_tokens.json").stat().st_size / 1e6
        store = TokenStore.open(data_dir, backup_interval=args.backup_interval, max_backups=10, background=True)
        gen0 = store._gen
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", str(data_dir), str(args.size), str(args.seconds)],
            stdout=subprocess.PIPE,
        )
        worker = _write_loop(store, args.size, args.seconds, seed=1)
        out, _ = child.communicate(timeout=args.seconds + 120)
        store.close()
        backups = len(list((data_dir / "backups").glob("tracked_tokens.*.json.gz")))
        print(
            f"{args.size} tokens (snapshot {snapshot_mb:.1f} MB), {args.seconds:g} s, backup every"
            f" {args.backup_interval:g} s: {store._gen - gen0} new generations, {backups} backups kept"
        )
        print(f"worker (background compaction) | {_figures(worker)}")
        print(f"cli (another process)          | {_figures(json.loads(out))}")


if __name__ == "__main__":
    main()
