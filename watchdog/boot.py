"""Starting the watchdog when the machine boots: Windows Task Scheduler XML, cron lines, systemd units.

Everything runs `python -m continuity.watchdog --home ABSOLUTE_HOME ...` with this very interpreter, so an
install from a virtual environment works without a console script on PATH.

Over 300 lines on purpose: the three boot mechanisms (Task Scheduler, cron, systemd) side by side, each with its
install, removal and "is it ours" test, so a change to one is checked against the others in one read.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from .instance import EX_CONFIG, Home

TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
CRON_MARKER = "# continuity-home:"


class BootError(RuntimeError):
    """A boot integration could not be installed or removed (the message says what to do)."""


def _slug(home: Home) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", home.root.name).strip("-.") or "home"


def watchdog_argv(home: Home, *args: str, python: str | None = None) -> list[str]:
    """`python -m continuity.watchdog --home HOME ARGS...` (absolute paths)."""
    return [python or sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), *args]


# -- Windows Task Scheduler ----------------------------------------------------------------------------------
def task_name(home: Home) -> str:
    return f"Continuity-{_slug(home)}"


def windows_user() -> str:
    """DOMAIN\\user on Windows; the login name elsewhere (the XML is then a template to adapt)."""
    user = os.environ.get("USERNAME") or os.environ.get("USER") or "user"
    domain = os.environ.get("USERDOMAIN")
    return f"{domain}\\{user}" if domain else user


def task_xml(home: Home, *, python: str | None = None, user: str | None = None) -> str:
    """Task Scheduler XML: boot + logon triggers, restart on failure, no time limit, ignore a second instance.

    S4U logon: runs at boot without anyone logged on, with no window, as `user`.
    """
    argv = watchdog_argv(home, "start", "--if-not-running", python=python)
    arguments = subprocess.list2cmdline(argv[1:])
    user = user or windows_user()
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="{TASK_NS}">
  <RegistrationInfo>
    <Description>Continuity watchdog for {escape(str(home.root))} (keeps the WhatsApp worker running)</Description>
    <URI>\\{escape(task_name(home))}</URI>
  </RegistrationInfo>
  <Triggers>
    <BootTrigger>
      <Enabled>true</Enabled>
      <Delay>PT30S</Delay>
    </BootTrigger>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <UserId>{escape(user)}</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{escape(user)}</UserId>
      <LogonType>S4U</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(argv[0])}</Command>
      <Arguments>{escape(arguments)}</Arguments>
      <WorkingDirectory>{escape(str(home.root))}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"""


def task_xml_path(home: Home) -> Path:
    return home.root / "continuity-task.xml"


def schtasks_create(home: Home) -> list[str]:
    return ["schtasks", "/Create", "/XML", str(task_xml_path(home)), "/TN", task_name(home), "/F"]


def schtasks_delete(home: Home) -> list[str]:
    return ["schtasks", "/Delete", "/TN", task_name(home), "/F"]


def write_task_xml(home: Home, xml: str) -> Path:
    """Write the XML as UTF-16 (what schtasks /XML expects) next to the config."""
    path = task_xml_path(home)
    path.write_text(xml, encoding="utf-16")
    return path


# -- cron ------------------------------------------------------------------------------------------------
def cron_lines(home: Home, *, python: str | None = None) -> list[str]:
    """An @reboot line and a */5 line, both `start --detach --if-not-running`, each ending in the marker.

    The line creates logs/ before /bin/sh opens logs/cron.log: on a home never started yet it does not exist, and
    the redirection would fail before the watchdog could create it."""
    argv = watchdog_argv(home, "start", "--detach", "--if-not-running", python=python)
    logs = shlex.quote(str(home.logs_dir))
    log = shlex.quote(str(home.logs_dir / "cron.log"))
    command = f"cd {shlex.quote(str(home.root))} && mkdir -p {logs} && {shlex.join(argv)} >> {log} 2>&1"
    command = command.replace("%", "\\%")  # cron turns a bare % into a newline
    marker = f"{CRON_MARKER}{home.root}"
    return [f"@reboot {command} {marker}", f"*/5 * * * * {command} {marker}"]


def _is_ours(line: str, home: Home) -> bool:
    return line.rstrip().endswith(f"{CRON_MARKER}{home.root}")


def crontab_with_entries(current: str, home: Home, *, python: str | None = None) -> str:
    """`current` with this home's lines replaced by fresh ones (other lines untouched, order kept)."""
    kept = [line for line in current.splitlines() if not _is_ours(line, home)]
    return "\n".join([*kept, *cron_lines(home, python=python)]) + "\n"


def crontab_without_entries(current: str, home: Home) -> str:
    """`current` without this home's lines."""
    kept = [line for line in current.splitlines() if not _is_ours(line, home)]
    return "\n".join(kept) + "\n" if kept else ""


