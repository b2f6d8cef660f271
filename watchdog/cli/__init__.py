"""`continuity` command line: a thin root group whose subcommands are imported only when used.

Every command lives in this package, one module per group: service (start, stop, status, worker), boot (install,
uninstall), logs, tokens, send, inbox, whatsapp, doctor, dev (simulator, demo); shared options in _common. A
command parses its options, calls the library, and turns domain errors into click.ClickException. Worker and
devtools modules are imported inside the command functions, so `continuity --help` and `continuity start` load
neither selenium nor the worker."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import click

from ..instance import Config, ConfigError, Home, load_config, undecodable_argument

# name -> "module:attribute". Loading lazily keeps `continuity start` free of selenium and quick to start.
COMMANDS: dict[str, str] = {
    "start": "continuity.watchdog.cli.service:start",
    "stop": "continuity.watchdog.cli.service:stop",
    "status": "continuity.watchdog.cli.service:status",
    "worker": "continuity.watchdog.cli.service:worker",
    "install": "continuity.watchdog.cli.boot:install",
    "uninstall": "continuity.watchdog.cli.boot:uninstall",
    "logs": "continuity.watchdog.cli.logs:logs",
    "tokens": "continuity.watchdog.cli.tokens:tokens",
    "send": "continuity.watchdog.cli.send:send",
    "inbox": "continuity.watchdog.cli.inbox:inbox",
    "whatsapp": "continuity.watchdog.cli.whatsapp:whatsapp",
    "doctor": "continuity.watchdog.cli.doctor:doctor",
    "simulator": "continuity.watchdog.cli.dev:simulator",
    "demo": "continuity.watchdog.cli.dev:demo",
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
