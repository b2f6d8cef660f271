"""`continuity worker`: run the worker process in the foreground (normally the watchdog starts it)."""

from __future__ import annotations

import sys

import click

from continuity.watchdog._errors import ConfigError
from continuity.watchdog.cli import CliState, pass_state

EX_CONFIG = 78


@click.command()
@pass_state
def worker(state: CliState) -> None:
    """Run the worker: the WhatsApp Web session, store, outbox and jobs, writing run/heartbeat.json.

    Normally `continuity start` runs this for you and restarts it when needed. Exit code 78 means the
    configuration is wrong (the watchdog then stops restarting it).
    """
    try:
        config = state.config
    except click.ClickException as exc:
        click.echo(f"continuity worker: configuration error: {exc.message}", err=True)
        sys.exit(EX_CONFIG)
    from .main import run_worker

    try:
        code = run_worker(state.home, config)
    except ConfigError as exc:
        click.echo(f"continuity worker: configuration error: {exc}", err=True)
        sys.exit(EX_CONFIG)
    sys.exit(code)
