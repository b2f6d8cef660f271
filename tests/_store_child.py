"""Helper processes for the store tests (not a test module).

`zygote`: imports the store once, then for each stdin line "<mode> <data_dir> <run> <seed>" forks a child that
commits in a loop until it is killed, printing "B <op>" before each call and "C <result>" after it returned;
the zygote prints "pid <pid>" when the child starts and "exited <run>" once it is gone.
`incr <data_dir> <name> <count>`: read-modify-write a shared counter `count` times, in transactions.
`hold <lock_file> <seconds>`: hold a file lock, print "held", sleep.
`writer <data_dir> <name> <seed>`: add tokens "<name>-<k>" until data_dir/stop exists, printing "A <id>" after
each add returned (acknowledged); small journals, so it compacts and backs up often.
`outwriter <data_dir> <name> <seed>`: the same for the outbox: "E <key>" after an enqueue returned, "S <key>"
after the message was claimed and marked sent.
"""

from __future__ import annotations

import os
import random
import sys
import time

import filelock

from continuity.worker.store import Outbox, TokenStore


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def store_loop(data_dir: str, run: str, rng: random.Random) -> None:
    interval = rng.choice([0.01, 0.2, 5.0])  # often: compaction + backup around many commits; else plain appends
    store = TokenStore.open(data_dir, backup_interval=interval, max_backups=3, compact_min_bytes=4096, source="crash")
    mine: list[str] = []
    i = 0
    while True:
        i += 1
        roll = rng.random()
        if roll < 0.5 or not mine:
            ident = f"{run}-{i}"
            _say(f"B add {ident} {i}")
            store.add(ident, n=i, pad="x" * rng.randint(0, 400))
            mine.append(ident)
        elif roll < 0.7:
            ident = f"{run}-{i}"
            _say(f"B tx {ident} {i} {mine[0]}")
            with store.transaction() as tx:
                for k in range(3):
                    tx.add(f"{ident}.{k}", n=i)
                tx.update(mine[0], n=i)
        elif roll < 0.9:
            ident = rng.choice(mine)
            _say(f"B upd {ident} {i}")
            store.update(ident, n=i)
        else:
            ident = mine.pop(rng.randrange(len(mine)))
            _say(f"B del {ident} {i}")
            store.remove(ident)
        _say("C")


def outbox_loop(data_dir: str, run: str, rng: random.Random) -> None:
    interval = rng.choice([0.01, 0.2, 5.0])
    box = Outbox.open(data_dir, backup_interval=interval, max_backups=3, compact_min_bytes=4096, source="crash")
    claimed: str | None = None
    i = 0
    while True:
        i += 1
        roll = rng.random()
        if claimed is not None:
            message = box.get(claimed)
            assert message is not None
            if roll < 0.7:
                _say(f"B sent {message['dedupe_key']}")
                box.mark_sent(claimed)
            else:
                _say(f"B retry {message['dedupe_key']}")
                box.mark_failed(claimed, "simulated failure")
            claimed = None
            _say("C")
        elif roll < 0.5:
            _say(f"B enq {run}-{i}")
            box.enqueue("15551234567", f"message {run}-{i}", dedupe_key=f"{run}-{i}")
            _say("C")
        elif roll < 0.6:
            _say(f"B dup {run}-{max(1, i - 1)}")
            box.enqueue("15551234567", "again", dedupe_key=f"{run}-{max(1, i - 1)}")
            _say("C")
        else:
            _say("B claim")
            message = box.claim(f"crash-{run}", lease_s=3600)
            claimed = message["id"] if message else None
            _say(f"C {message['dedupe_key'] if message else '-'}")


def zygote() -> None:
    for line in sys.stdin:
        mode, data_dir, run, seed = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                loop = store_loop if mode == "store" else outbox_loop
                loop(data_dir, run, random.Random(int(seed)))
            finally:
                os._exit(1)
        _say(f"pid {pid}")
        os.waitpid(pid, 0)
        _say(f"exited {run}")


def incr(data_dir: str, name: str, count: int) -> None:
    store = TokenStore.open(data_dir, backup_interval=0.05, compact_min_bytes=8192)
    _say("ready")
    while not os.path.exists(os.path.join(data_dir, "go")):
        time.sleep(0.001)
    for k in range(count):
        with store.transaction() as tx:
            counter = tx.get("counter")
            assert counter is not None
            tx.put({**counter, "value": counter["value"] + 1})
            tx.add(f"{name}-{k}", by=name)
    _say("done")


def writer(data_dir: str, name: str, seed: int) -> None:
    rng = random.Random(seed)
    store = TokenStore.open(data_dir, backup_interval=rng.choice([0.05, 0.5]), max_backups=3, compact_min_bytes=2048)
    k = 0
    while not os.path.exists(os.path.join(data_dir, "stop")):
        k += 1
        store.add(f"{name}-{k}", n=k, pad="x" * rng.randint(0, 200))
        _say(f"A {name}-{k}")
        time.sleep(rng.uniform(0, 0.01))
    _say("done")


def outwriter(data_dir: str, name: str, seed: int) -> None:
    rng = random.Random(seed)
    box = Outbox.open(data_dir, backup_interval=rng.choice([0.05, 0.5]), max_backups=3, compact_min_bytes=2048)
    k = 0
    while not os.path.exists(os.path.join(data_dir, "stop")):
        k += 1
        box.enqueue("15551234567", f"message {name}-{k}", dedupe_key=f"{name}-{k}")
        _say(f"E {name}-{k}")
        if rng.random() < 0.6:
            message = box.claim(name, lease_s=3600)
            if message is not None:
                box.mark_sent(message["id"])
                _say(f"S {message['dedupe_key']}")
        time.sleep(rng.uniform(0, 0.01))
    _say("done")


def hold(lock_file: str, seconds: float) -> None:
    with filelock.FileLock(lock_file):
        _say("held")
        time.sleep(seconds)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "zygote":
        zygote()
    elif command == "incr":
        incr(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif command == "hold":
        hold(sys.argv[2], float(sys.argv[3]))
    elif command in ("writer", "outwriter"):
        (writer if command == "writer" else outwriter)(sys.argv[2], sys.argv[3], int(sys.argv[4]))
