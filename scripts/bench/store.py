"""Benchmark the token store: durable single-token update (median, p99), open, snapshot, backup.

Run: /tmp/venv/bin/python scripts/bench/store.py [--sizes 100,10000,100000] [--updates 1000]
Every update is fsynced before it returns (as in production). Takes about a minute.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from continuity.worker.store import TokenStore


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def bench(size: int, updates: int, root: Path) -> None:
    data_dir = root / f"n{size}"
    store = TokenStore.open(data_dir, backup_interval=1e9)
    store.import_records(
        {"id": f"tok{k:06d}", "symbol": f"S{k}", "chain": "ethereum", "pair": "0x" + "ab" * 20, "mc": k}
        for k in range(size)
    )
    started = time.perf_counter()
    store.compact()
    snapshot_s = time.perf_counter() - started
    started = time.perf_counter()
    store.backup()
    backup_s = time.perf_counter() - started
    samples = []
    for k in range(updates):
        ident = f"tok{(k * 7919) % size:06d}"
        started = time.perf_counter()
        store.update(ident, mc=k, seen_at=time.time())
        samples.append(time.perf_counter() - started)
    samples.sort()
    store.close()
    started = time.perf_counter()
    TokenStore.open(data_dir, backup_interval=1e9).close()
    open_s = time.perf_counter() - started
    # worst case for open: the journal just below the compaction threshold (a quarter of the snapshot)
    store = TokenStore.open(data_dir, backup_interval=1e9)
    limit = max(store.compact_min_bytes, store._snap_size // 4) - 4096
    k = 0
    while store._journal.offset < limit:
        with store.transaction() as tx:
            for _ in range(50):
                k += 1
                tx.update(f"tok{(k * 7919) % size:06d}", mc=k, seen_at=time.time())
    journal_bytes = store._journal.offset
    store.close()
    started = time.perf_counter()
    TokenStore.open(data_dir, backup_interval=1e9).close()
    open_full_s = time.perf_counter() - started
    print(
        f"{size:>7} tokens | update median {_ms(statistics.median(samples))}"
        f"  p99 {_ms(samples[int(len(samples) * 0.99)])}"
        f" | open {_ms(open_s)}  open with {journal_bytes / 1e6:4.1f} MB journal {_ms(open_full_s)}"
        f" | snapshot {_ms(snapshot_s)}  backup {_ms(backup_s)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--updates", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            bench(size, args.updates, Path(tmp))


if __name__ == "__main__":
    main()
