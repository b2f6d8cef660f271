"""Boot integration: Task Scheduler XML, cron entries through the real crontab (and a real cron daemon), systemd."""

from __future__ import annotations

import configparser
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity.watchdog import boot
from continuity.watchdog.cli import cli
from continuity.watchdog.home import Home
from continuity.watchdog.instance import running_watchdog
from tests._watchdog_harness import wait_for, write_config

NS = {"t": boot.TASK_NS}
REPO = Path(__file__).resolve().parent.parent
HAVE_CRONTAB = shutil.which("crontab") is not None


def invoke(home: Home, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home.root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def check_task(root: ET.Element) -> ET.Element:
    """Assert the settings issue 7 asks for; returns the Exec element."""
    assert root.find("t:Triggers/t:BootTrigger/t:Enabled", NS).text == "true"  # type: ignore[union-attr]
    assert root.find("t:Triggers/t:LogonTrigger", NS) is not None
    settings = root.find("t:Settings", NS)
    assert settings is not None
    assert settings.findtext("t:MultipleInstancesPolicy", namespaces=NS) == "IgnoreNew"
    assert settings.findtext("t:ExecutionTimeLimit", namespaces=NS) == "PT0S"
    assert settings.findtext("t:RestartOnFailure/t:Interval", namespaces=NS) == "PT1M"
    assert int(settings.findtext("t:RestartOnFailure/t:Count", namespaces=NS) or 0) >= 100
    exec_ = root.find("t:Actions/t:Exec", NS)
    assert exec_ is not None
    return exec_


def test_task_xml_parses_and_holds_the_settings(home: Home) -> None:
    """`install task --print` is well-formed Task XML: boot+logon, restart on failure, no limit, absolute --home."""
    xml = invoke(home, "install", "task", "--print")
    exec_ = check_task(ET.fromstring(xml.replace('encoding="UTF-16"', "")))
    assert exec_.findtext("t:Command", namespaces=NS) == sys.executable
    assert exec_.findtext("t:WorkingDirectory", namespaces=NS) == str(home.root)
    arguments = exec_.findtext("t:Arguments", namespaces=NS) or ""
    assert arguments.startswith("-m continuity.watchdog --home ") and str(home.root) in arguments
    assert arguments.endswith(" start --if-not-running")


def test_task_xml_escapes_paths_and_install_prints_the_windows_command(tmp_path: Path) -> None:
    """A home whose path holds & and < still gives valid XML; off Windows `install task` writes UTF-16 + says how."""
    home = Home(tmp_path / "a&b <c>")
    home.root.mkdir()
    output = invoke(home, "install", "task")
    written = boot.task_xml_path(home).read_bytes()
    assert written[:2] in (b"\xff\xfe", b"\xfe\xff")  # UTF-16 with a byte-order mark, as schtasks wants
    exec_ = check_task(ET.fromstring(written))
    assert exec_.findtext("t:WorkingDirectory", namespaces=NS) == str(home.root)
    if os.name != "nt":
        assert f'schtasks /Create /XML "{boot.task_xml_path(home)}" /TN Continuity-a-b-c /F' in output
    assert "schtasks /Delete /TN Continuity-a-b-c /F" in invoke(home, "uninstall", "task")


def test_hand_install_task_template_has_the_same_settings() -> None:
    """scripts/boot/continuity-task.xml (filled in by install-task.ps1) parses and holds the same settings."""
    check_task(ET.parse(REPO / "scripts" / "boot" / "continuity-task.xml").getroot())
    ps1 = (REPO / "scripts" / "boot" / "install-task.ps1").read_text()
    assert "schtasks /Create /XML" in ps1 and "__HOME__" in ps1


def test_cron_text_round_trip_keeps_other_lines(home: Home) -> None:
    """Adding twice gives one pair of lines; removing gives back exactly the user's crontab."""
    mine = "MAILTO=me@example.com\n# my backup\n0 3 * * * /usr/bin/backup --all\n"
    once = boot.crontab_with_entries(mine, home)
    twice = boot.crontab_with_entries(once, home)
    assert once == twice and once.startswith(mine)
    lines = once.splitlines()[3:]
    assert lines[0].startswith("@reboot cd ") and lines[1].startswith("*/5 * * * * cd ")
    assert all("start --detach --if-not-running" in line and f"--home {home.root}" in line for line in lines)
    assert boot.crontab_without_entries(twice, home) == mine
    other = Home(home.root.parent / "other")
    assert boot.crontab_without_entries(boot.crontab_with_entries(once, other), home).count("@reboot") == 1


@contextlib.contextmanager
def saved_crontab() -> Iterator[None]:
    """Save root's real crontab and put it back afterwards, whatever happens."""
    before = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    try:
        yield
    finally:
        if before.returncode == 0:
            subprocess.run(["crontab", "-"], input=before.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True)


@pytest.mark.skipif(not HAVE_CRONTAB, reason="needs crontab (Debian package cron)")
def test_cron_install_uninstall_with_the_real_crontab(home: Home) -> None:
    """`install cron` twice then `uninstall cron` through the real crontab leaves the other lines as they were."""
    mine = "# keep me\n17 4 * * 1 /bin/true # weekly\n"
    with saved_crontab():
        subprocess.run(["crontab", "-"], input=mine, text=True, check=True)
        invoke(home, "install", "cron")
        invoke(home, "install", "cron")
        installed = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=True).stdout
        assert installed.startswith(mine) and installed.count("@reboot") == 1 and installed.count("*/5 *") == 1
        assert "removed 2 line(s)" in invoke(home, "uninstall", "cron")
        assert subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout == mine
        assert "no lines for this home" in invoke(home, "uninstall", "cron")


