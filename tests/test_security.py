"""Security checks: permissions on the home, profile, backups, config and key file; events; `continuity doctor`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import Config, EventLog, Home, SessionConfig
from continuity.worker.session.backup import SessionBackups
from continuity.worker.session.crypto import KEY_ENV
from continuity.worker.session.security import permission_problems, report_permission_problems
from tests._watchdog_harness import events

KEY = "a long random passphrase"


def _private(home: Home) -> None:
    os.chmod(home.root, 0o700)
    home.profile_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(home.profile_dir, 0o700)


def _kinds(home: Home, config: Config | None = None) -> dict[str, str]:
    return {p.kind: p.fix for p in permission_problems(home, config or Config())}


def test_a_private_home_has_no_problem(home: Home) -> None:
    """Home and profile 0700, config 0644: nothing to report."""
    _private(home)
    home.config_file.write_text("")
    os.chmod(home.config_file, 0o644)
    assert permission_problems(home, Config()) == []


@pytest.mark.parametrize(
    ("target", "mode", "kind", "fix"),
    [
        ("root", 0o755, "home_readable", "chmod 700"),
        ("root", 0o740, "home_readable", "chmod 700"),
        ("profile", 0o755, "profile_readable", "chmod 700"),
        ("profile", 0o704, "profile_readable", "chmod 700"),
        ("config", 0o664, "config_writable", "chmod go-w"),
        ("config", 0o646, "config_writable", "chmod go-w"),
        ("backup", 0o640, "backups_readable", "chmod 600"),
    ],
)
def test_each_unsafe_mode_is_named_with_its_fix(home: Home, target: str, mode: int, kind: str, fix: str) -> None:
    """Group/other read on the home or profile, group/other write on the config, a readable backup: each found."""
    _private(home)
    home.config_file.write_text("")
    os.chmod(home.config_file, 0o600)
    path = {"root": home.root, "profile": home.profile_dir, "config": home.config_file}.get(target)
    if target == "backup":
        path = home.session_backups_dir / "session-x.cbk"
        path.parent.mkdir(parents=True)
        os.chmod(path.parent, 0o700)
        path.write_bytes(b"x")
    assert path is not None
    os.chmod(path, mode)
    found = _kinds(home)
    assert list(found) == [kind]
    assert found[kind].startswith(fix) and str(path) in found[kind]


def test_an_unsafe_key_file_is_a_problem(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A world-readable key file is reported with `chmod 600` (unless the env var, which wins, is set)."""
    _private(home)
    monkeypatch.delenv(KEY_ENV, raising=False)
    key_file = tmp_path / "session.key"
    key_file.write_text(KEY)
    os.chmod(key_file, 0o644)
    config = Config(session=SessionConfig(key_file=str(key_file)))
    assert _kinds(home, config) == {"key_file": f"chmod 600 {key_file}"}
    os.chmod(key_file, 0o600)
    assert _kinds(home, config) == {}


def test_problems_are_recorded_as_security_events(home: Home) -> None:
    """report_permission_problems writes one "security_warning" event per problem, with the fix."""
    _private(home)
    os.chmod(home.profile_dir, 0o755)
    report_permission_problems(home, Config(), EventLog(home.events_file, source="t"))
    [event] = events(home, "security_warning")
    assert event["kind"] == "profile_readable" and event["path"] == str(home.profile_dir)
    assert event["fix"].startswith("chmod 700")


def _doctor(home: Home) -> dict[str, dict[str, str]]:
    result = CliRunner().invoke(cli, ["--home", str(home.root), "doctor", "--json"], catch_exceptions=False)
    return {check["name"]: check for check in json.loads(result.output)["checks"]}


def test_doctor_reports_permissions_key_and_backup_authenticity(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """doctor: WARN for a readable home and for no key; PASS once fixed; FAIL naming a backup that fails
    authentication."""
    home.config_file.write_text("[api]\nport = 0\n")
    os.chmod(home.config_file, 0o600)
    os.chmod(home.root, 0o755)
    monkeypatch.delenv(KEY_ENV, raising=False)
    checks = _doctor(home)
    assert checks["permissions"]["status"] == "WARN" and "chmod 700" in checks["permissions"]["fix"]
    assert checks["session-key"]["status"] == "WARN" and "CONTINUITY_SESSION_KEY" in checks["session-key"]["fix"]

    _private(home)
    monkeypatch.setenv(KEY_ENV, KEY)
    (home.profile_dir / "Local State").write_text("{}")
    backups = SessionBackups(home, SessionConfig(), events=EventLog(home.events_file, source="t"))
    path = backups.create(reason="test")
    checks = _doctor(home)
    assert checks["permissions"]["status"] == "PASS" and checks["session-key"]["status"] == "PASS"

    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    check = _doctor(home)["session-key"]
    assert check["status"] == "FAIL" and path.name in check["detail"] and "authentication" in check["detail"]
