"""A whole local system for the demo, the chaos soak and benchmarks: simulator + home + real watchdog process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import DETACHED_ENV, Home, read_events, read_heartbeat

from .simulator import Simulator


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the API of a rig must not collide with a real instance's 8765)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RigError(RuntimeError):
    """Something the rig waited for did not happen in time."""


class Rig:
    """Simulator on 127.0.0.1, a fresh home pointed at it (headless), and `continuity start` as a child process."""

    def __init__(self, root: Path, *, recipients: list[str], settings: str = "") -> None:
        self.home = Home(root)
        self.home.root.mkdir(parents=True, exist_ok=True)
        self.home.ensure()
        self.recipients = recipients
        self.settings = settings
        self.sim = Simulator(port=0, qr_rotate_s=30.0)
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.api_port = _free_port()

    def __enter__(self) -> Rig:
        self.sim.start()
        self.home.config_file.write_text(
            "[watchdog]\nrestart_delay = 0.5\nheartbeat_timeout = 30\nstartup_grace = 60\nstop_timeout = 10\n"
            "[worker]\nheartbeat_interval = 1\n"
            f'[whatsapp]\nurl = "{self.sim.url}"\nheadless = true\nprobe_interval = 2\nsend_min_interval = 0.3\n'
            "send_ack_timeout = 10\nreconnect_backoff = [0.5, 10]\n"
            # the simulator's fake phone cannot be banned: no sending limits (a soak sends hundreds an hour)
            "max_per_minute = 1000000\nmax_per_hour = 1000000\nmax_per_day = 1000000\n"
            f"[notify]\nrecipients = {json.dumps(self.recipients)}\n"
            f"[api]\nport = {self.api_port}\n" + self.settings,
            encoding="utf-8",
        )
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self.sim.stop()

    # -- processes ----------------------------------------------------------------------------------------
    def start(self) -> None:
        argv = [sys.executable, "-m", "continuity.watchdog.run", "--home", str(self.home.root)]
        self.watchdog = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, DETACHED_ENV: "1"}
        )

    def stop(self, timeout_s: float = 60.0) -> int | None:
        if self.watchdog is None:
            return None
        if self.watchdog.poll() is None:
            self.watchdog.send_signal(signal.SIGTERM)
            try:
                self.watchdog.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.watchdog.kill()
                self.watchdog.wait()
        return self.watchdog.returncode

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "continuity.watchdog", "--home", str(self.home.root), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    # -- observing ----------------------------------------------------------------------------------------
    def heartbeat(self) -> dict[str, Any]:
        return read_heartbeat(self.home.heartbeat_file) or {}

    def whatsapp_state(self) -> str | None:
        return (self.heartbeat().get("whatsapp") or {}).get("state")

    def worker_pid(self) -> int | None:
        pid = self.heartbeat().get("pid")
        return pid if isinstance(pid, int) else None

    def events(self, kind: str | None = None, since: float = 0.0) -> list[dict[str, Any]]:
        return [e for e in read_events(self.home.events_file, since=since) if kind is None or e["event"] == kind]

    def ledger(self) -> list[str]:
        path = self.home.data_dir / "sent_tokens.txt"
        with contextlib.suppress(FileNotFoundError):
            return [line for line in path.read_text(encoding="utf-8").split("\n") if line]
        return []

    def wait(self, check: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.1)
        raise RigError(f"{what}: not within {timeout_s:g} s (WhatsApp {self.whatsapp_state()})")

    def wait_ready(self, *, timeout_s: float = 90.0, other_than_pid: int | None = None) -> float:
        """Seconds until a worker (other than `other_than_pid`) reports WhatsApp ready."""
        started = time.monotonic()
        self.wait(
            lambda: self.whatsapp_state() == "ready" and self.worker_pid() != other_than_pid,
            timeout_s=timeout_s,
            what="WhatsApp ready",
        )
        return time.monotonic() - started

    def link(self, *, timeout_s: float = 90.0) -> str:
        """Wait for the QR, scan it with the simulated phone, wait until the login is durable; returns the QR."""
        self.wait(lambda: self.home.qr_text_file.exists(), timeout_s=timeout_s, what="QR code")
        payload = self.home.qr_text_file.read_text(encoding="utf-8").strip()
        self.sim.scan()
        self.wait(
            lambda: self.whatsapp_state() == "ready" and self.home.linked_file.exists(),
            timeout_s=timeout_s,
            what="linked and ready",
        )
        return payload
