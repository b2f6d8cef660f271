"""`continuity doctor`: is this machine ready to run the worker's browser? (wraps browser.doctor)."""

from __future__ import annotations

import json

import click

from continuity.watchdog.cli import CliState, pass_state

from .browser.doctor import FAIL, run_checks


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@pass_state
def doctor(state: CliState, as_json: bool) -> None:
    """Check Python, Chromium + chromedriver (matching versions), undetected-chromedriver, the home, the
    browser profile's locks, free disk and the API port. Each failure names its fix; exit 0 if none fails."""
    checks = run_checks(state.home, state.config)
    ok = not any(check.status == FAIL for check in checks)
    if as_json:
        document = {"ok": ok, "home": str(state.home.root), "checks": [c.as_dict() for c in checks]}
        click.echo(json.dumps(document, indent=2))
    else:
        for check in checks:
            click.echo(f"{check.status}  {check.name:<12} {check.detail}")
            if check.fix:
                click.echo(f"      {'':<12} fix: {check.fix}")
        click.echo("all checks passed" if ok else "some checks FAILED (see fix: lines)")
    if not ok:
        raise SystemExit(1)
