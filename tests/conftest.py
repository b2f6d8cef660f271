"""Shared pytest fixtures: every test gets its own instance directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from continuity.watchdog.instance import Home


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `browser` need Chromium: skipped where it is missing, failed under CI (tests/_chromium.py).

    tryfirst: before any skipif of the test itself, so that no other skip can hide a missing Chromium on CI."""
    if item.get_closest_marker("browser") is not None:
        from tests._chromium import require_chromium  # selenium is loaded only when a browser test runs

        require_chromium()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """A fresh, empty instance directory with its standard folders."""
    instance = Home(tmp_path / "home")
    instance.root.mkdir()
    instance.ensure()
    return instance


@pytest.fixture
def sim() -> Iterator[object]:
    """A WhatsApp Web simulator on 127.0.0.1 (any free port), stopped after the test."""
    from continuity.devtools.simulator import Simulator

    with Simulator(port=0, qr_rotate_s=30.0) as simulator:
        yield simulator


@pytest.fixture
def closing() -> Iterator[list[object]]:
    """Sessions a test appends here are closed (their browsers stopped) after it, pass or fail."""
    sessions: list[object] = []
    yield sessions
    for session in sessions:
        session.close()  # type: ignore[attr-defined]
