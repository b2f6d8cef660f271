"""`continuity start | stop | status | worker`: thin click commands over the watchdog's main (watchdog/run.py),
starting and stopping it from outside (watchdog/lifecycle.py), the status report and the worker's main."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..instance import ContinuityError, WatchdogConfig
from ..lifecycle import LifecycleError, request_stop, running, start_detached, wait_stopped
from ..run import run, runner_argv
from ..status import collect_status, format_status
from . import CliState, pass_state
from ._common import seconds_option


@click.command()
@click.option("--detach", is_flag=True, help="Run the watchdog in the background and return once it is up.")
@click.option(
    "--if-not-running",
    is_flag=True,
    help="Exit 0 quietly when a watchdog already runs for this home (for a cron line every few minutes).",
)
@pass_state
def start(state: CliState, detach: bool, if_not_running: bool) -> None:
    """Start the watchdog, which starts the worker and keeps it running.

    The worker is restarted when it exits or its heartbeat (run/heartbeat.json) stops changing, after a delay
    that backs off on repeated early failures, at most [watchdog] restart_limit times per restart_window.
    Logs: logs/watchdog.log, logs/worker.log, logs/events.jsonl. Stop with Ctrl+C or `continuity stop`.
    """
    _ = state.config  # a bad config fails here, with the key and file named, before anything starts
    home = state.home
    try:
        home.ensure()  # a directory where a file goes (or the reverse) fails here, with the path named
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    if detach:
        try:
            lines = start_detached(home, if_not_running=if_not_running)
        except ContinuityError as exc:  # already running, did not come up (its reason), cannot write its out file
            raise click.ClickException(str(exc)) from None
        click.echo("\n".join(lines))
        return
    argv = runner_argv(home, if_not_running=if_not_running)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name != "nt":
        os.execv(argv[0], argv)  # same pid; the long-running process does not carry click
    sys.exit(run(home, if_not_running=if_not_running))  # pragma: no cover - Windows


@click.command()
@seconds_option(
    "--timeout",
    "timeout",
    default=None,
    help="Seconds to wait for the watchdog to stop (default: [watchdog] stop_timeout + 15).",
)
@pass_state
def stop(state: CliState, timeout: float | None) -> None:
    """Stop the watchdog and the worker's whole process tree (browser included)."""
    home = state.home
    try:
        info = running(home)  # the lock decides: a garbage run/watchdog.json hides no watchdog
        if info is None:
            click.echo(f"no watchdog is running for {home.root}")
            return
        pid: int | None = info.get("pid")
        request_stop(home, pid)
    except LifecycleError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        wait_s = timeout if timeout is not None else state.config.watchdog.stop_timeout + 15.0
    except click.ClickException as exc:  # a config being edited must not keep the running watchdog from stopping
        click.echo(f"warning: {exc.message}; waiting the default stop_timeout", err=True)
        wait_s = WatchdogConfig().stop_timeout + 15.0
    if not wait_stopped(home, pid, wait_s):
        raise click.ClickException(
            f"the watchdog (pid {pid}) did not stop within {wait_s:g} s; see {home.watchdog_log_file}"
        )
    click.echo(f"stopped the watchdog (pid {pid}) and its worker for {home.root}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the shape is in DESIGN.md).")
@click.option(
    "--all",
    "all_homes",
    is_flag=True,
    help="One line per home for each DIR that is a home or a folder of homes (default: --home as either).",
)
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@pass_state
def status(state: CliState, as_json: bool, all_homes: bool, dirs: tuple[Path, ...]) -> None:
    """Show the watchdog, worker, heartbeat and health.

    Exit code: 0 healthy, 1 degraded or critical, 3 the watchdog is not running (--all: the highest of the homes).
    """
    if dirs and not all_homes:
        raise click.UsageError("folders are for --all: continuity status --all DIR...")
    if all_homes:
        _status_all(list(dirs) or [state.home.root], as_json=as_json)
    try:
        report, code = collect_status(state.home, state.config)
    except OSError as exc:
        raise click.ClickException(f"cannot read the status of {state.home.root}: {exc}") from None
    click.echo(json.dumps(report, indent=2, default=str) if as_json else format_status(report))
    sys.exit(code)


def _status_all(dirs: list[Path], *, as_json: bool) -> None:
    from ..fleet import collect_all, find_homes, summary_line

    try:
        homes = find_homes(dirs)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    if not homes:
        raise click.ClickException(f"no instance home in {', '.join(map(str, dirs))}")
    results, code = collect_all(homes)
    if as_json:
        click.echo(json.dumps([report for report, _code in results], indent=2, default=str))
    else:
        click.echo("\n".join(summary_line(report, one) for report, one in results))
    sys.exit(code)


@click.command()
@pass_state
def worker(state: CliState) -> None:
    """Run the worker: the WhatsApp Web session, store, outbox and jobs, writing run/heartbeat.json.

    Normally `continuity start` runs this for you and restarts it when needed. Exit code 78 means the
    configuration is wrong (the watchdog then stops restarting it).
    """
    from continuity.worker.main import main

    sys.exit(main(state.home))
