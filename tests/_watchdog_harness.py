"""Helpers for tests that run a real watchdog process on a real home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import DETACHED_ENV, Home

TOY = Path(__file__).with_name("_toy_worker.py")

FAST = {
    "heartbeat_timeout": 1.0,
    "startup_grace": 2.0,
    "check_interval": 0.1,
    "restart_delay": 0,
    "restart_delay_max": 1.0,
    "stop_timeout": 1.0,
}


def ignore_sigint() -> None:
    """preexec_fn: start a child with SIGINT ignored, as nohup, a script's `cmd &` and some CI runners do."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def toml_value(value: Any) -> str:
    return json.dumps(value)


def write_config(home: Home, *, toy: str | None = None, toy_arg: str = "", **watchdog: Any) -> None:
    """continuity.toml with fast watchdog timings; `toy` names a _toy_worker.py mode as the worker command."""
    settings = {**FAST, **watchdog}
    if toy is not None:
        settings["worker_command"] = [sys.executable, str(TOY), toy, *([toy_arg] if toy_arg else [])]
    body = "[watchdog]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in settings.items())
    body += "[worker]\nheartbeat_interval = 0.2\n"
    home.config_file.write_text(body, encoding="utf-8")


def start_watchdog(home: Home, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`continuity --home HOME start` as a real child process (its output captured; `env` added to ours)."""
    return subprocess.Popen(
        [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "start", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, DETACHED_ENV: "1", **(env or {})},
    )


def events(home: Home, kind: str | None = None) -> list[dict[str, Any]]:
    """Every event recorded so far (optionally of one kind), oldest first."""
    try:
        lines = home.events_file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    found = [json.loads(line) for line in lines if line.strip()]
    return [e for e in found if kind is None or e["event"] == kind]


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll `predicate` every 20 ms until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_event(home: Home, kind: str, *, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait until `count` events of `kind` are recorded; returns them."""
    return wait_for(
        lambda: (found := events(home, kind)) and len(found) >= count and found,
        timeout=timeout,
        what=f"{count} x {kind} event",
    )


def stop_watchdog(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    """SIGTERM the watchdog, wait for it, return its output."""
    if proc.poll() is None:
        proc.terminate()
    out, _ = proc.communicate(timeout=timeout)
    return out


def assert_each_sigterm_arrives(script: str, home: Home, *, count: int, who: str) -> None:
    """Run `script` (it prints "ready", then "stop seen" once per stop it notices) and send it `count` SIGTERMs one
    by one: each must be seen within 5 s, else its handler deadlocked."""
    import queue
    import signal
    import threading

    import pytest

    child = subprocess.Popen([sys.executable, "-c", script, str(home.root)], stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert child.stdout is not None
    stdout = child.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        assert lines.get(timeout=30) == "ready\n"
        for sent in range(1, count + 1):
            child.send_signal(signal.SIGTERM)
            try:
                seen = lines.get(timeout=5)
            except queue.Empty:
                pytest.fail(f"SIGTERM {sent} never reached the loop: the {who} deadlocked in its handler")
            assert seen == "stop seen\n"
    finally:
        child.kill()
        child.wait(timeout=10)
