"""`continuity whatsapp inspect [--json]`: the worker's inspect answer printed for people, or as JSON."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from click.testing import CliRunner

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import Home, control

DETAILS = {
    "state": "ready",
    "web_version": "2.3000.1017000000",
    "roles": {"main": "fallback 2 (div[role='grid'][aria-label])", "compose": "override", "qr": "none"},
    "overrides": {"compose": "footer p"},
    "bad_selectors": [],
    "unknown_popup": None,
}


def _answer_once(home: Home, **answer: Any) -> threading.Thread:
    """A stand-in worker: answers the first inspect request it finds in run/control/."""

    def serve() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for request in control.pending(home.control_dir):
                assert request["action"] == "inspect"
                control.answer(home.control_dir, request, **answer)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_inspect_prints_each_role_and_the_version(home: Home) -> None:
    """The table: state, WhatsApp Web's version and one line a role with how it matched; exit 0."""
    worker = _answer_once(home, ok=True, message="state ready", **DETAILS)
    result = CliRunner().invoke(cli, ["--home", str(home.root), "whatsapp", "inspect", "--timeout", "10"])
    worker.join(5)
    assert result.exit_code == 0, result.output
    assert "web version: 2.3000.1017000000" in result.output
    assert "main            fallback 2 (div[role='grid'][aria-label])" in result.output
    assert "compose         override" in result.output


def test_inspect_json_and_failure_exit_code(home: Home) -> None:
    """--json prints the whole answer; a worker without a page answers not ok, and the exit code is 1."""
    worker = _answer_once(home, ok=False, message="no page to inspect (WhatsApp is starting)", state="starting")
    result = CliRunner().invoke(cli, ["--home", str(home.root), "whatsapp", "inspect", "--json", "--timeout", "10"])
    worker.join(5)
    assert result.exit_code == 1
    assert json.loads(result.output) == {
        "ok": False,
        "message": "no page to inspect (WhatsApp is starting)",
        "state": "starting",
    }


def test_inspect_without_a_worker_says_so(home: Home) -> None:
    """No worker answers within --timeout: a clear error naming `continuity status`, exit 1."""
    result = CliRunner().invoke(cli, ["--home", str(home.root), "whatsapp", "inspect", "--timeout", "0.3"])
    assert result.exit_code == 1 and "continuity status" in result.output
