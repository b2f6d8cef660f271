"""`continuity demo`, the README's first command, passes from an empty folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


def test_demo_passes_and_reports_no_duplicates(tmp_path: Path) -> None:
    """The demo exits 0, shows the QR, the delivered messages, the recovery, and 0 duplicates; it leaves nothing."""
    result = subprocess.run(
        [sys.executable, "-m", "continuity.watchdog", "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "duplicates 0" in result.stdout and "demo passed" in result.stdout
    assert result.stdout.count("delivered to +") == 6
    assert "WhatsApp ready again in" in result.stdout
    assert list(tmp_path.iterdir()) == []
