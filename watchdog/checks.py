"""`continuity doctor`'s checks that are not about the browser: Python, the home (writable, private), free disk,
the API port, the session backups' passphrase. Each gives PASS / WARN / FAIL, and every non-pass names its fix.
The browser's checks (Chromium, chromedriver, display, the profile's locks) are worker/browser/doctor.py's; the
command (watchdog/cli/doctor.py) shows both."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from .instance import Config, Home, read_json_or_none

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
MIN_PYTHON = (3, 11)
MIN_FREE_MB = 200.0
LOW_FREE_MB = 1024.0


@dataclass(frozen=True)
class Check:
    """One doctor line."""

    name: str
    status: str  # PASS, WARN or FAIL
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_python(version: tuple[int, int] = (sys.version_info.major, sys.version_info.minor)) -> Check:
    text = f"Python {version[0]}.{version[1]} ({sys.executable})"
    if version >= MIN_PYTHON:
        return Check("python", PASS, text)
    return Check("python", FAIL, text, f"install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer")


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_home_writable(home: Home) -> Check:
    target = home.root if home.root.exists() else _existing_parent(home.root)
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".doctor-", delete=True) as handle:
            handle.write(b"ok")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        return Check(
            "home",
            FAIL,
            f"{target} is not writable: {exc.strerror}",
            "fix the folder's owner/permissions or pass another --home",
        )
    if target != home.root:
        return Check("home", PASS, f"{home.root} does not exist yet; {target} is writable (it will be created)")
    return Check("home", PASS, f"{home.root} is writable")


def check_disk(home: Home, session_max_mb: float) -> Check:
    usage = shutil.disk_usage(_existing_parent(home.root))
    free_mb = usage.free / 2**20
    detail = f"{free_mb:,.0f} MB free on the home's filesystem"
    if free_mb < MIN_FREE_MB:
        return Check("disk", FAIL, detail, f"free at least {MIN_FREE_MB:.0f} MB (logs, backups, the browser profile)")
    if free_mb < max(LOW_FREE_MB, 2 * session_max_mb):
        return Check("disk", WARN, detail, "free some space: the profile alone may grow to whatsapp.session_max_mb")
    return Check("disk", PASS, detail)


def _port_holder(port: int) -> psutil.Process | None:
    with contextlib.suppress(psutil.AccessDenied, OSError):
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                with contextlib.suppress(psutil.NoSuchProcess):
                    return psutil.Process(conn.pid)
    return None


def _port_in_use(host: str, port: int) -> OSError | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if sys.platform == "win32":  # pragma: no cover - Windows
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the API server does
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def check_api_port(home: Home, config: Config) -> Check:
    api = config.api
    if not api.enabled:
        return Check("api-port", PASS, "API disabled ([api] enabled = false)")
    if api.port == 0:
        return Check("api-port", PASS, f"{api.host}: port 0 (any free port)")
    error = _port_in_use(api.host, api.port)
    if error is None:
        return Check("api-port", PASS, f"{api.host}:{api.port} is free")
    where = f"{api.host}:{api.port}"
    if error.errno != errno.EADDRINUSE:
        return Check(
            "api-port",
            FAIL,
            f"cannot bind {where}: {error.strerror}",
            "set [api] host to an address of this machine",
        )
    holder = _port_holder(api.port)
    state = read_json_or_none(home.watchdog_state_file)
    ours = state.get("pid") if isinstance(state, dict) else None
    if holder is not None and ours is not None and holder.pid == ours:
        return Check("api-port", PASS, f"{where} is served by this instance's watchdog (pid {ours})")
    who = f" by pid {holder.pid} ({holder.name()})" if holder is not None else ""
    return Check(
        "api-port",
        FAIL,
        f"{where} is already in use{who}",
        "stop that process, or set another [api] port in continuity.toml",
    )


def check_permissions(home: Home, config: Config) -> Check:
    """Home, profile, backups, config file and key file: nobody else may read the login or change the config."""
    from continuity.worker.session.security import permission_problems

    problems = permission_problems(home, config)
    if not problems:
        return Check("permissions", PASS, "home, profile, backups and config are private to this user")
    status = FAIL if any(p.kind == "key_file" for p in problems) else WARN
    return Check("permissions", status, "; ".join(p.detail for p in problems), " && ".join(p.fix for p in problems))


def check_session_backups(home: Home, config: Config) -> Check:
    """The backup passphrase is set and every session backup decrypts with it (read-only)."""
    from continuity.worker.session.backup import SessionBackups
    from continuity.worker.session.crypto import BackupRejected, SessionKeyError, load_passphrase

    try:
        key = load_passphrase(home, config.session)
    except SessionKeyError as exc:
        return Check("session-key", FAIL, str(exc), "fix [session] key_file as the message says")
    if key is None:
        return Check(
            "session-key",
            WARN,
            "no session backups: no passphrase configured, so a lost or corrupt profile needs a new QR scan",
            "set CONTINUITY_SESSION_KEY in the worker's environment, or [session] key_file = an absolute path "
            "outside the home, mode 0600, holding a long random passphrase",
        )
    from .instance import EventLog

    backups = SessionBackups(home, config.session, events=EventLog(os.devnull, source="doctor"))
    files, bad = backups.files(), []
    for path in files:
        try:
            backups.verify(path, key)
        except BackupRejected as exc:
            bad.append(f"{path.name}: {exc.reason}")
    if bad:
        return Check(
            "session-key",
            FAIL,
            f"{len(bad)} of {len(files)} session backups fail authentication: " + "; ".join(bad),
            "check the passphrase (CONTINUITY_SESSION_KEY / key_file); delete backups that were changed or damaged",
        )
    return Check("session-key", PASS, f"passphrase set; {len(files)} session backups, all authentic")


def home_checks(home: Home, config: Config) -> list[Check]:
    """The home's checks, in display order (read-only: nothing is changed): writable, free disk, the API port,
    private permissions, the session backups' passphrase."""
    checks = [check_home_writable(home), check_disk(home, config.whatsapp.session_max_mb)]
    checks += [check_api_port(home, config), check_permissions(home, config), check_session_backups(home, config)]
    return checks
