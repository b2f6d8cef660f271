"""Boot integration: Task Scheduler XML, cron entries through the real crontab (and a real cron daemon), systemd."""

from __future__ import annotations

import configparser
import contextlib
import os
import shlex
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
from continuity.watchdog.instance import Home, running_watchdog
from tests._watchdog_harness import assert_each_sigterm_arrives, wait_for, write_config

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


def fresh_home(root: Path) -> Home:
    """A home as a new user has it before the first start: the config file and nothing else (no logs/)."""
    home = Home(root)
    home.root.mkdir()
    write_config(home, toy="normal")
    with open(home.config_file, "a", encoding="utf-8") as config:
        config.write("[api]\nenabled = false\n")  # tests run side by side: no fixed port
    assert sorted(p.name for p in home.root.iterdir()) == ["continuity.toml"]
    return home


def cli_process(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m continuity.watchdog --home HOME ARGS...` as a real process."""
    argv = [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def cron_command(line: str) -> str:
    """The command part of a crontab line (what cron hands to /bin/sh), with cron's \\% unescaped."""
    command = line.removeprefix("@reboot ") if line.startswith("@reboot ") else line.split(None, 5)[5]
    return command.replace("\\%", "%")


def run_like_cron(command: str) -> subprocess.CompletedProcess[str]:
    """Run `command` as cron does: /bin/sh -c, an almost empty environment, from /."""
    argv = ["env", "-i", "PATH=/usr/bin:/bin", "sh", "-c", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")


@pytest.mark.skipif(sys.platform == "win32", reason="cron and /bin/sh are POSIX")
@pytest.mark.parametrize("entry", [0, 1], ids=["@reboot", "every-5-minutes"])
def test_each_cron_entry_starts_the_watchdog_on_a_fresh_home(tmp_path: Path, entry: int) -> None:
    """Each `install cron --print` line, run as cron runs it on a never-started home, really starts the watchdog."""
    home = fresh_home(tmp_path / "new home")
    printed = cli_process(home, "install", "cron", "--print")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("@reboot ") and lines[1].startswith("*/5 * * * * ")
    command = cron_command(lines[entry])
    try:
        first = run_like_cron(command)
        assert first.returncode == 0, first.stderr
        assert first.stdout == first.stderr == ""  # everything went to logs/cron.log
        info = wait_for(lambda: running_watchdog(home), timeout=30, what="the watchdog started by the cron line")
        wait_for(lambda: cli_process(home, "status").returncode == 0, timeout=30, what="`status` to say healthy")
        again = run_like_cron(command)  # the */5 line runs while the watchdog is up: nothing to do
        assert again.returncode == 0, again.stderr
        assert (running_watchdog(home) or {}).get("pid") == info["pid"]
        log = (home.logs_dir / "cron.log").read_text(encoding="utf-8")
        assert f"watchdog started in the background (pid {info['pid']})" in log
        assert "already running" in log
    finally:
        stopped = cli_process(home, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert running_watchdog(home) is None


def test_hand_install_cron_file_has_the_generated_lines() -> None:
    """scripts/boot/continuity.cron holds exactly what `install cron` writes for its example paths."""
    text = (REPO / "scripts" / "boot" / "continuity.cron").read_text(encoding="utf-8")
    entries = [line for line in text.splitlines() if line and not line.startswith("#")]
    expected = boot.cron_lines(Home(Path("/srv/continuity")), python="/opt/continuity/.venv/bin/python")
    assert entries == expected


CRON = shutil.which("cron") or "/usr/sbin/cron"


@pytest.mark.skipif(
    not (HAVE_CRONTAB and os.path.exists(CRON) and hasattr(os, "geteuid") and os.geteuid() == 0),
    reason="needs root and the cron daemon (Debian package cron)",
)
def test_real_cron_daemon_starts_the_watchdog_at_reboot(tmp_path: Path) -> None:
    """A real cron daemon started with our @reboot entry launches the watchdog on a never-started home."""
    if subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode == 0:
        pytest.skip("a cron daemon already runs here; not starting a second one")
    home = fresh_home(tmp_path / "home")
    reboot_flag = Path("/run/crond.reboot")  # Debian's cron runs @reboot jobs only when this file is absent
    had_flag = reboot_flag.exists()
    daemon = None
    with saved_crontab():
        try:
            boot.write_crontab(boot.crontab_with_entries("", home))
            reboot_flag.unlink(missing_ok=True)
            daemon = subprocess.Popen([CRON, "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # the lock says "running" a moment before the state file is written (state "unknown" meanwhile)
            info = wait_for(
                lambda: (
                    (running_watchdog(home) or {}).get("state") in ("starting", "running") and running_watchdog(home)
                ),
                timeout=60,
                what="cron to start the watchdog (state starting or running)",
            )
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


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(sys.platform == "win32", reason="systemd units run POSIX command lines")
def test_systemd_unit_does_not_restart_a_configuration_error(tmp_path: Path) -> None:
    """The unit's ExecStart exits 78 when the worker says its config is wrong, and the unit never restarts on 78."""
    home = Home(tmp_path / "home")
    home.root.mkdir()
    write_config(home, toy="exit78")
    with open(home.config_file, "a", encoding="utf-8") as config:
        config.write("[api]\nenabled = false\n")
    for user in (False, True):
        text = boot.systemd_unit(home, user=user)
        service = read_unit(text)["Service"]
        assert service["Restart"] == "always" and "78" in service["RestartPreventExitStatus"].split()
        if SYSTEMD_ANALYZE is not None:
            unit = tmp_path / ("user" if user else "system") / boot.unit_name(home)
            unit.parent.mkdir()
            unit.write_text(text, encoding="utf-8")
            verify = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
            assert verify.returncode == 0 and str(unit) not in verify.stdout + verify.stderr, verify.stderr
    argv = shlex.split(read_unit(boot.systemd_unit(home, user=True))["Service"]["ExecStart"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=home.root)
    assert done.returncode == 78, done.stdout + done.stderr


def test_hand_install_unit_file_has_the_generated_service_settings() -> None:
    """scripts/boot/continuity.service has the generated [Service] settings (User= aside), no restart on 78 included."""
    hand = read_unit((REPO / "scripts" / "boot" / "continuity.service").read_text(encoding="utf-8"))
    generated = read_unit(
        boot.systemd_unit(Home(Path("/srv/continuity")), user=False, python="/opt/continuity/.venv/bin/python")
    )
    without_user = [{k: v for k, v in unit["Service"].items() if k != "User"} for unit in (hand, generated)]
    assert without_user[0] == without_user[1]
    assert dict(hand["Install"].items()) == dict(generated["Install"].items())


def test_systemd_quotes_paths_with_spaces(tmp_path: Path) -> None:
    """A home with spaces and a % is quoted for systemd (not split, not expanded as a specifier)."""
    home = Home(tmp_path / "my home 100%")
    home.root.mkdir()
    service = read_unit(boot.systemd_unit(home, user=True))["Service"]
    assert f'--home "{str(home.root).replace("%", "%%")}" start' in service["ExecStart"]


# The watchdog's stop signals, as `continuity stop` (systemd's ExecStop) sends them, against the real handler and
# the real Supervisor: the main thread waits on the supervisor's wake Event as Supervisor.run does, while another
# thread sets it all the time (as the run/ watch, the worker's exit and the API do). Thread switches as often as
# possible make the race of a handler with the Event's lock happen within a few signals.
STOP_SIGNAL_STORM = r"""
import sys, threading
sys.setswitchinterval(1e-6)
from pathlib import Path
from continuity.watchdog.instance import Config
from continuity.watchdog.instance import Home
from continuity.watchdog.run import _install_stop_signals
from continuity.watchdog.supervisor import Supervisor
supervisor = Supervisor(Home(Path(sys.argv[1])), Config())
_install_stop_signals(supervisor)
def wake_forever():
    while True:
        supervisor._wake.set()
threading.Thread(target=wake_forever, daemon=True).start()
print("ready", flush=True)
while True:
    supervisor._wake.wait(0.5)
    supervisor._wake.clear()
    if supervisor._stop_reason is not None:
        supervisor._stop_reason = None
        print("stop seen", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="`stop` signals the watchdog on POSIX only")
def test_stop_signals_never_deadlock_the_watchdog(home: Home) -> None:
    """Each of 5000 SIGTERMs reaches the supervisor's loop; none deadlocks the handler on the wake Event's lock."""
    assert_each_sigterm_arrives(STOP_SIGNAL_STORM, home, count=5000, who="watchdog")
