"""Permission checks on what holds the login (home, profile, backups, key file) and the config file.

Whoever can read the profile (or a backup with its key) owns the WhatsApp account; whoever can write
continuity.toml can make the worker run their code (`[[jobs]] callable`). Used by `continuity doctor` and, once
at worker start, recorded as "security_warning" events.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from continuity.watchdog.instance import SESSION_KEY_ENV, Config, EventLog, Home

from .crypto import key_file_problem

logger = logging.getLogger("continuity.security")


@dataclass(frozen=True)
class PermissionProblem:
    """One unsafe permission, with the command that fixes it."""

    kind: str  # home_readable, profile_readable, backups_readable, config_writable, key_file
    path: Path
    detail: str
    fix: str


def _mode(path: Path) -> int | None:
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    return None


def _readable_by_others(kind: str, path: Path, what: str, bits: int = 0o044) -> PermissionProblem | None:
    mode = _mode(path)
    if mode is None or not mode & bits:
        return None
    who = "group and others" if mode & 0o044 == 0o044 else ("group" if mode & 0o040 else "others")
    target = "700" if path.is_dir() else "600"
    return PermissionProblem(
        kind, path, f"{what} {path} has mode {mode:04o}: {who} can read it", f"chmod {target} '{path}'"
    )


def permission_problems(home: Home, config: Config) -> list[PermissionProblem]:
    """Every unsafe permission found (POSIX only; empty elsewhere). Read-only."""
    if os.name != "posix":
        return []  # pragma: no cover - Windows ACLs are not mode bits
    found = [
        _readable_by_others("home_readable", home.root, "the home folder"),
        _readable_by_others("profile_readable", home.profile_dir, "the browser profile (it holds the login)"),
        _readable_by_others("backups_readable", home.session_backups_dir, "the session backups folder", 0o077),
    ]
    with contextlib.suppress(OSError):
        for backup in sorted(home.session_backups_dir.glob("*.cbk")):
            found.append(_readable_by_others("backups_readable", backup, "session backup", 0o077))
    mode = _mode(home.config_file)
    if mode is not None and mode & 0o022:
        found.append(
            PermissionProblem(
                "config_writable",
                home.config_file,
                f"the config file {home.config_file} has mode {mode:04o}: other users can change it "
                "(and make the worker run their code)",
                f"chmod go-w '{home.config_file}'",
            )
        )
    if config.session.key_file and not os.environ.get(SESSION_KEY_ENV):
        problem = key_file_problem(Path(config.session.key_file).expanduser(), home)
        if problem:
            fix = problem.rpartition("run: ")[2] if "run: " in problem else "see the message"
            found.append(PermissionProblem("key_file", Path(config.session.key_file), problem, fix))
    return [p for p in found if p is not None]


def report_permission_problems(home: Home, config: Config, events: EventLog) -> list[PermissionProblem]:
    """Log and record ("security_warning" events) every unsafe permission; returns them."""
    problems = permission_problems(home, config)
    for problem in problems:
        logger.warning("security: %s; fix: %s", problem.detail, problem.fix)
        fields = {"kind": problem.kind, "path": str(problem.path), "detail": problem.detail, "fix": problem.fix}
        events.emit("security_warning", **fields)
    return problems
