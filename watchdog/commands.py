"""`continuity start | stop | status`: thin click commands over the supervisor, instance lock and status."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import click
import psutil

from .cli import CliState, pass_state
from .instance import running_watchdog
from .run import DETACHED_ENV, run, runner_argv
from .status import collect_status, format_status


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
    home.ensure()
    if detach:
        _start_detached(state, if_not_running=if_not_running)
        return
    argv = runner_argv(home, if_not_running=if_not_running)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name != "nt":
        os.execv(argv[0], argv)  # same pid; the long-running process does not carry click
    sys.exit(run(home, if_not_running=if_not_running))  # pragma: no cover - Windows


def _start_detached(state: CliState, *, if_not_running: bool) -> None:
    home = state.home
    existing = running_watchdog(home)
    if existing is not None:
        if if_not_running:
            click.echo(f"a watchdog is already running for {home.root} (pid {existing['pid']}); nothing to do")
            return
        raise click.ClickException(f"a watchdog is already running for {home.root} (pid {existing['pid']})")
    argv = runner_argv(home, if_not_running=if_not_running)
    out_path = home.logs_dir / "watchdog.out"
    kwargs: dict[str, Any] = {}
    if os.name == "nt":  # pragma: no cover - Windows only
        kwargs["creationflags"] = (
            subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
        )
    else:
        kwargs["start_new_session"] = True
    with open(out_path, "ab") as out:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home.root,
            env={**os.environ, DETACHED_ENV: "1"},
            **kwargs,
        )
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline:
        info = running_watchdog(home)
        if info is not None and info["pid"] == child.pid:
            click.echo(f"watchdog started in the background (pid {child.pid}) for {home.root}")
            click.echo(f"logs: {home.logs_dir}; status: continuity --home {home.root} status")
            return
        if child.poll() is not None:
            tail = out_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            raise click.ClickException(f"the watchdog exited at once ({child.returncode}):\n" + "\n".join(tail))
        time.sleep(0.05)
    raise click.ClickException(f"the watchdog (pid {child.pid}) did not come up within 15 s; see {out_path}")


@click.command()
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds to wait for the watchdog to stop (default: [watchdog] stop_timeout + 15).",
)
@pass_state
def stop(state: CliState, timeout: float | None) -> None:
    """Stop the watchdog and the worker's whole process tree (browser included)."""
    home = state.home
    info = running_watchdog(home)
    if info is None:
        click.echo(f"no watchdog is running for {home.root}")
        return
    pid = int(info["pid"])
    home.run_dir.mkdir(parents=True, exist_ok=True)
    home.stop_request_file.write_text(f"{os.getpid()}\n", encoding="utf-8")  # how Windows asks
    if os.name != "nt":
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    wait_s = timeout if timeout is not None else state.config.watchdog.stop_timeout + 15.0
    try:
        proc = psutil.Process(pid)
        proc.wait(timeout=wait_s)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        raise click.ClickException(
            f"the watchdog (pid {pid}) did not stop within {wait_s:g} s; see {home.logs_dir / 'watchdog.log'}"
        ) from None
    click.echo(f"stopped the watchdog (pid {pid}) and its worker for {home.root}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the shape is in DESIGN.md).")
@pass_state
def status(state: CliState, as_json: bool) -> None:
    """Show the watchdog, worker, heartbeat and health.

    Exit code: 0 healthy, 1 degraded or critical, 3 the watchdog is not running.
    """
    report, code = collect_status(state.home, state.config)
    click.echo(json.dumps(report, indent=2, default=str) if as_json else format_status(report))
    sys.exit(code)
