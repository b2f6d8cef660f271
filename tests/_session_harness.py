"""Driving a real WhatsAppSession (real Chromium, real simulator) from a test, turn by turn."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from continuity.watchdog.instance import Config, EventLog, Home, WhatsAppConfig
from continuity.worker.delivery import OutboxSender
from continuity.worker.session import WhatsAppSession, WhatsAppState
from continuity.worker.store import Outbox
from tests._watchdog_harness import wait_for

# The built-in worker with a WhatsApp session, as `continuity worker` runs it, for a home given as argv[1].
WORKER = """
import sys
from continuity.watchdog.instance import load_config
from continuity.watchdog.instance import Home
from continuity.worker.main import build_worker
from continuity.worker.session import WhatsAppSession
home = Home.resolve(sys.argv[1])
config = load_config(home.config_file)
session = WhatsAppSession(home, config)
sys.exit(build_worker(home, config, session=session).run())
"""


def session_config(sim_url: str, **whatsapp: Any) -> Config:
    """Headless, fast probes and short backoffs, pointed at the simulator."""
    settings: dict[str, Any] = {
        "url": sim_url,
        "headless": True,
        "probe_interval": 0.5,
        "reconnect_backoff": [0.2, 2.0],
        "send_min_interval": 0.0,
        "send_ack_timeout": 3.0,
        **whatsapp,
    }
    return Config(whatsapp=WhatsAppConfig(**settings))


def drive(
    session: WhatsAppSession,
    until: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    extra: Callable[[], Any] | None = None,
) -> Any:
    """Call session.turn() (and `extra`) like the worker loop does until `until()` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hint = session.turn()
        if extra is not None:
            extra()
        result = until()
        if result:
            return result
        time.sleep(min(0.1, hint if hint is not None else 0.1))
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; state {session.state.value}")


def linked_session(home: Home, sim: Any, **whatsapp: Any) -> WhatsAppSession:
    """A session that has shown a QR, been scanned, and made its login durable."""
    session = WhatsAppSession(home, session_config(sim.url, **whatsapp), events=EventLog(home.events_file, source="t"))
    drive(session, lambda: session.state is WhatsAppState.QR, timeout=30, what="QR")
    sim.scan()
    drive(session, lambda: session.state is WhatsAppState.READY and session.was_linked(), timeout=30, what="ready")
    return session


def unpaced_sender(home: Home, outbox: Outbox, session: WhatsAppSession) -> OutboxSender:
    """The outbox's sender for `session`, with no interval between messages."""
    return OutboxSender(outbox, session, min_interval_s=0.0, events=EventLog(home.events_file, source="t"))


@contextlib.contextmanager
def sending_session(home: Home, sim: Any, **whatsapp: Any) -> Iterator[tuple[WhatsAppSession, Outbox, OutboxSender]]:
    """A linked session (`linked_session`), the home's outbox and its unpaced sender; both closed afterwards."""
    session = linked_session(home, sim, **whatsapp)
    outbox = Outbox.open(home)
    try:
        yield session, outbox, unpaced_sender(home, outbox, session)
    finally:
        session.close()
        outbox.close()


def write_worker_config(home: Home, sim_url: str) -> None:
    """continuity.toml for a worker process on the simulator: fast heartbeats and probes, short ack timeout."""
    home.config_file.write_text(
        f'[worker]\nheartbeat_interval = 0.5\n[whatsapp]\nurl = "{sim_url}"\nheadless = true\nprobe_interval = 0.5\n'
        "send_ack_timeout = 3\nsend_min_interval = 0\nreconnect_backoff = [0.2, 2.0]\n",
        encoding="utf-8",
    )


def run_worker_until(home: Home, until: Callable[[], Any], *, timeout: float, what: str) -> None:
    """Run a real worker process (its own process group) until `until()`, then SIGKILL the whole group."""
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(home.root)], start_new_session=True)
    try:
        wait_for(until, timeout=timeout, what=what)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
