"""The one rule for tests that need Chromium (tests/_chromium.require_chromium, applied by conftest.py to every test
marked `browser`): where Chromium is missing they skip with the reason, and under CI (CI=true) they fail.

Chromium is really missing here: pytest runs in a mount namespace where an empty tmpfs hides /usr/lib/chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_DIR = Path("/usr/lib/chromium")  # Debian's chromium and chromedriver (/usr/bin/chromedriver links here)
# One test from a file that used to skip on its own, one from a file that used to fail on its own.
SAMPLES = (
    "tests/test_simulator_variants.py::test_variant_markup_and_a_send_through_the_page[default]",
    "tests/test_session.py::test_first_run_qr_scan_ready_and_durable",
)


def _namespace_prefix() -> list[str]:
    """The command prefix that hides Chromium from what it runs ([] where it is not installed anyway)."""
    if not CHROMIUM_DIR.is_dir():
        return []
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        pytest.skip("needs unshare(1) to hide the installed Chromium in a mount namespace")
    prefix = [unshare, "--mount", *([] if os.geteuid() == 0 else ["--map-root-user"])]
    hide = f"mount -t tmpfs none {CHROMIUM_DIR}"
    probe = subprocess.run([*prefix, "sh", "-c", hide], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot hide Chromium in a mount namespace here: {probe.stderr.strip()}")
    return [*prefix, "sh", "-c", f'{hide} && exec "$@"', "hide-chromium"]


def outcomes_without_chromium(tmp_path: Path, *, ci: bool) -> dict[str, tuple[str, str]]:
    """Run SAMPLES with Chromium hidden; {test name: (outcome, message)} from pytest's JUnit XML."""
    report = tmp_path / f"report-ci-{ci}.xml"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}", *SAMPLES]
    done = subprocess.run([*_namespace_prefix(), *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert report.exists(), done.stdout + done.stderr
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("skipped", "error", "failure"):
                outcome, message = child.tag, child.get("message") or ""
        found[str(case.get("name"))] = (outcome, message)
    assert len(found) == len(SAMPLES), done.stdout
    return found


def test_chromium_tests_skip_with_the_reason_when_chromium_is_missing(tmp_path: Path) -> None:
    """Without CI=true, every `browser` test skips (none fails) with one clear reason when Chromium is missing."""
    for name, (outcome, message) in outcomes_without_chromium(tmp_path, ci=False).items():
        assert outcome == "skipped" and "needs Chromium and chromedriver" in message, (name, outcome, message)


def test_chromium_tests_fail_under_ci_when_chromium_is_missing(tmp_path: Path) -> None:
    """With CI=true, every `browser` test fails (none skips) when Chromium is missing, saying so."""
    for name, (outcome, message) in outcomes_without_chromium(tmp_path, ci=True).items():
        assert outcome in ("error", "failure") and "Chromium is missing" in message, (name, outcome, message)
