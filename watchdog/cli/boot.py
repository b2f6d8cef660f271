"""`continuity install task|cron|systemd` and `continuity uninstall ...`: start the watchdog at boot."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click

from .. import boot
from ..instance import Home
from . import CliState, pass_state

_PRINT = click.option("--print", "print_only", is_flag=True, help="Only print what would be installed.")


@contextlib.contextmanager
def _boot_errors() -> Iterator[None]:
    """What the boot library refuses (boot.BootError: a command failed, a bad instance name) becomes one line."""
    try:
        yield
    except boot.BootError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def install() -> None:
    """Start the watchdog when the machine boots (Windows Task Scheduler, cron or systemd)."""


@click.group()
def uninstall() -> None:
    """Remove what `continuity install` added."""


@install.command("task")
@_PRINT
@pass_state
def install_task(state: CliState, print_only: bool) -> None:
    """Windows: a scheduled task at boot and logon, restarted on failure, never time-limited."""
    home = state.home
    xml = boot.task_xml(home)
    if print_only:
        click.echo(xml, nl=False)
        return
    path = boot.write_task_xml(home, xml)
    command = subprocess.list2cmdline(boot.schtasks_create(home))
    if os.name != "nt":
        click.echo(xml, nl=False)
        click.echo(f"\nWrote {path} (UTF-16). Task Scheduler exists only on Windows; there, run:\n  {command}")
        click.echo(f"  schtasks /Run /TN {boot.task_name(home)}")
        return
    with _boot_errors():  # pragma: no cover - Windows only
        boot.run_commands([boot.schtasks_create(home)])
    click.echo(f"registered task {boot.task_name(home)} from {path}")  # pragma: no cover


@uninstall.command("task")
@_PRINT
@pass_state
def uninstall_task(state: CliState, print_only: bool) -> None:
    """Windows: delete the scheduled task."""
    home = state.home
    command = subprocess.list2cmdline(boot.schtasks_delete(home))
    if print_only or os.name != "nt":
        click.echo(command if print_only else f"Task Scheduler exists only on Windows; there, run:\n  {command}")
        return
    with _boot_errors():  # pragma: no cover - Windows only
        boot.run_commands([boot.schtasks_delete(home)])
    boot.task_xml_path(home).unlink(missing_ok=True)  # pragma: no cover
    click.echo(f"deleted task {boot.task_name(home)}")  # pragma: no cover


@install.command("cron")
@_PRINT
@pass_state
def install_cron(state: CliState, print_only: bool) -> None:
    """Linux/macOS: an @reboot line and a */5 line (`start --detach --if-not-running`) in your crontab."""
    if print_only:
        click.echo("\n".join(boot.cron_lines(state.home)))
        return
    with _boot_errors():
        lines = boot.install_cron(state.home)
    click.echo("added to your crontab (lines marked with the home; run again to refresh, `uninstall cron` to remove):")
    click.echo("\n".join(f"  {line}" for line in lines))


@uninstall.command("cron")
@_PRINT
@pass_state
def uninstall_cron(state: CliState, print_only: bool) -> None:
    """Remove this home's lines from your crontab (other lines stay as they are)."""
    if print_only:
        click.echo(f"would remove the lines ending in: {boot.CRON_MARKER}{state.home.root}")
        return
    with _boot_errors():
        removed = boot.uninstall_cron(state.home)
    click.echo(f"removed {removed} line(s) from your crontab" if removed else "no lines for this home in your crontab")


_USER = click.option(
    "--user", "user_unit", is_flag=True, help="A user unit (systemctl --user) instead of a system one."
)
_DIR = click.option(
    "--dir",
    "target_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the unit into this folder and only print the systemctl commands (default: the systemd folder, "
    "and run them).",
)


_INSTANCE = click.option(
    "--instance",
    metavar="NAME",
    default=None,
    help="Many accounts: the template unit continuity@.service, whose instance NAME has the home --home/NAME "
    "(systemctl start continuity@NAME).",
)


@install.command("systemd")
@_PRINT
@_USER
@_DIR
@_INSTANCE
@pass_state
def install_systemd(
    state: CliState, print_only: bool, user_unit: bool, target_dir: Path | None, instance: str | None
) -> None:
    """Linux: a systemd unit with Restart=always and KillMode=control-group, enabled and started.

    With --instance NAME, --home is the folder of the instances' homes: the template continuity@.service runs
    `continuity --home HOME/%i start`, and continuity@NAME is enabled and started (home HOME/NAME)."""
    home = state.home
    with _boot_errors():
        if instance is not None:
            unit_file, unit = boot.TEMPLATE_UNIT, boot.instance_unit_name(instance)
            text = boot.systemd_template_unit(home, user=user_unit)
        else:
            unit_file = unit = boot.unit_name(home)
            text = boot.systemd_unit(home, user=user_unit)
    if print_only:
        click.echo(text, nl=False)
        return
    folder = target_dir or boot.unit_dir(user=user_unit)
    folder.mkdir(parents=True, exist_ok=True)
    if instance is not None:
        home.root.mkdir(
            parents=True, exist_ok=True
        )  # the unit's WorkingDirectory; the instance's home is made by start
    path = folder / unit_file
    path.write_text(text, encoding="utf-8")
    commands = boot.systemctl_commands(home, user=user_unit, enable=True, unit=unit)
    shown = " && ".join(shlex.join(c) for c in commands)
    if target_dir is not None:
        click.echo(f"wrote {path}; to enable it: {shown}")
        return
    with _boot_errors():
        boot.run_commands(commands)
    click.echo(f"wrote {path} and ran: {shown}")


@uninstall.command("systemd")
@_PRINT
@_USER
@_DIR
@_INSTANCE
@pass_state
def uninstall_systemd(
    state: CliState, print_only: bool, user_unit: bool, target_dir: Path | None, instance: str | None
) -> None:
    """Linux: stop and disable the unit, then delete it (--instance NAME: only stop and disable continuity@NAME;
    the template stays for the other instances, and the home stays)."""
    home = state.home
    if instance is not None:
        _uninstall_instance(home, instance, print_only=print_only, user_unit=user_unit, target_dir=target_dir)
        return
    commands = boot.systemctl_commands(home, user=user_unit, enable=False)
    path = (target_dir or boot.unit_dir(user=user_unit)) / boot.unit_name(home)
    shown = " && ".join(shlex.join(c) for c in commands)
    if print_only:
        click.echo(f"{shlex.join(commands[0])} && rm {shlex.quote(str(path))} && {shlex.join(commands[1])}")
        return
    if target_dir is None:
        with _boot_errors():
            boot.run_commands(commands[:1])
    existed = path.exists()
    path.unlink(missing_ok=True)
    if target_dir is None:
        with _boot_errors():
            boot.run_commands(commands[1:])
        click.echo(f"disabled and removed {path}")
    else:
        click.echo(f"{'removed' if existed else 'no unit at'} {path}; also run: {shown}")


def _uninstall_instance(
    home: Home, instance: str, *, print_only: bool, user_unit: bool, target_dir: Path | None
) -> None:
    with _boot_errors():
        commands = boot.systemctl_commands(home, user=user_unit, enable=False, unit=boot.instance_unit_name(instance))
    shown = " && ".join(shlex.join(c) for c in commands)
    if print_only or target_dir is not None:
        click.echo(shown if print_only else f"run: {shown}")
        return
    with _boot_errors():
        boot.run_commands(commands)
    click.echo(f"disabled {commands[0][-1]}; {boot.TEMPLATE_UNIT} stays for the other instances")
