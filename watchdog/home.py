"""The instance directory ("home") and the paths inside it (see DESIGN.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

HOME_ENV = "CONTINUITY_HOME"
HEARTBEAT_ENV = "CONTINUITY_HEARTBEAT"


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
    def session_dir(self) -> Path:
        return self.root / "session"

    @property
    def profile_dir(self) -> Path:
        return self.session_dir / "profile"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def events_file(self) -> Path:
        return self.logs_dir / "events.jsonl"

    def ensure(self) -> None:
        """Create the directories every process of this instance writes into."""
        for directory in (self.data_dir, self.run_dir, self.control_dir, self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
