"""`continuity doctor` on this machine: passes when ready, fails with the fix named otherwise."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import Home

pytestmark = pytest.mark.browser


@pytest.fixture
def free_port() -> int:
    """A port nobody listens on right now (the default 8765 may be used by another test run)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port held by a listening socket for the duration of the test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _write_config(home: Home, text: str) -> None:
    home.config_file.write_text(text, encoding="utf-8")


def _doctor(home: Home, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home.root), "doctor", *args], catch_exceptions=False)


def _checks(result: Result) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in json.loads(result.output)["checks"]}


def test_doctor_passes_on_this_machine(home: Home, free_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """With Chromium, chromedriver and uc installed, a free port, a private home and a session key, every check
    passes and the exit is 0."""
    _write_config(home, f"[whatsapp]\nheadless = true\n[api]\nport = {free_port}\n")
    os.chmod(home.root, 0o700)
    monkeypatch.setenv("CONTINUITY_SESSION_KEY", "x" * 32)
    result = _doctor(home)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line[:4] in ("PASS", "WARN", "FAIL")]
    names = {line.split()[1] for line in lines}
    assert {
        "python",
        "chromium",
        "chromedriver",
        "versions",
        "undetected",
        "home",
        "profile",
        "disk",
        "display",
    } <= names
    assert all(line.startswith("PASS") for line in lines), result.output
    assert "/usr/bin/chromium " not in result.output  # the real binary, not the Debian wrapper


def test_doctor_fails_naming_the_fix_when_the_api_port_is_in_use(home: Home, busy_port: int) -> None:
    """A listening socket on [api] port makes the api-port check FAIL with its fix, and the exit code 1."""
    _write_config(home, f"[api]\nport = {busy_port}\n")
    result = _doctor(home, "--json")
    assert result.exit_code == 1
    check = _checks(result)["api-port"]
    assert check["status"] == "FAIL" and "in use" in check["detail"] and f"pid {os.getpid()}" in check["detail"]
    assert "[api] port" in check["fix"]
    assert json.loads(result.output)["ok"] is False


def test_doctor_fails_when_browser_path_points_nowhere(home: Home, free_port: int, tmp_path: Path) -> None:
    """whatsapp.browser_path naming a missing file fails the chromium check, naming the key to fix."""
    _write_config(home, f'[api]\nport = {free_port}\n[whatsapp]\nbrowser_path = "{tmp_path / "nope"}"\n')
    result = _doctor(home)
    assert result.exit_code == 1
    assert "FAIL  chromium" in result.output
    assert "whatsapp.browser_path" in result.output and "fix:" in result.output
    assert "FAIL  versions" in result.output


def test_doctor_warns_about_a_stale_profile_lock_without_failing(home: Home, free_port: int) -> None:
    """A stale SingletonLock is reported (WARN, cleared at next launch) and does not fail the doctor."""
    _write_config(home, f"[api]\nport = {free_port}\n")
    home.profile_dir.mkdir(parents=True)
    os.symlink("another-host-1", home.profile_dir / "SingletonLock")
    result = _doctor(home, "--json")
    assert result.exit_code == 0, result.output
    profile = _checks(result)["profile"]
    assert profile["status"] == "WARN" and "another-host-1" in profile["detail"] and "next launch" in profile["fix"]
    assert os.path.lexists(home.profile_dir / "SingletonLock")  # the doctor only looks


def test_doctor_with_a_bad_config_is_a_clear_error(home: Home) -> None:
    """A wrong key in continuity.toml makes the doctor exit 1 naming the file and the key."""
    _write_config(home, "[api]\nprot = 1\n")
    result = _doctor(home)
    assert result.exit_code == 1
    assert "api.prot" in result.output and "continuity.toml" in result.output


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc (a folder nobody can create files in)")
def test_doctor_fails_when_the_home_is_not_writable() -> None:
    """A home where no file can be created fails the home check (root ignores modes, so /proc stands in)."""
    result = CliRunner().invoke(cli, ["--home", "/proc/1/continuity-home", "doctor", "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    home_check = _checks(result)["home"]
    assert home_check["status"] == "FAIL" and "--home" in home_check["fix"]


@pytest.mark.parametrize("display", ["", ":0"], ids=["no-display", "display"])
def test_doctor_on_the_display_a_windowed_browser_needs(
    home: Home, free_port: int, monkeypatch: pytest.MonkeyPatch, display: str
) -> None:
    """headless = false: with no DISPLAY/WAYLAND_DISPLAY a WARN says Chromium will run headless; with DISPLAY, PASS."""
    _write_config(home, f"[whatsapp]\nheadless = false\n[api]\nport = {free_port}\n")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", display)
    result = _doctor(home, "--json")
    check = _checks(result)["display"]
    if display:
        assert check["status"] == "PASS"
    else:
        assert check["status"] == "WARN" and "headless" in check["detail"] and "headless = true" in check["fix"]
