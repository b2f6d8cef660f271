"""`continuity logs [-f] [--events] [-n N]`: the last lines of the logs, or the events, pretty-printed (reading:
watchdog/logtail.py)."""

from __future__ import annotations

import time

import click

from ..instance import JsonlFollower, parse_json_line
from ..logtail import format_event, tail_lines
from . import CliState, pass_state
from ._common import interrupt_on_stop_signals

POLL_S = 0.3


def _format_line(line: str, *, events: bool) -> str:
    if not events:
        return line
    event = parse_json_line(line)
    return line if event is None else format_event(event)


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl+C (or SIGTERM).")
@click.option("--events", "show_events", is_flag=True, help="Show logs/events.jsonl, one event a line.")
@click.option("-n", "--lines", "count", type=click.IntRange(min=0), default=20, show_default=True, help="Lines each.")
@pass_state
def logs(state: CliState, follow: bool, show_events: bool, count: int) -> None:
    """Show the end of logs/watchdog.log and logs/worker.log (or the events)."""
    home = state.home
    if show_events:
        files = {"events": home.events_file}
    else:
        files = {"watchdog": home.watchdog_log_file, "worker": home.worker_log_file}
    if not any(path.exists() for path in files.values()) and not follow:
        raise click.ClickException(f"no logs yet in {home.logs_dir} (has the watchdog been started for this home?)")
    for path in files.values():
        if len(files) > 1:
            click.echo(f"==> {path} <==")
        for line in tail_lines(path, count):
            click.echo(_format_line(line, events=show_events))
    if not follow:
        return
    followers = {name: JsonlFollower(path) for name, path in files.items()}
    interrupt_on_stop_signals()
    try:
        while True:
            for name, follower in followers.items():
                for line in follower.read_text():
                    prefix = f"[{name}] " if len(files) > 1 else ""
                    click.echo(prefix + _format_line(line, events=show_events))
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        return
