"""`continuity whatsapp qr | reconnect | restart-browser | clear-session | health-check | inspect | backup |
restore | link`: actions for the running worker go through run/control/ (the instance contract's `control`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..instance import EventLog, control, phone_digits, read_heartbeat, running_watchdog
from . import CliState, pass_state
from ._common import seconds_option


@click.group()
def whatsapp() -> None:
    """Steer the WhatsApp session of the running worker (actions go through run/control/)."""


@whatsapp.command()
@seconds_option("--wait", "wait_s", default=0.0, help="Seconds to wait for a QR code to appear.")
@pass_state
def qr(state: CliState, wait_s: float) -> None:
    """Show the QR code to scan with the phone (also in session/qr.png and on the dashboard)."""
    from continuity.worker.session.qr import qr_terminal

    path = state.home.qr_text_file
    deadline = time.monotonic() + wait_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not path.exists():
        wa = (read_heartbeat(state.home.heartbeat_file) or {}).get("whatsapp") or {}
        where = f"WhatsApp is {wa['state']}" if wa.get("state") else "no worker heartbeat"
        raise click.ClickException(f"no QR code is waiting for a scan ({where})")
    payload = path.read_text(encoding="utf-8").strip()
    click.echo(qr_terminal(payload))
    click.echo(
        f"Scan with WhatsApp on your phone: Settings > Linked devices > Link a device. "
        f"Image: {state.home.session_dir / 'qr.png'}"
    )


def _ask(state: CliState, action: str, timeout_s: float, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The worker's answer to `action`, or a one-line ClickException that says what became of the request."""
    try:
        return control.ask(state.home.control_dir, action, params=params, source="cli", timeout_s=timeout_s)
    except control.ActionTimeout as exc:
        raise click.ClickException(f"{exc}. Is the watchdog running (`continuity status`)?") from exc


def _run_action(state: CliState, action: str, timeout_s: float, params: dict[str, Any] | None = None) -> None:
    result = _ask(state, action, timeout_s, params)
    click.echo(f"{action}: {'ok' if result['ok'] else 'FAILED'} - {result['message']}")
    if result.get("details"):
        click.echo(json.dumps(result["details"], indent=2, default=str))
    sys.exit(0 if result["ok"] else 1)


_TIMEOUT = seconds_option(
    "--timeout",
    "timeout_s",
    default=60.0,
    help="Seconds to wait for the worker's answer (clear-session and restore are withdrawn after it; other actions "
    "stay queued for a worker for 10 minutes).",
)


@whatsapp.command()
@_TIMEOUT
@pass_state
def reconnect(state: CliState, timeout_s: float) -> None:
    """Reload WhatsApp Web and report the state it comes back in."""
    _run_action(state, "reconnect", timeout_s)


@whatsapp.command("restart-browser")
@_TIMEOUT
@pass_state
def restart_browser(state: CliState, timeout_s: float) -> None:
    """Close the browser cleanly and start it again (the login stays in the profile)."""
    _run_action(state, "restart-browser", timeout_s)


@whatsapp.command("health-check")
@_TIMEOUT
@pass_state
def health_check(state: CliState, timeout_s: float) -> None:
    """Probe the page now; exit 0 when WhatsApp is ready."""
    _run_action(state, "health-check", timeout_s)


@whatsapp.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_TIMEOUT
@pass_state
def inspect(state: CliState, as_json: bool, timeout_s: float) -> None:
    """Which selector of each page role matches on the live page now, WhatsApp Web's version and the state.

    "primary" is the table's first selector; "fallback N" a later one (it works, but WhatsApp changed something);
    "override" your [whatsapp.selectors] entry; "none" nothing matched (roles of an open chat show "none" or
    "not seen yet" while no chat is open). See README "WhatsApp changed its page: what to do".
    """
    result = _ask(state, "inspect", timeout_s)
    details = result.get("details") or {}
    if as_json:
        click.echo(json.dumps({"ok": result["ok"], "message": result["message"], **details}, indent=2))
    else:
        click.echo(f"state:       {details.get('state')}")
        click.echo(f"web version: {details.get('web_version') or 'unknown (window.Debug.VERSION not found)'}")
        for role, how in (details.get("roles") or {}).items():
            click.echo(f"  {role:<15} {how}")
        for bad in details.get("bad_selectors") or ():
            click.echo(f"  refused by the browser: {bad}")
        if details.get("unknown_popup"):
            click.echo(f"unknown popup (not clicked), buttons: {details['unknown_popup']}")
        if not result["ok"]:
            click.echo(result["message"])
    sys.exit(0 if result["ok"] else 1)


