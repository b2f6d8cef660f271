"""`continuity tokens add | list | remove | import | export | backup`: thin wrappers over the token store."""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING, Any

import click

from ..instance import write_bytes_atomic
from . import CliState, pass_state
from ._common import echo, store_errors

if TYPE_CHECKING:
    from continuity.worker.store import TokenStore


def _write_output(path: str, data: bytes) -> None:
    """Replace a regular (or new) file atomically; write straight into a device or pipe (/dev/stdout, a FIFO),
    which must never be replaced by a file. A write error is one line."""
    try:
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except FileNotFoundError:
            regular = True
        if regular:
            write_bytes_atomic(path, data)
        else:
            with open(path, "wb") as handle:
                handle.write(data)
    except OSError as exc:
        raise click.ClickException(f"could not write {path}: {exc.strerror or exc}") from exc


def _open_store(state: CliState) -> TokenStore:
    from continuity.worker.store import TokenStore

    worker = state.config.worker
    return TokenStore.open(
        state.home, backup_interval=worker.backup_interval, max_backups=worker.max_backups, source="cli"
    )


@click.group()
def tokens() -> None:
    """Tracked tokens: add, list, remove, import, export, back up (on disk when a command returns)."""


@tokens.command("add")
@click.argument("token_id")
@click.option("--symbol", default=None, help="Token symbol, e.g. PEPE.")
@click.option("--chain", default=None, help="Chain, e.g. ethereum.")
@click.option("--data", "data_json", default=None, metavar="JSON", help="More fields, as a JSON object.")
@pass_state
def add(state: CliState, token_id: str, symbol: str | None, chain: str | None, data_json: str | None) -> None:
    """Add a token (fails if the id is already tracked)."""
    from continuity.worker.store import InvalidRecord, loads

    fields: dict[str, Any] = {}
    with store_errors():
        if data_json is not None:
            try:
                fields = loads(data_json, what="--data")
            except InvalidRecord:
                raise  # nested too deeply: a one-line error (exit 1)
            except ValueError as exc:
                raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--data") from exc
            if not isinstance(fields, dict):
                raise click.BadParameter("must be a JSON object", param_hint="--data")
            fields.pop("id", None)
        fields.update({key: value for key, value in (("symbol", symbol), ("chain", chain)) if value is not None})
        with _open_store(state) as store:
            record = store.add(token_id, **fields)
    click.echo(f"added {record['id']}")


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print a JSON array of records, each with "id".')
@pass_state
def list_(state: CliState, as_json: bool) -> None:
    """List tracked tokens."""
    with store_errors(), _open_store(state) as store:
        records = store.list()
    if as_json:
        echo(json.dumps(records, ensure_ascii=False))
        return
    rows = [f"{record['id']}\t{record.get('symbol') or '-'}\t{record.get('chain') or '-'}" for record in records]
    echo("\n".join(rows) if rows else "no tokens tracked")


@tokens.command("remove")
@click.argument("token_id")
@pass_state
def remove(state: CliState, token_id: str) -> None:
    """Stop tracking a token."""
    with store_errors(), _open_store(state) as store:
        store.remove(token_id)
    click.echo(f"removed {token_id}")


@tokens.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@pass_state
def import_(state: CliState, file: str) -> None:
    """Import tokens from FILE: a JSON list of records, an object keyed by id, or JSON lines (all or none)."""
    from continuity.worker.store import parse_import

    with open(file, "rb") as handle:
        data = handle.read()
    with store_errors():
        records = parse_import(data, what=click.format_filename(file))
        with _open_store(state) as store:
            count = store.import_records(records)
    click.echo(f"imported {count} token(s)")


@tokens.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="File (default: stdout).",
)
@pass_state
def export(state: CliState, output: str | None) -> None:
    """Print every token as a JSON array (the format `tokens import` reads)."""
    with store_errors(), _open_store(state) as store:
        records = store.list()
    text = json.dumps(records, ensure_ascii=False, indent=1)
    if output is None:
        echo(text)
    else:
        _write_output(output, (text + "\n").encode("utf-8"))
        click.echo(f"exported {len(records)} token(s) to {output}", err=True)


@tokens.command("backup")
@pass_state
def backup(state: CliState) -> None:
    """Write a verified backup to data/backups/ now."""
    with store_errors(), _open_store(state) as store:
        path = store.backup()
    click.echo(str(path))
