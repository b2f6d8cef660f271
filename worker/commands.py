"""`continuity worker`: run the worker process in the foreground (normally the watchdog starts it)."""

from __future__ import annotations

import sys

import click

from continuity.watchdog.cli import CliState, pass_state


@click.command()
@pass_state
def worker(state: CliState) -> None:
    """Run the worker: the WhatsApp Web session, store, outbox and jobs, writing run/heartbeat.json.

    Normally `continuity start` runs this for you and restarts it when needed. Exit code 78 means the
    configuration is wrong (the watchdog then stops restarting it).
    """
    from .main import main

    sys.exit(main(state.home))
