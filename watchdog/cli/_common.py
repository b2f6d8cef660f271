"""What the command modules share: the seconds option type, stdout that fails in one line, the store's errors
as one line, stop signals."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

MAX_WAIT_S = 86400.0  # a day: any longer wait is a typo

F = TypeVar("F", bound=Callable[..., Any])


class Seconds(click.FloatRange):
    """Seconds from 0 to `max_s`: nan, inf and anything longer are refused (they would wait for ever)."""

    name = "seconds"

    def __init__(self, max_s: float) -> None:
        super().__init__(min=0.0, max=max_s)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


def seconds_option(flag: str, dest: str, *, default: float | None, help: str) -> Callable[[F], F]:
    """A `--wait` / `--timeout` option: seconds from 0 to MAX_WAIT_S, its default shown when it has one."""
    return click.option(
        flag, dest, type=Seconds(MAX_WAIT_S), default=default, show_default=default is not None, help=help
    )


def echo(text: str) -> None:
    """Print to stdout; a write error (a full disk, a closed pipe) is one line, not a traceback."""
    try:
        click.echo(text)
    except OSError as exc:
        # What is left in stdout's buffer would fail again at exit: send it to the null device.
        with contextlib.suppress(OSError, ValueError):  # not a real file (a test runner's stream): nothing to do
            target = sys.stdout.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, target)
            os.close(null)
        raise click.ClickException(f"could not write to standard output: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """The durable store's errors (bad input, lock timeout, full disk, a read-only home) become one CLI line."""
    from continuity.worker.store import StoreError

    try:
        yield
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


def interrupt_on_stop_signals() -> None:
    """For commands that run until interrupted: SIGTERM (and SIGBREAK on Windows) stop them as Ctrl+C does, and
    Ctrl+C works even when the command was started with SIGINT ignored (nohup, `cmd &` in a script, some CI)."""
    import signal

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)
