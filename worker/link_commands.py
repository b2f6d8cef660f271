"""`continuity whatsapp link --phone DIGITS`: link WhatsApp by a phone-number code instead of a QR scan.

The worker starts the code flow (control action `link-phone`, worker/session/linking.py); this command prints the
8-character code as soon as the heartbeat carries it (`whatsapp.pairing_code`), again whenever WhatsApp refreshes
it, and ends when the session is ready (exit 0) or the flow fails (exit 1, with the reason).
"""

from __future__ import annotations

import time
from typing import Any

import click

from continuity.watchdog.cli import MAX_WAIT_S, CliState, Seconds, pass_state
from continuity.watchdog.instance import control, phone_digits, read_heartbeat

POLL_S = 0.1
HOW_TO = "On the phone: WhatsApp > Linked devices > Link a device > Link with phone number instead, then type it."


def _fresh_whatsapp(state: CliState, since: float) -> dict[str, Any] | None:
    """The heartbeat's whatsapp section, if the heartbeat was written at or after `since` (Unix s)."""
    beat = read_heartbeat(state.home.heartbeat_file) or {}
    ts = beat.get("ts")
    if not isinstance(ts, int | float) or ts < since:
        return None
    section = beat.get("whatsapp")
    return section if isinstance(section, dict) else None


@click.command()
@click.option("--phone", required=True, help="The phone's number: digits with the country code (no '+').")
@click.option(
    "--wait",
    "wait_s",
    type=Seconds(MAX_WAIT_S),
    default=900.0,
    show_default=True,
    help="Seconds to wait for the phone to enter the code.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=Seconds(MAX_WAIT_S),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the worker to take the request (withdrawn after it: nothing is done).",
)
@pass_state
def link(state: CliState, phone: str, wait_s: float, timeout_s: float) -> None:
    """Link WhatsApp by a code typed on the phone instead of a QR scan; prints the code (and each refresh)."""
    digits = phone_digits(phone)
    if digits is None:
        raise click.ClickException(
            f"{phone!r} is not a phone number: use the phone's number as digits with the country code, e.g. 15551234567"
        )
    try:
        result = control.ask(
            state.home.control_dir, "link-phone", params={"phone": digits}, source="cli", timeout_s=timeout_s
        )
    except control.ActionTimeout as exc:
        raise click.ClickException(f"{exc}. Is the watchdog running (`continuity status`)?") from exc
    if not result.get("ok"):
        raise click.ClickException(str(result.get("message")))
    click.echo(f"linking +{digits} by phone number; waiting for the code ...")
    since = float(result.get("done_at") or time.time())
    deadline = time.monotonic() + wait_s
    shown: str | None = None
    while time.monotonic() < deadline:
        wa = _fresh_whatsapp(state, since)
        if wa is not None:
            code = wa.get("pairing_code")
            if isinstance(code, str) and code and code != shown:
                click.echo(f"{'code' if shown is None else 'new code'}: {code}    {HOW_TO if shown is None else ''}")
                shown = code
            if wa.get("pairing_error"):
                raise click.ClickException(f"linking failed: {wa['pairing_error']}")
            if wa.get("state") == "ready":
                click.echo("linked: WhatsApp is ready")
                return
        time.sleep(POLL_S)
    raise click.ClickException(f"not linked within {wait_s:g} s (the code was {shown or 'never shown'})")
