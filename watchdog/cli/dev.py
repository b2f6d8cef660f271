"""The development tools' commands (continuity.devtools): `continuity simulator` runs the local WhatsApp Web
simulator in the foreground until Ctrl+C; `continuity demo` shows the whole system locally.

The simulator's modes and variants are read here for the options' help; the rest of devtools is imported when a
command runs."""

from __future__ import annotations

import sys
import threading
from typing import Any

import click

from continuity.devtools.simulator._modes import MODES, check_mode
from continuity.devtools.simulator._variants import DEFAULT_VARIANT, VARIANTS

from ._common import interrupt_on_stop_signals


def _parse_mode(spec: str) -> tuple[str, dict[str, Any]]:
    """ "name" or "name:key=value" -> (name, params), validated; click.BadParameter saying why otherwise."""
    name, _, param = spec.partition(":")
    params: dict[str, Any] = {}
    if param:
        key, eq, value = param.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{spec!r}: expected NAME or NAME:KEY=VALUE", param_hint="--mode")
        try:
            params[key] = float(value) if key == "seconds" else value
        except ValueError:
            raise click.BadParameter(f"{spec!r}: seconds must be a number", param_hint="--mode") from None
    try:
        return name, check_mode(name, params)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mode") from exc


_VARIANTS_HELP = "\b\nVariants (--variant NAME):\n" + "\n".join(
    f"  {name:<18} {meaning}" for name, meaning in VARIANTS.items()
)


@click.command("simulator", epilog=_VARIANTS_HELP)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8766,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--host",
    type=click.Choice(["127.0.0.1"]),
    default="127.0.0.1",
    show_default=True,
    help="Bind address; loopback only.",
)
@click.option(
    "--qr-rotate",
    "--qr-rotate-s",
    "qr_rotate_s",
    type=click.FloatRange(0.1, 3600, min_open=False),
    default=20.0,
    show_default=True,
    help="Seconds each QR payload is shown.",
)
@click.option(
    "--qr-max-rotations",
    type=click.IntRange(0, 1000),
    default=5,
    show_default=True,
    help="QR rotations before the idle 'Click to reload QR code' state.",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    metavar="NAME[:KEY=VALUE]",
    help="Start with a fault/overlay mode on (repeatable), e.g. conflict, slow:seconds=3, locale:lang=pt, "
    "invalid_numbers:numbers=15550001111,15550002222. Modes: " + ", ".join(sorted(MODES)) + ".",
)
@click.option(
    "--variant",
    type=click.Choice(list(VARIANTS)),
    default=DEFAULT_VARIANT,
    show_default=True,
    help="Page markup variant (WhatsApp Web drift; markup only, the fake phone behaves the same). See Variants.",
)
def simulator(
    port: int, host: str, qr_rotate_s: float, qr_max_rotations: int, modes: tuple[str, ...], variant: str
) -> None:
    """Serve a local WhatsApp Web stand-in (real markup, fake phone, faults on demand) until Ctrl+C or SIGTERM.

    Point `whatsapp.url` at the printed URL. Control it with POST /__sim__/control, e.g.
    {"action": "scan"}, {"action": "logout"}, {"action": "set_mode", "mode": "conflict", "on": true},
    {"action": "set_variant", "variant": "ticks_renamed"} (pages show a new variant on their next load);
    read GET /__sim__/state.
    """
    from continuity.devtools.simulator import Simulator

    parsed = [_parse_mode(spec) for spec in modes]
    del host  # only 127.0.0.1 is allowed; the option exists to make that explicit
    sim = Simulator(port=port, qr_rotate_s=qr_rotate_s, qr_max_rotations=qr_max_rotations, variant=variant)
    try:
        sim.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    try:
        for name, params in parsed:
            sim.set_mode(name, **params)
        click.echo(f"WhatsApp Web simulator: {sim.url}")
        click.echo(f"control: POST {sim.control_url}  state: GET {sim.url}__sim__/state")
        click.echo("Ctrl+C to stop")
        interrupt_on_stop_signals()
        threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        sim.stop()


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo's instance directory (its logs and data) afterwards.")
def demo(keep: bool) -> None:
    """Show the whole system: simulator, watchdog, worker, QR, messages, a crash and its recovery.

    Everything runs locally (a WhatsApp Web simulator on 127.0.0.1, headless Chromium) in a temporary instance
    directory, which is removed at the end unless --keep. Exit 0 only when every check passed.
    """
    from continuity.devtools.demo import run_demo

    failures = run_demo(keep=keep)
    if failures:
        click.secho("demo FAILED: " + "; ".join(failures), fg="red", err=True)
        sys.exit(1)
    click.secho("demo passed: every check held", fg="green")
