"""The product as a user runs it: watchdog + built-in worker + real Chromium + simulator, CLI on the side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter

import psutil
import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import Home, read_heartbeat
from continuity.worker.browser import find_profile_holders
from tests._watchdog_harness import start_watchdog, stop_watchdog, wait_for, wait_for_event

pytestmark = pytest.mark.browser
RECIPIENTS = ["15551234567", "447700900123"]


def cli(home: Home, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def whatsapp_state(home: Home) -> str | None:
    return ((read_heartbeat(home.heartbeat_file) or {}).get("whatsapp") or {}).get("state")


def test_tokens_become_messages_exactly_once_through_a_worker_crash(home: Home, sim: Simulator) -> None:
    """QR -> scan -> ready; tokens added with the CLI become one message per recipient, exactly once, even though
    the worker is killed with SIGKILL mid-queue; the ledger lists every token; stop leaves no browser behind."""
    home.config_file.write_text(
        "[watchdog]\nrestart_delay = 0.5\nstartup_grace = 60\nheartbeat_timeout = 60\n"
        "[worker]\nheartbeat_interval = 1\n"
        f'[whatsapp]\nurl = "{sim.url}"\nheadless = true\nprobe_interval = 1\nsend_min_interval = 0.3\n'
        "send_ack_timeout = 5\nreconnect_backoff = [0.5, 5]\n"
        f"[notify]\nrecipients = {json.dumps(RECIPIENTS)}\n",
        encoding="utf-8",
    )
    watchdog = start_watchdog(home)
    try:
        wait_for(lambda: whatsapp_state(home) == "qr", timeout=60, what="QR")
        shown = cli(home, "whatsapp", "qr")
        assert shown.returncode == 0 and "Linked devices" in shown.stdout
        sim.scan()
        wait_for(
            lambda: whatsapp_state(home) == "ready" and home.linked_file.exists(),
            timeout=60,
            what="ready and linked",
        )
        for i in range(5):
            added = cli(home, "tokens", "add", f"tok{i}", "--symbol", f"S{i}", "--chain", "sol")
            assert added.returncode == 0, added.stderr
        wait_for(lambda: len(sim.delivered()) >= 2, timeout=60, what="first deliveries")
        worker_pid = read_heartbeat(home.heartbeat_file)["pid"]
        os.kill(worker_pid, signal.SIGKILL)
        wait_for_event(home, "worker_spawned", count=2, timeout=30)
        ledger = home.data_dir / "sent_tokens.txt"
        wait_for(lambda: ledger.exists() and len(ledger.read_text().split()) == 5, timeout=120, what="5 in ledger")
        delivered = Counter((d["phone"], d["text"]) for d in sim.delivered())
        assert len(delivered) == 10 and set(delivered.values()) == {1}, delivered
        assert {phone for phone, _ in delivered} == set(RECIPIENTS)
        assert sorted(ledger.read_text().split()) == [f"tok{i}" for i in range(5)]
        assert sim.state()["counts"]["scans"] == 1  # the restarted worker came back logged in
        check = cli(home, "whatsapp", "health-check")
        assert check.returncode == 0, check.stdout + check.stderr
        status = cli(home, "status", "--json")
        report = json.loads(status.stdout)
        assert report["heartbeat"]["tokens"]["active"] == 5 and report["heartbeat"]["outbox"]["pending"] == 0
        preview = report["heartbeat"]["tokens"]["preview"]  # what the dashboard lists: the worker publishes it
        assert preview["count"] == 5 and preview["items"][0] == {"id": "tok0", "symbol": "S0", "chain": "sol"}
        assert isinstance(report["heartbeat"]["whatsapp"]["profile_mib"], float)  # the API's session size
    finally:
        stop_watchdog(watchdog, timeout=60)
    assert watchdog.returncode == 0
    assert find_profile_holders(home.profile_dir) == []
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(home.root) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
