"""`continuity start | stop | status`: thin click commands over the supervisor, instance lock and status."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
import psutil

from .cli import MAX_WAIT_S, CliState, Seconds, pass_state
from .instance import DETACHED_ENV, STARTUP_PIPE_ENV, Home, WatchdogConfig, is_locked, running_watchdog
from .run import run, runner_argv
from .status import collect_status, format_status

STARTUP_TIMEOUT_S = 15.0


def _running(home: Home) -> dict[str, Any] | None:
    """running_watchdog, with a lock file that cannot be looked at turned into one clear line."""
    try:
        return running_watchdog(home)
    except OSError as exc:
        raise click.ClickException(f"cannot tell whether a watchdog runs for {home.root}: {exc}") from None


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
    existing = _running(home)
    if existing is not None:
        if if_not_running:
            click.echo(f"a watchdog is already running for {home.root} (pid {existing['pid']}); nothing to do")
            return
        raise click.ClickException(f"a watchdog is already running for {home.root} (pid {existing['pid']})")
    argv = runner_argv(home, if_not_running=if_not_running)
    out_path = home.watchdog_out_file
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":  # pragma: no cover - Windows only
        kwargs["creationflags"] = (
            subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        )
    else:
        kwargs["start_new_session"] = True
    try:
        out = open(out_path, "ab")  # noqa: SIM115 - handed to the child, closed right after
    except OSError as exc:
        raise click.ClickException(f"cannot write {out_path}: {exc}") from None
    with out:  # stderr: a pipe until the watchdog is up, so its reason to fail is seen even on a full disk
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            cwd=home.root,
            env={**os.environ, DETACHED_ENV: "1", STARTUP_PIPE_ENV: "1"},
            **kwargs,
        )
    said = _first_words(child, out_path)
    deadline = time.monotonic() + 2.0
    while (code := child.poll()) is None and time.monotonic() < deadline:
        info = _running(home)
        if info is not None and info["pid"] == child.pid:
            click.echo(f"watchdog started in the background (pid {child.pid}) for {home.root}")
            click.echo(f"logs: {home.logs_dir}; status: continuity --home {home.root} status")
            return
        time.sleep(0.05)
    if code is None:
        raise click.ClickException(
            f"the watchdog (pid {child.pid}) did not come up within {STARTUP_TIMEOUT_S:g} s; see {out_path}"
        )
    if code == 0 and if_not_running:  # another start won the race: it said "nothing to do"
        click.echo("\n".join(said))
        return
    raise click.ClickException(_why_not_started(home, code, said or _tail(out_path), out_path))


def _first_words(child: subprocess.Popen[bytes], out_path: Path) -> list[str]:
    """What the watchdog wrote on stderr until it was up (the pipe closes) or gone, kept in the out file too."""
    chunks: list[bytes] = []
    stream = child.stderr
    if stream is not None:
        reader = threading.Thread(target=lambda: chunks.extend(stream), name="first-words", daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT_S)
    data = b"".join(chunks)
    if data:
        with contextlib.suppress(OSError), open(out_path, "ab") as out:
            out.write(data)
    return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]


def _tail(path: Path, count: int = 5) -> list[str]:
    """The last lines of the out file; never read from a device (a link to /dev/full would never end)."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return []
            handle.seek(max(0, info.st_size - 4096))
            data = handle.read(4096)
    except OSError:
        return []
    return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()][-count:]


def _why_not_started(home: Home, code: int, lines: list[str], out_path: Path) -> str:
    """One line when the watchdog said one thing (its "Error: " dropped), else its last words, else a guess."""
    said = [line.removeprefix("Error: ") for line in lines[-5:]]
    if len(said) == 1:
        return f"the watchdog did not start (exit code {code}): {said[0]}"
    if said:
        return f"the watchdog exited at once (exit code {code}):\n" + "\n".join(said)
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(home.root).free
        if free < 1 << 20:
            return f"the watchdog exited at once (exit code {code}); the disk of {home.root} is full ({free} B free)"
    return f"the watchdog exited at once (exit code {code}) without a word; see {out_path} and its logs"


@click.command()
@click.option(
    "--timeout",
    type=Seconds(MAX_WAIT_S),
    default=None,
    help="Seconds to wait for the watchdog to stop (default: [watchdog] stop_timeout + 15).",
)
@pass_state
def stop(state: CliState, timeout: float | None) -> None:
    """Stop the watchdog and the worker's whole process tree (browser included)."""
    home = state.home
    info = _running(home)  # the lock decides: a garbage run/watchdog.json hides no watchdog
    if info is None:
        click.echo(f"no watchdog is running for {home.root}")
        return
    pid: int | None = info.get("pid")
    try:
        home.stop_request_file.write_text(f"{os.getpid()}\n", encoding="utf-8")  # how Windows asks
    except OSError as exc:  # a full disk: the signal alone will do, when the pid is known
        if pid is None:
            raise click.ClickException(f"cannot ask the watchdog to stop: {exc}") from None
    if pid is not None and os.name != "nt":
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        wait_s = timeout if timeout is not None else state.config.watchdog.stop_timeout + 15.0
    except click.ClickException as exc:  # a config being edited must not keep the running watchdog from stopping
        click.echo(f"warning: {exc.message}; waiting the default stop_timeout", err=True)
        wait_s = WatchdogConfig().stop_timeout + 15.0
    if not _wait_stopped(home, pid, wait_s):
        raise click.ClickException(
            f"the watchdog (pid {pid}) did not stop within {wait_s:g} s; see {home.watchdog_log_file}"
        )
    click.echo(f"stopped the watchdog (pid {pid}) and its worker for {home.root}")


def _wait_stopped(home: Home, pid: int | None, timeout_s: float) -> bool:
    """Wait until the watchdog let its lock go, then until its process is gone; False after `timeout_s` s."""
    deadline = time.monotonic() + timeout_s
    while is_locked(home.watchdog_lock_file):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    if pid is not None:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).wait(timeout=max(0.0, deadline - time.monotonic()))
    return True


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
    from .fleet import collect_all, find_homes, summary_line

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
