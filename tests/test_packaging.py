"""Packaging: installed under `continuity.*`, side by side with PyPI's `watchdog`; no selenium in the watchdog."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_pypi_watchdog_and_continuity_import_side_by_side(tmp_path: Path) -> None:
    """`import watchdog` is PyPI's filesystem-events library even with continuity.watchdog imported."""
    result = _python(
        "import continuity.watchdog as ours, watchdog, watchdog.observers;"
        "print(watchdog.__file__); print(ours.__version__)",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    pypi_file, version = result.stdout.split()
    assert "site-packages" in pypi_file and version


def test_watchdog_process_never_imports_selenium(tmp_path: Path) -> None:
    """Loading the watchdog's commands and supervisor does not import selenium (or the browser launcher)."""
    result = _python(
        "import sys; import continuity.watchdog.cli.service, continuity.watchdog.supervisor;"
        "print(any(m.startswith(('selenium', 'undetected')) for m in sys.modules))",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