@whatsapp.command("clear-session")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_TIMEOUT
@pass_state
def clear_session(state: CliState, yes: bool, timeout_s: float) -> None:
    """Delete the browser profile's login: WhatsApp will show a new QR code to scan."""
    if not yes:
        click.confirm(
            "This logs WhatsApp Web out on this machine; you will have to scan a QR code again. Continue?", abort=True
        )
    _run_action(state, "clear-session", timeout_s)


# Backup and restore need Chromium closed. With a watchdog running, the worker owns the browser: it does the
# work (a clean browser restart around it) through a control action. With none running, the CLI does it here.
def _offline_backups(state: CliState) -> Any:
    from continuity.worker.browser import find_profile_holders
    from continuity.worker.session.backup import SessionBackups

    holders = find_profile_holders(state.home.profile_dir)
    if holders:
        pids = sorted(p.pid for p in holders)[:8]
        raise click.ClickException(
            f"no watchdog runs, but a browser holds {state.home.profile_dir} (pids {pids}): stop it first"
        )
    return SessionBackups(state.home, state.config.session, events=EventLog(state.home.events_file, source="cli"))


@whatsapp.command()
@_TIMEOUT
@pass_state
def backup(state: CliState, timeout_s: float) -> None:
    """Write an encrypted backup of the WhatsApp login to session/backups/ now.

    The passphrase comes from CONTINUITY_SESSION_KEY or [session] key_file (of the worker, when one runs).
    """
    if running_watchdog(state.home):
        _run_action(state, "backup-session", timeout_s)
        return
    from continuity.worker.session.crypto import SessionKeyError

    backups = _offline_backups(state)
    if not state.home.linked_file.exists():
        raise click.ClickException("this profile was never linked to WhatsApp: there is no login to back up")
    try:
        path = backups.create(reason="requested")
    except (SessionKeyError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"session backup written: {path}")


@whatsapp.command()
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_TIMEOUT
@pass_state
def restore(state: CliState, file: Path | None, yes: bool, timeout_s: float) -> None:
    """Put the login from FILE (default: the newest backup that decrypts) back into the browser profile."""
    if file is not None and not file.is_file():  # a FIFO would block the read (here or in the worker) forever
        raise click.ClickException(f"{file} is not a regular file: refusing to restore from it")
    if not yes:
        click.confirm("This replaces the login stored in the browser profile by the backup's. Continue?", abort=True)
    target = file.resolve() if file is not None else None
    if running_watchdog(state.home):
        _run_action(state, "restore-session", timeout_s, {"file": str(target)} if target else None)
        return
    backups = _offline_backups(state)
    try:
        staged = backups.stage_for_restore(target)
    except (ValueError, LookupError) as exc:  # BackupRejected, SessionKeyError, NoUsableBackup
        raise click.ClickException(str(exc)) from exc
    backups.apply(staged)
    click.echo(f"login restored from {staged.source} into {state.home.profile_dir}; `continuity start` to use it")


# Linking by a phone-number code: the worker starts the code flow (action `link-phone`, worker/session/linking.py);
# the command prints the 8-character code as soon as the heartbeat carries it (`whatsapp.pairing_code`), again
# whenever WhatsApp refreshes it, and ends when the session is ready (exit 0) or the flow fails (exit 1).
LINK_POLL_S = 0.1
LINK_HOW_TO = "On the phone: WhatsApp > Linked devices > Link a device > Link with phone number instead, then type it."


def _fresh_whatsapp(state: CliState, since: float) -> dict[str, Any] | None:
    """The heartbeat's whatsapp section, if the heartbeat was written at or after `since` (Unix s)."""
    beat = read_heartbeat(state.home.heartbeat_file) or {}
    ts = beat.get("ts")
    if not isinstance(ts, int | float) or ts < since:
        return None
    section = beat.get("whatsapp")
    return section if isinstance(section, dict) else None


@whatsapp.command()
@click.option("--phone", required=True, help="The phone's number: digits with the country code (no '+').")
@seconds_option("--wait", "wait_s", default=900.0, help="Seconds to wait for the phone to enter the code.")
@seconds_option(
    "--timeout",
    "timeout_s",
    default=60.0,
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
    result = _ask(state, "link-phone", timeout_s, {"phone": digits})
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
                how_to = LINK_HOW_TO if shown is None else ""
                click.echo(f"{'code' if shown is None else 'new code'}: {code}    {how_to}")
                shown = code
            if wa.get("pairing_error"):
                raise click.ClickException(f"linking failed: {wa['pairing_error']}")
            if wa.get("state") == "ready":
                click.echo("linked: WhatsApp is ready")
                return
        time.sleep(LINK_POLL_S)
    raise click.ClickException(f"not linked within {wait_s:g} s (the code was {shown or 'never shown'})")
