"""`continuity send PHONE|group:NAME TEXT`: queue a message in the outbox (the worker sends it)."""

from __future__ import annotations

import click

from . import CliState, pass_state
from ._common import store_errors


@click.command()
@click.argument("phone")
@click.argument("text")
@click.option("--dedupe-key", default=None, help="Never queue two messages with this key.")
@pass_state
def send(state: CliState, phone: str, text: str, dedupe_key: str | None) -> None:
    """Queue TEXT for PHONE (digits with country code; '+', spaces and dashes are ignored), or for a group:
    "group:NAME" with the group's exact title."""
    from continuity.worker.store import Outbox

    worker = state.config.worker
    with (
        store_errors(),
        Outbox.open(
            state.home, backup_interval=worker.backup_interval, max_backups=worker.max_backups, source="cli"
        ) as box,
    ):
        message, created = box.enqueue(phone, text, dedupe_key=dedupe_key)
    if created:
        click.echo(f"queued {message['id']} to {message['phone']}")
    else:
        click.echo(f"already queued as {message['id']} ({message['state']}); not queued again")
