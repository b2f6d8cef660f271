"""The demo (`continuity demo`, watchdog/cli/dev.py): the whole system working in about a minute, with no phone and
no network."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import click

from continuity.worker.session.qr import qr_terminal

from .rig import Rig, RigError

RECIPIENTS = ["15551230001", "15551230002"]


def _step(text: str) -> None:
    click.secho(f"\n==> {text}", bold=True)


def run_demo(*, keep: bool) -> list[str]:
    """Run the demo in a temporary instance directory (removed at the end unless `keep`), saying each step on
    stdout; returns the checks that failed (none: the demo passed)."""
    root = Path(tempfile.mkdtemp(prefix="continuity-demo-"))
    failures: list[str] = []
    try:
        with Rig(root, recipients=RECIPIENTS) as rig:
            _step(f"WhatsApp Web simulator at {rig.sim.url}; instance directory {root}")
            rig.start()
            _step("watchdog started; waiting for the worker's browser to show the QR code")
            click.echo(f"dashboard: http://127.0.0.1:{rig.api_port}/ (token for its buttons: {root}/run/api_token)")
            rig.wait(lambda: rig.home.qr_text_file.exists(), timeout_s=90, what="QR code")
            click.echo(qr_terminal(rig.home.qr_text_file.read_text().strip()))
            _step("the simulated phone scans it")
            started = time.monotonic()
            rig.link()
            click.echo(f"linked and ready in {time.monotonic() - started:.1f} s (login made durable)")
            _step("tracking three tokens (continuity tokens add ...)")
            for ident, symbol, chain in (
                ("So1aNa", "SOLX", "solana"),
                ("0xE7h", "ETHY", "ethereum"),
                ("bAsE9", "BSD", "base"),
            ):
                result = rig.cli("tokens", "add", ident, "--symbol", symbol, "--chain", chain)
                click.echo(f"  {result.stdout.strip() or result.stderr.strip()}")
            rig.wait(lambda: len(rig.sim.delivered()) >= 6, timeout_s=90, what="6 messages delivered")
            for message in rig.sim.delivered():
                click.echo(f"  delivered to +{message['phone']}: {message['text']}")
            _step("kill -9 of the worker (the browser goes down with it)")
            victim = rig.worker_pid()
            assert victim is not None
            if sys.platform == "win32":
                os.kill(victim, signal.SIGTERM)  # TerminateProcess: as abrupt as kill -9
            else:
                os.kill(victim, signal.SIGKILL)
            recovery = rig.wait_ready(other_than_pid=victim)
            click.echo(f"the watchdog restarted the worker; WhatsApp ready again in {recovery:.1f} s, no new QR")
            if rig.sim.state()["counts"]["scans"] != 1:
                failures.append("the restarted worker needed a new QR scan")
            _step("one more token after the crash")
            rig.cli("tokens", "add", "aFt3r", "--symbol", "AFTR", "--chain", "solana")
            rig.wait(lambda: len(rig.sim.delivered()) >= 8, timeout_s=90, what="8 messages delivered")
            rig.wait(lambda: len(rig.ledger()) == 4, timeout_s=60, what="4 tokens in the ledger")
            delivered = Counter((m["phone"], m["text"]) for m in rig.sim.delivered())
            duplicates = sum(n - 1 for n in delivered.values())
            restarts = len(rig.events("worker_spawned")) - 1
            status = rig.cli("status")
            click.echo(status.stdout)
            code = rig.stop()
            if duplicates:
                failures.append(f"{duplicates} duplicate message(s)")
            if len(delivered) != 8:
                failures.append(f"{len(delivered)} distinct messages delivered, expected 8")
            if code != 0:
                failures.append(f"the watchdog exited {code}")
            _step("summary")
            click.echo(
                f"delivered {sum(delivered.values())} messages, duplicates {duplicates}, worker restarts "
                f"{restarts}, recovery after kill -9 {recovery:.1f} s, tokens in ledger {len(rig.ledger())}"
            )
    except RigError as exc:
        failures.append(str(exc))
    finally:
        if keep:
            click.echo(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return failures
