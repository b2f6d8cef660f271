"""Many accounts, one home each: find the homes under folders and say how each is, one line a home.

`continuity status --all DIR...` uses it: each DIR is a home, or a folder whose subfolders are homes (the layout of
`install systemd --instance`, compose volumes, or a folder of homes made by hand).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .instance import ConfigError, Home, load_config
from .status import EXIT_HEALTHY, EXIT_NOT_RUNNING, EXIT_UNHEALTHY, collect_status

# What only a home holds (a folder with none of them is not taken for one).
_HOME_MARKERS = ("continuity.toml", "run", "data", "session")


def is_home(path: Path) -> bool:
    """True when `path` is a folder that holds a config, or a run/, data/ or session/ folder."""
    return path.is_dir() and any((path / marker).exists() for marker in _HOME_MARKERS)


def find_homes(paths: Iterable[str | Path]) -> list[Home]:
    """The homes named: each path that is a home, else its subfolders that are (sorted by name); each once.

    FileNotFoundError for a path that is not a folder; a folder holding no home gives nothing (the caller says
    so)."""
    found: dict[Path, Home] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is not a folder")
        candidates = [path] if is_home(path) else sorted(p for p in path.iterdir() if is_home(p))
        for candidate in candidates:
            home = Home.resolve(candidate)
            found.setdefault(home.root, home)
    return list(found.values())


def home_status(home: Home) -> tuple[dict[str, Any], int]:
    """`collect_status` of one home with its own config; a bad config or an unreadable home is a report too
    ({"home", "error"}, exit 1), never an exception: one broken home must not hide the others."""
    try:
        return collect_status(home, load_config(home.config_file))
    except (ConfigError, OSError) as exc:
        return {"home": str(home.root), "error": str(exc)}, EXIT_UNHEALTHY


def summary_line(report: dict[str, Any], code: int) -> str:
    """One line: name, watchdog state, health, WhatsApp state, restarts, heartbeat age, first reason, path."""
    name = Path(report["home"]).name
    if "error" in report:
        return f"{name:<16} error        {report['error']}"
    watchdog = report.get("watchdog") or {}
    worker = report.get("worker") or {}
    health = report.get("health") or {}
    whatsapp = (report.get("heartbeat") or {}).get("whatsapp") or {}
    state = "stopped" if code == EXIT_NOT_RUNNING else str(watchdog.get("state", "?"))
    age = worker.get("heartbeat_age_s")
    beat = "-" if age is None else f"{age:.0f}s"
    reasons = health.get("reasons") or []
    parts = [
        f"{name:<16}",
        f"{state:<12}",
        f"{health.get('session_health', '?'):<9}",
        f"whatsapp={whatsapp.get('state', '-'):<12}",
        f"restarts={watchdog.get('restarts_total', 0):<4}",
        f"heartbeat={beat:<6}",
        report["home"],
    ]
    line = " ".join(parts)
    return f"{line}  ({reasons[0]})" if reasons and code != EXIT_NOT_RUNNING else line


def collect_all(homes: Iterable[Home]) -> tuple[list[tuple[dict[str, Any], int]], int]:
    """Each home's (report, exit code), and the overall code: the highest of them (3 when any home has no
    watchdog, else 1 when any is degraded, critical or broken, else 0); 0 for no home at all."""
    results = [home_status(home) for home in homes]
    overall = max((code for _report, code in results), default=EXIT_HEALTHY)
    return results, overall
