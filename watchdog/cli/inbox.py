"""`continuity inbox list [--json] [--since ...]`: a thin wrapper over the durable inbox (data/inbox.*)."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import click

from . import CliState, pass_state
from ._common import echo, store_errors

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_since(text: str, *, now: float | None = None) -> float:
    """Epoch seconds from "90s", "15m", "2h", "7d" (that long ago), a number (epoch seconds) or an ISO 8601 date or
    time ("2026-11-30", "2026-11-30T14:00:00+01:00"; without a zone: local time). ValueError otherwise."""
    text = text.strip()
    now = time.time() if now is None else now
    ago = _AGO.match(text.lower())
    if ago:
        return now - float(ago.group(1)) * _UNIT_S[ago.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r}: use 15m, 2h, 7d, epoch seconds, or an ISO date/time") from exc
    return when.timestamp()


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).isoformat(sep=" ", timespec="seconds")


@click.group()
def inbox() -> None:
    """Incoming WhatsApp messages, stored durably before they were marked read."""


@inbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of messages.")
@click.option("--since", default=None, metavar="WHEN", help="Only messages received since: 15m, 2h, 7d, an ISO date.")
@pass_state
def list_(state: CliState, as_json: bool, since: str | None) -> None:
    """List stored messages, oldest first: id, chat (digits or group name), sender, text, time received."""
    from continuity.worker.store._inbox import Inbox

    try:
        cutoff = parse_since(since) if since is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    worker = state.config.worker
    with store_errors(), Inbox.open(state.home, backup_interval=worker.backup_interval, source="cli") as store:
        messages = store.messages(since=cutoff)
    if as_json:
        echo(json.dumps(messages, ensure_ascii=False))
        return
    rows = [
        f"{_when(float(m.get('received_at') or 0))}\t{m.get('chat')}\t{m.get('sender')}\t{m['id']}\t"
        + str(m.get("text") or "").replace("\n", " ")
        for m in messages
    ]
    echo("\n".join(rows) if rows else "no messages")
