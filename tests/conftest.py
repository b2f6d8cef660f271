"""Shared pytest fixtures: every test gets its own instance directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuity.watchdog.home import Home


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """A fresh, empty instance directory with its standard folders."""
    instance = Home(tmp_path / "home")
    instance.root.mkdir()
    instance.ensure()
    return instance
