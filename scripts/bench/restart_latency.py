"""Benchmark: kill -9 of the worker -> first heartbeat of the new worker; watchdog idle RSS, CPU and wakeups.

Usage: python scripts/bench/restart_latency.py [--rounds 20] [--idle-seconds 60] [--worker builtin|toy] [--no-api]
Goals (issue 2): median restart latency <= 100 ms (restart_delay 0); idle RSS < 18 MB; <= 1 wakeup/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

TOY = """
import json, os, time
path = os.environ["CONTINUITY_HEARTBEAT"]
seq = 0
while True:
    seq += 1
    with open(path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "seq": seq, "ts": time.time()}, f)
    os.replace(path + ".tmp", path)
    time.sleep(1)
"""


def heartbeat_pid(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_bytes())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def wait_new_heartbeat(path: Path, old_pid: int | None, timeout_s: float = 10.0) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        pid = heartbeat_pid(path)
        if pid is not None and pid != old_pid:
            return time.perf_counter()
        time.sleep(0.0005)
    raise SystemExit(f"no new heartbeat within {timeout_s} s")


def wakeups(pid: int) -> int:
    """Voluntary + involuntary context switches of every thread of `pid` (Linux /proc)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (bound to port 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--worker", choices=["builtin", "toy"], default="builtin")
    parser.add_argument("--no-api", action="store_true", help="Disable the HTTP API (to see what it costs).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="continuity-bench-") as tmp:
        home = Path(tmp)
        toy = home / "toy_worker.py"
        toy.write_text(TOY)
        port = free_port()
        command = f"worker_command = {json.dumps([sys.executable, str(toy)])}\n" if args.worker == "toy" else ""
        (home / "continuity.toml").write_text(
            "[watchdog]\nrestart_delay = 0\nrestart_limit = 1000\n"
            + command
            + "[worker]\nheartbeat_interval = 1\n"
            + f"[api]\nenabled = {'false' if args.no_api else 'true'}\nport = {port}\n"
        )
        heartbeat = home / "run" / "heartbeat.json"
        watchdog = subprocess.Popen(
            [sys.executable, "-m", "continuity.watchdog", "--home", str(home), "start"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "CONTINUITY_DETACHED": "1"},
        )
        try:
            wait_new_heartbeat(heartbeat, None)
            api = "off" if args.no_api else f"on 127.0.0.1:{port}"
            print(f"watchdog RSS at start (API {api}): {psutil.Process(watchdog.pid).memory_info().rss / 1e6:.1f} MB")
            latencies = []
            for _ in range(args.rounds):
                time.sleep(0.3)
                old = heartbeat_pid(heartbeat)
                assert old is not None
                start = time.perf_counter()
                os.kill(old, signal.SIGKILL)
                latencies.append((wait_new_heartbeat(heartbeat, old) - start) * 1000)
            latencies.sort()
            print(f"worker: {args.worker}; rounds: {args.rounds}; API {api}")
            print(
                "restart latency (kill -9 -> new worker's first heartbeat): "
                f"median {statistics.median(latencies):.1f} ms, "
                f"min {latencies[0]:.1f} ms, max {latencies[-1]:.1f} ms  (goal: median <= 100 ms)"
            )
            if args.idle_seconds > 0:
                proc = psutil.Process(watchdog.pid)
                time.sleep(2.0)
                cpu0, w0, t0 = proc.cpu_times(), wakeups(watchdog.pid), time.monotonic()
                time.sleep(args.idle_seconds)
                cpu1, w1, t1 = proc.cpu_times(), wakeups(watchdog.pid), time.monotonic()
                busy = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
                rss = proc.memory_info().rss / 1e6
                print(
                    f"watchdog idle over {t1 - t0:.0f} s: RSS {rss:.1f} MB (goal < 18 MB), "
                    f"CPU {100 * busy / (t1 - t0):.3f}%, wakeups {(w1 - w0) / (t1 - t0):.2f}/s (goal <= 1/s)"
                )
            if not args.no_api:
                for path in ("/", "/static/dashboard.js", "/api/status", "/api/events?since=0", "/healthz") * 5:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", path)
                    conn.getresponse().read()
                    conn.close()
                time.sleep(1.0)
                rss = psutil.Process(watchdog.pid).memory_info().rss / 1e6
                print(f"watchdog RSS after serving 25 dashboard/API requests: {rss:.1f} MB")
        finally:
            watchdog.send_signal(signal.SIGTERM)
            watchdog.wait(timeout=30)


if __name__ == "__main__":
    main()
