"""The private chromedriver copy, and the import boundary (only the launcher imports selenium)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from continuity.watchdog.instance import EventLog, Home, read_events
from continuity.worker.browser.launcher import ensure_private_driver
from continuity.worker.browser.paths import private_driver_path


def _fake_driver(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    path.chmod(0o755)
    return path


def test_private_copy_is_made_once_and_recopied_when_the_system_driver_changes(home: Home, tmp_path: Path) -> None:
    """The copy is made on first use, kept while the source is unchanged, and replaced after an upgrade."""
    system = _fake_driver(tmp_path / "chromedriver", b"version one")
    events = EventLog(home.events_file, source="worker")
    private = ensure_private_driver(system, home, events=events)
    assert private == private_driver_path(home) and private.read_bytes() == b"version one"
    private.write_bytes(b"version one, patched by uc")  # what uc does to the copy
    assert ensure_private_driver(system, home, events=events).read_bytes() == b"version one, patched by uc"
    _fake_driver(system, b"version two (upgraded)")
    assert ensure_private_driver(system, home, events=events).read_bytes() == b"version two (upgraded)"
    assert system.read_bytes() == b"version two (upgraded)"
    assert [e["event"] for e in read_events(home.events_file)] == ["browser_driver_copied"] * 2
    assert private.stat().st_mode & 0o777 == 0o755
    assert private.parent.stat().st_mode & 0o777 == 0o700


def test_a_deleted_private_copy_is_recreated(home: Home, tmp_path: Path) -> None:
    """Removing the private copy (or its folder) is repaired on the next launch."""
    system = _fake_driver(tmp_path / "chromedriver", b"driver")
    private = ensure_private_driver(system, home)
    private.unlink()
    assert ensure_private_driver(system, home).read_bytes() == b"driver"


def test_hygiene_and_discovery_do_not_import_selenium() -> None:
    """The watchdog can import the package, hygiene, discovery, paths and doctor without loading selenium."""
    code = (
        "import sys\n"
        "import continuity.worker.browser\n"
        "from continuity.worker.browser import sweep_profile_holders, find_browser, private_driver_path\n"
        "import continuity.worker.browser.doctor\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('selenium', 'undetected_chromedriver'))\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
