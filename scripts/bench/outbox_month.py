"""Benchmark: the outbox and its backups over simulated months of traffic with [outbox] keep_sent_days pruning.

Usage: python scripts/bench/outbox_month.py [--messages 1000000] [--days 60] [--keep-days 30] [--every 5]

A simulated clock moves one day at a time. Each day `messages / days` new tokens are notified to one recipient: their
messages are queued (`enqueue_many`), marked sent (bulk commits, for speed), their ids go to the ledger, and the
outbox is pruned as the worker's job prunes it (`Outbox.prune`: a message of a token in the ledger is dropped once
older than keep_sent_days). Backups are taken as the worker takes them (backup_interval 30 s of the simulated clock:
one a day here; max_backups 10). Every `--every` days it prints the outbox on disk (snapshot + journal), the backups
folder (backups + kept journal segments) and the messages kept. Goals (issue "Scale"): once the window is full the
outbox stays flat (it grows by less than 2 days of traffic), and data/backups/ stays within 3x the live data.
MB = 10**6 bytes.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

from continuity.worker.notify import dedupe_key, token_of
from continuity.worker.store import Ledger, Outbox

PHONE = "15551234567"
DAY_S = 86400.0


def _size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.exists())


def _outbox_bytes(data: Path) -> int:
    return _size([data / "outbox.json", data / "outbox.journal"])


def _backup_bytes(data: Path) -> int:
    return _size(list((data / "backups").glob("outbox*")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--keep-days", type=float, default=30.0)
    parser.add_argument("--every", type=int, default=5, help="print every this many days")
    args = parser.parse_args()
    per_day = args.messages // args.days
    now = [1_800_000_000.0]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="outbox-month-") as tmp:
        data = Path(tmp) / "data"
        outbox = Outbox.open(data, backup_interval=30, max_backups=10, clock=lambda: now[0])
        ledger = Ledger(data)

        def forget(key: str) -> bool:
            token = token_of(key)
            return token is not None and token in ledger

        sizes: list[int] = []
        print(f"{args.messages} messages over {args.days} days ({per_day}/day), keep_sent_days {args.keep_days:g}")
        for day in range(1, args.days + 1):
            tokens = [f"d{day:03d}t{k:06d}" for k in range(per_day)]
            for start in range(0, per_day, 2000):
                batch = tokens[start : start + 2000]
                queued = outbox.enqueue_many([(PHONE, f"New token {t} on sol", dedupe_key(t, PHONE)) for t in batch])
                sent = [{**m, "state": "sent", "sent_at": round(now[0], 3)} for m, _created in queued]
                with outbox._writing():  # bench only: one journal record for 2000 "mark sent"
                    outbox._commit_locked([["p", m["id"], m] for m in sent])
                ledger.extend(batch)
            while outbox.prune(older_than_s=args.keep_days * DAY_S, forget=forget).more:
                pass
            outbox.maybe_backup()
            sizes.append(_outbox_bytes(data))
            if day % args.every == 0 or day == args.days:
                live = _outbox_bytes(data)
                backups = _backup_bytes(data)
                print(
                    f"day {day:3d} | outbox {live / 1e6:7.1f} MB, {len(outbox._items):7d} messages"
                    f" | backups {backups / 1e6:7.1f} MB ({backups / max(live, 1):.2f}x live)"
                    f" | {time.perf_counter() - started:6.0f} s",
                    flush=True,
                )
            now[0] += DAY_S
        outbox.close()
    window = int(args.keep_days) + 1
    if len(sizes) > window + 1:
        day_traffic = max(b - a for a, b in itertools.pairwise(sizes[: window + 1]))
        growth = max(sizes[window:]) - sizes[window]
        print(
            f"after the window (day {window}): outbox {sizes[window] / 1e6:.1f} MB -> at most"
            f" {max(sizes[window:]) / 1e6:.1f} MB: grew {growth / 1e6:.1f} MB = {growth / max(day_traffic, 1):.2f} x"
            f" one day's traffic ({day_traffic / 1e6:.1f} MB at most); goal <= 2 x"
        )


if __name__ == "__main__":
    main()