def read_crontab() -> str:
    """The user's crontab ("" when there is none)."""
    try:
        done = subprocess.run(["crontab", "-l"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError as exc:
        raise BootError("`crontab` is not installed (Debian/Ubuntu: apt-get install cron)") from exc
    if done.returncode != 0:
        if "no crontab" in done.stderr.lower():
            return ""
        raise BootError(f"crontab -l failed: {done.stderr.strip()}")
    return done.stdout


def write_crontab(text: str) -> None:
    done = subprocess.run(["crontab", "-"], input=text, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise BootError(f"crontab - failed: {done.stderr.strip()}")


def install_cron(home: Home, *, python: str | None = None) -> list[str]:
    """Add (or refresh) this home's two lines; returns them."""
    write_crontab(crontab_with_entries(read_crontab(), home, python=python))
    return cron_lines(home, python=python)


def uninstall_cron(home: Home) -> int:
    """Remove this home's lines; returns how many were removed."""
    current = read_crontab()
    removed = sum(1 for line in current.splitlines() if _is_ours(line, home))
    if removed:
        write_crontab(crontab_without_entries(current, home))
    return removed


# -- systemd ---------------------------------------------------------------------------------------------
def unit_name(home: Home) -> str:
    return f"continuity-{_slug(home)}.service"


def unit_dir(*, user: bool) -> Path:
    if user:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "systemd" / "user"
    return Path("/etc/systemd/system")


def _systemd_quote(argv: list[str]) -> str:
    def one(arg: str) -> str:
        if arg and not re.search(r'[\s"\'\\;$%]', arg):
            return arg
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%") + '"'

    return " ".join(one(arg) for arg in argv)


def _run_as(folder: Path, *, user: bool) -> str:
    """`User=<owner of folder>` for a system unit when that owner is not root, else nothing."""
    if user or sys.platform == "win32":
        return ""
    import pwd

    try:
        owner = pwd.getpwuid(folder.stat().st_uid).pw_name
    except (KeyError, OSError):
        owner = "root"
    return "" if owner == "root" else f"User={owner}\n"


def systemd_unit(home: Home, *, user: bool, python: str | None = None) -> str:
    """A unit running the watchdog in the foreground; systemd restarts it and kills its whole cgroup.

    Never restarted on exit 78: the worker said its configuration is wrong, and every restart would fail the same
    way (every 5 s, for ever)."""
    return _unit_text(home, home.root, run_as=_run_as(home.root, user=user), user=user, python=python)


# -- systemd template: many accounts on one host, one home per instance ------------------------------------
TEMPLATE_UNIT = "continuity@.service"
INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Stands for the instance in the unit text until it becomes systemd's %i: it holds nothing _systemd_quote escapes.
_INSTANCE_SLOT = "@CONTINUITY-INSTANCE@"


def check_instance_name(name: str) -> str:
    """`name` when it can be a systemd instance and a folder name as it is (letters, digits, _ . -), else
    BootError."""
    if not INSTANCE_NAME.fullmatch(name):
        raise BootError(
            f"{name!r} cannot be an instance name: use 1-64 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit"
        )
    return name


def instance_unit_name(name: str) -> str:
    return f"continuity@{check_instance_name(name)}.service"


def systemd_template_unit(parent: Home, *, user: bool, python: str | None = None) -> str:
    """`continuity@.service`: the unit of systemd_unit for the home `parent/%i`, so `systemctl start
    continuity@shop1 continuity@shop2` runs two accounts, each in its own home (made at its first start). The
    instance is the folder's name as it is (%i: names are checked to need no escaping)."""
    slot = Home(parent.root / _INSTANCE_SLOT)
    text = _unit_text(slot, parent.root, run_as=_run_as(parent.root, user=user), user=user, python=python)
    return text.replace(_INSTANCE_SLOT, "%i")


def _unit_text(home: Home, workdir: Path, *, run_as: str, user: bool, python: str | None) -> str:
    # Description= and WorkingDirectory= take the text as it is (quotes would be part of the path); only % is special.
    return f"""[Unit]
Description=Continuity watchdog for {str(home.root).replace("%", "%%")}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
{run_as}WorkingDirectory={str(workdir).replace("%", "%%")}
ExecStart={_systemd_quote(watchdog_argv(home, "start", python=python))}
ExecStop={_systemd_quote(watchdog_argv(home, "stop", python=python))}
Restart=always
RestartSec=5
RestartPreventExitStatus={EX_CONFIG}
KillMode=control-group
TimeoutStopSec=60

[Install]
WantedBy={"default.target" if user else "multi-user.target"}
"""


def systemctl_commands(home: Home, *, user: bool, enable: bool, unit: str | None = None) -> list[list[str]]:
    """daemon-reload + enable --now (or disable --now + daemon-reload) of `unit` (default: the home's unit)."""
    base = ["systemctl", *(["--user"] if user else [])]
    name = unit or unit_name(home)
    if enable:
        return [[*base, "daemon-reload"], [*base, "enable", "--now", name]]
    return [[*base, "disable", "--now", name], [*base, "daemon-reload"]]


def run_commands(commands: list[list[str]]) -> None:
    """Run each command; the first failure raises BootError with its output."""
    for argv in commands:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        except FileNotFoundError as exc:
            raise BootError(f"{argv[0]} is not available here") from exc
        if done.returncode != 0:
            raise BootError(f"{shlex.join(argv)} failed: {(done.stderr or done.stdout).strip()}")
