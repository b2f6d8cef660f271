"""The instance directory ("home") and every path inside it (docs/ARCHITECTURE.md, "The instance directory")."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

from ._contract import HOME_ENV
from ._errors import ContinuityError


class HomeLayoutError(ContinuityError, OSError):
    """A path of the home has the wrong kind (a directory where a file belongs, or the reverse): says which."""


def undecodable_argument(args: list[str]) -> str | None:
    """A one-line complaint about the first argument that is not valid text in the file system encoding (Python
    carries such bytes as lone surrogates, which no log, JSON or TOML can hold), or None when all are."""
    encoding = sys.getfilesystemencoding()
    for arg in args:
        try:
            arg.encode(encoding)
        except UnicodeEncodeError:
            shown = os.fsencode(arg).decode(encoding, "backslashreplace")
            return f"the argument '{shown}' is not valid {encoding.upper()} text; use a name that is"
    return None


class Home(NamedTuple):
    """Every path of one Continuity instance, derived from its root directory."""

    root: Path

    @classmethod
    def resolve(cls, option: str | os.PathLike[str] | None = None) -> Home:
        """`--home DIR`, else `$CONTINUITY_HOME`, else the current directory; always absolute."""
        raw = option if option is not None else os.environ.get(HOME_ENV) or os.getcwd()
        return cls(Path(raw).expanduser().resolve())

    @property
    def config_file(self) -> Path:
        return self.root / "continuity.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def heartbeat_file(self) -> Path:
        return self.run_dir / "heartbeat.json"

    @property
    def watchdog_state_file(self) -> Path:
        return self.run_dir / "watchdog.json"

    @property
    def watchdog_lock_file(self) -> Path:
        return self.run_dir / "watchdog.lock"

    @property
    def stop_request_file(self) -> Path:
        return self.run_dir / "stop.request"

    @property
    def control_dir(self) -> Path:
        return self.run_dir / "control"

    @property
    def api_info_file(self) -> Path:
        return self.run_dir / "api.json"

    @property
    def api_token_file(self) -> Path:
        return self.run_dir / "api_token"

    @property
    def outbox_view_file(self) -> Path:
        return self.run_dir / "outbox_view.json"

    @property
    def session_dir(self) -> Path:
        return self.root / "session"

    @property
    def profile_dir(self) -> Path:
        return self.session_dir / "profile"

    @property
    def linked_file(self) -> Path:
        """session/linked.json: when this profile was last linked to a phone (written by the worker)."""
        return self.session_dir / "linked.json"

    @property
    def driver_copy_file(self) -> Path:
        """The private chromedriver copy (uc patches the file it is given; the system's one stays intact)."""
        return self.session_dir / "driver" / ("chromedriver.exe" if os.name == "nt" else "chromedriver")

    @property
    def session_backups_dir(self) -> Path:
        return self.session_dir / "backups"

    @property
    def restore_state_file(self) -> Path:
        """session/backups/restore-state.json: the automatic restore's outcome for the current pairing."""
        return self.session_backups_dir / "restore-state.json"

    @property
    def qr_png_file(self) -> Path:
        return self.session_dir / "qr.png"

    @property
    def qr_text_file(self) -> Path:
        return self.session_dir / "qr.txt"

    @property
    def web_version_file(self) -> Path:
        return self.session_dir / "web_version.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def events_file(self) -> Path:
        return self.logs_dir / "events.jsonl"

    @property
    def watchdog_log_file(self) -> Path:
        return self.logs_dir / "watchdog.log"

    @property
    def worker_log_file(self) -> Path:
        return self.logs_dir / "worker.log"

    @property
    def watchdog_out_file(self) -> Path:
        """logs/watchdog.out: a detached watchdog's stdout and stderr."""
        return self.logs_dir / "watchdog.out"

    @property
    def diagnostics_dir(self) -> Path:
        return self.logs_dir / "diagnostics"

    def ensure(self) -> None:
        """Create the directories every process of this instance writes into. HomeLayoutError (naming the path)
        when one of them, or of the files the watchdog writes, is of the wrong kind."""
        for directory in (self.root, self.data_dir, self.run_dir, self.control_dir, self.logs_dir):
            if directory.exists() and not directory.is_dir():
                raise HomeLayoutError(f"{directory} is not a directory; move it away, it must be one")
            directory.mkdir(parents=True, exist_ok=True)
        for file in (self.watchdog_lock_file, self.heartbeat_file, self.watchdog_state_file, self.stop_request_file):
            if file.is_dir():
                raise HomeLayoutError(f"{file} is a directory; remove it (`rmdir`), a file goes there")
