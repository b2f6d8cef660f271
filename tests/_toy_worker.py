"""A configurable stand-in worker for watchdog tests: `python _toy_worker.py MODE [ARG]`.

Modes: normal, crash (exit 1 soon), exit78, ignore-term (SIGTERM ignored), grandchildren (spawns two sleepers,
one in its own session, writes their pids to ARG, then crashes), skew (heartbeat timestamps and mtimes far from
now), garbage (the heartbeat file changes but holds no JSON), beat-once-future (one heartbeat with an mtime a day
ahead, then no more), silent (never writes a heartbeat), exit0 (exits 0 on its own after a moment).
"""

import json
import os
import signal
import subprocess
import sys
import time

mode = sys.argv[1]
arg = sys.argv[2] if len(sys.argv) > 2 else ""
path = os.environ["CONTINUITY_HEARTBEAT"]
DAY = 86400.0


def beat(seq: int, *, ts: float | None = None, raw: bytes | None = None, mtime: float | None = None) -> None:
    tmp = path + ".toy.tmp"
    data = raw if raw is not None else json.dumps({"pid": os.getpid(), "seq": seq, "ts": ts or time.time()}).encode()
    with open(tmp, "wb") as handle:
        handle.write(data)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)


if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "exit78":
    print("toy worker: bad config key 'foo'", flush=True)
    sys.exit(78)
if mode == "grandchildren":
    same_group = subprocess.Popen(["sleep", "300"])
    own_session = subprocess.Popen(["sleep", "301"], start_new_session=True)
    with open(arg + ".tmp", "w") as handle:
        handle.write(f"{same_group.pid} {own_session.pid}")
    os.replace(arg + ".tmp", arg)
if mode == "beat-once-future":
    beat(1, mtime=time.time() + DAY, ts=time.time() + DAY)
    time.sleep(3600)

seq = 0
started = time.monotonic()
while True:
    seq += 1
    if mode == "silent":
        pass
    elif mode == "skew":
        offset = DAY * 365 * (1 if seq % 2 else -1)
        beat(seq, ts=time.time() + offset, mtime=time.time() + offset)
    elif mode == "garbage":
        beat(seq, raw=b"\x00{not json" + str(seq).encode())
    else:
        beat(seq)
    if mode in ("crash", "grandchildren") and time.monotonic() - started > 0.2:
        sys.exit(1)
    if mode == "exit0" and time.monotonic() - started > 0.3:
        sys.exit(0)
    time.sleep(0.05)
