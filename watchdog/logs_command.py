"""`continuity logs [-f] [--events] [-n N]`: the last lines of the logs, or the events, pretty-printed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from .cli import CliState, interrupt_on_stop_signals, pass_state

POLL_S = 0.3


def tail_lines(path: Path, count: int, *, block: int = 64 * 1024) -> list[str]:
    """The last `count` lines of a text file (reads from the end, never the whole file)."""
    if count <= 0:
        return []
    try:
        with open(path, "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            data, pos = b"", end
            while pos > 0 and data.count(b"\n") <= count:
                step = min(block, pos)
                pos -= step
                handle.seek(pos)
                data = handle.read(step) + data
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-count:]


def format_event(event: dict[str, Any]) -> str:
    """`2026-11-22 15:52:25 watchdog  state  old=running new=backoff ...` (local time)."""
    ts = event.get("ts")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if isinstance(ts, int | float) else "?"
    fields = []
    for key, value in event.items():
        if key in ("ts", "source", "event"):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        shown = shown.replace("\n", " | ")
        fields.append(f"{key}={shown[:200]}")
    return f"{when} {event.get('source', '?')!s:<8} {event.get('event', '?')}  {' '.join(fields)}".rstrip()


def _format_line(line: str, *, events: bool) -> str:
    if not events:
        return line
    try:
        event = json.loads(line)
    except ValueError:
        return line
    return format_event(event) if isinstance(event, dict) else line


class _Follower:
    """Yields lines appended to a file, surviving rotation (the file replaced or truncated)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None
        self.ident: tuple[int, int] | None = None
        self.partial = b""
        self._open(at_end=True)

    def _open(self, *, at_end: bool) -> None:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        except FileNotFoundError:
            return
        st = os.fstat(handle.fileno())
        self.handle, self.ident, self.partial = handle, (st.st_dev, st.st_ino), b""
        if at_end:
            handle.seek(0, os.SEEK_END)

    def read(self) -> list[str]:
        if self.handle is None:
            self._open(at_end=False)
            if self.handle is None:
                return []
        data = self.partial + self.handle.read()
        try:
            st = os.stat(self.path)
            replaced = (st.st_dev, st.st_ino) != self.ident or st.st_size < self.handle.tell()
        except FileNotFoundError:
            replaced = False
        *lines, self.partial = data.split(b"\n")
        if replaced:
            self.handle.close()
            self.handle = None
            self._open(at_end=False)
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]


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
    followers = {name: _Follower(path) for name, path in files.items()}
    interrupt_on_stop_signals()
    try:
        while True:
            for name, follower in followers.items():
                for line in follower.read():
                    prefix = f"[{name}] " if len(files) > 1 else ""
                    click.echo(prefix + _format_line(line, events=show_events))
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        return