CRON = shutil.which("cron") or "/usr/sbin/cron"


@pytest.mark.skipif(
    not (HAVE_CRONTAB and os.path.exists(CRON) and hasattr(os, "geteuid") and os.geteuid() == 0),
    reason="needs root and the cron daemon (Debian package cron)",
)
def test_real_cron_daemon_starts_the_watchdog_at_reboot(home: Home) -> None:
    """A real cron daemon started with our @reboot entry launches the watchdog (status comes up)."""
    if subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode == 0:
        pytest.skip("a cron daemon already runs here; not starting a second one")
    write_config(home, toy="normal")
    reboot_flag = Path("/run/crond.reboot")  # Debian's cron runs @reboot jobs only when this file is absent
    had_flag = reboot_flag.exists()
    daemon = None
    with saved_crontab():
        try:
            boot.write_crontab(boot.crontab_with_entries("", home))
            reboot_flag.unlink(missing_ok=True)
            daemon = subprocess.Popen([CRON, "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            info = wait_for(lambda: running_watchdog(home), timeout=60, what="cron to start the watchdog")
            assert info["state"] in ("starting", "running")
            status = lambda: CliRunner().invoke(cli, ["--home", str(home.root), "status"]).exit_code == 0  # noqa: E731
            wait_for(status, timeout=30, what="`continuity status` to report healthy")
        finally:
            boot.write_crontab("")
            if running_watchdog(home):
                CliRunner().invoke(cli, ["--home", str(home.root), "stop"])
            if daemon is not None:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=10)
            if had_flag:
                reboot_flag.touch()
            else:
                reboot_flag.unlink(missing_ok=True)
    assert running_watchdog(home) is None


def read_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_systemd_units_system_and_user(home: Home, tmp_path: Path) -> None:
    """The unit restarts always, kills the whole cgroup, runs `start` in the foreground and `stop` to stop."""
    unit = read_unit(invoke(home, "install", "systemd", "--print"))
    service = unit["Service"]
    assert service["Restart"] == "always" and service["KillMode"] == "control-group"
    assert service["ExecStart"] == f"{sys.executable} -m continuity.watchdog --home {home.root} start"
    assert service["ExecStop"].endswith(" stop") and "--detach" not in service["ExecStart"]
    assert service["WorkingDirectory"] == str(home.root) and unit["Install"]["WantedBy"] == "multi-user.target"
    user_unit = read_unit(invoke(home, "install", "systemd", "--print", "--user"))
    assert user_unit["Install"]["WantedBy"] == "default.target" and "User" not in user_unit["Service"]
    target = tmp_path / "units"
    output = invoke(home, "install", "systemd", "--user", "--dir", str(target))
    path = target / boot.unit_name(home)
    assert path.read_text() == invoke(home, "install", "systemd", "--print", "--user")
    assert f"systemctl --user daemon-reload && systemctl --user enable --now {boot.unit_name(home)}" in output
    assert "removed" in invoke(home, "uninstall", "systemd", "--user", "--dir", str(target))
    assert not path.exists()


def test_systemd_quotes_paths_with_spaces(tmp_path: Path) -> None:
    """A home with spaces and a % is quoted for systemd (not split, not expanded as a specifier)."""
    home = Home(tmp_path / "my home 100%")
    home.root.mkdir()
    service = read_unit(boot.systemd_unit(home, user=True))["Service"]
    assert f'--home "{str(home.root).replace("%", "%%")}" start' in service["ExecStart"]
