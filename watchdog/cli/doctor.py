"""`continuity doctor`: is this machine ready to run the worker? The checks of the machine and the home
(watchdog/checks.py) and of the browser (worker/browser/doctor.py), one line each."""

from __future__ import annotations

import json

import click

from ..checks import FAIL, check_python, home_checks
from . import CliState, pass_state


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@pass_state
def doctor(state: CliState, as_json: bool) -> None:
    """Check Python, Chromium + chromedriver (matching versions), undetected-chromedriver, the home, the
    browser profile's locks, free disk, the API port, permissions and the session backups' passphrase. Each
    failure names its fix; exit 0 if none fails."""
    from continuity.worker.browser.doctor import browser_checks

    checks = [check_python(), *browser_checks(state.home, state.config), *home_checks(state.home, state.config)]
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
