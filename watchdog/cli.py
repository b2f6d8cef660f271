"""`continuity` command line: a thin root group whose subcommands are imported only when used."""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any

import click

from .instance import Config, ConfigError, Home, load_config, undecodable_argument

# name -> "module:attribute". Loading lazily keeps `continuity start` free of selenium and quick to start.
COMMANDS: dict[str, str] = {
    "start": "continuity.watchdog.commands:start",
    "stop": "continuity.watchdog.commands:stop",
    "status": "continuity.watchdog.commands:status",
    "worker": "continuity.worker.commands:worker",
    "tokens": "continuity.worker.store_commands:tokens",
    "send": "continuity.worker.store_commands:send",
    "inbox": "continuity.worker.inbox_commands:inbox",
    "simulator": "continuity.worker.simulator.command:simulator",
    "doctor": "continuity.worker.browser_commands:doctor",
    "install": "continuity.watchdog.boot_commands:install",
    "uninstall": "continuity.watchdog.boot_commands:uninstall",
    "logs": "continuity.watchdog.logs_command:logs",
    "whatsapp": "continuity.worker.session_commands:whatsapp",
    "demo": "continuity.worker.demo:demo",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs or is listed."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module_name, attribute = self.lazy_commands[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@dataclass
class CliState:
    """What every subcommand gets: the home, and the config read once on first use."""

    home: Home
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        """The instance's config; a bad file becomes a ClickException naming the file and key."""
        if self._config is None:
            try:
                self._config = load_config(self.home.config_file)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._config


pass_state = click.make_pass_decorator(CliState)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Instance directory (config, data, logs, browser profile). Default: $CONTINUITY_HOME, else the current "
    "directory.",
)
@click.version_option(package_name="continuity")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Keep a WhatsApp Web automation and its token tracking running 24/7.

    `continuity start` runs the watchdog, which runs the worker (browser session, token store, outbox, jobs),
    restarts it when it dies or hangs, and kills its whole process tree. Everything lives in one instance directory.
    """
    ctx.obj = CliState(Home.resolve(home))


def main() -> None:
    """Console-script entry point. Arguments that are not text (undecodable bytes) are refused in one line: no
    log, JSON or TOML could hold them."""
    import sys

    if complaint := undecodable_argument(sys.argv[1:]):
        click.echo(f"Error: {complaint}", err=True)
        sys.exit(2)
    cli()


def interrupt_on_stop_signals() -> None:
    """For commands that run until interrupted: SIGTERM (and SIGBREAK on Windows) stop them as Ctrl+C does, and
    Ctrl+C works even when the command was started with SIGINT ignored (nohup, `cmd &` in a script, some CI)."""
    import signal

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)


MAX_WAIT_S = 86400.0  # a day: any longer wait is a typo


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
