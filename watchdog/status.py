"""What `continuity status` and the API report: watchdog state file, worker liveness, heartbeat, health."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .health import HEALTHY, assess
from .instance import Config, Home, control, pid_alive, read_heartbeat, running_watchdog

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_NOT_RUNNING = 0, 1, 3


def api_status_lines(home_root: str | os.PathLike[str]) -> list[str]:
    """For `continuity status`: where the API listens and where its token is (from run/api.json)."""
    try:
        info = json.loads(Home(Path(home_root)).api_info_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(info, dict) or "url" not in info:
        return []
    where = info.get("token_file") or info.get("token_source") or "[api] token in continuity.toml"
    return [f"api:       {info['url']} (dashboard; token for actions: {where})"]


def collect_status(home: Home, config: Config, *, wall_clock: Any = time.time) -> tuple[dict[str, Any], int]:
    """The status object (DESIGN.md) and the exit code: 0 healthy, 1 degraded or critical, 3 not running."""
    watchdog = running_watchdog(home)
    heartbeat = read_heartbeat(home.heartbeat_file)
    try:
        age: float | None = max(0.0, wall_clock() - os.stat(home.heartbeat_file).st_mtime)
    except OSError:
        age = None
    worker_pid = (watchdog or {}).get("worker_pid") or (heartbeat or {}).get("pid")
    worker = {
        "pid": worker_pid,
        "alive": isinstance(worker_pid, int) and pid_alive(worker_pid),
        "heartbeat_age_s": None if age is None else round(age, 3),
        "heartbeat_readable": heartbeat is not None,
    }
    health = assess(
        watchdog_state=watchdog.get("state") if watchdog else None,
        heartbeat=heartbeat if worker["alive"] else None,
        heartbeat_age_s=age,
        heartbeat_timeout_s=config.watchdog.heartbeat_timeout,
    )
    status = {
        "home": str(home.root),
        "watchdog": watchdog or {"state": "not running"},
        "worker": worker,
        "heartbeat": heartbeat,
        "health": health,
        "queued_actions": queued_actions(home),
    }
    if watchdog is None:
        return status, EXIT_NOT_RUNNING
    return status, EXIT_HEALTHY if health["session_health"] == HEALTHY else EXIT_UNHEALTHY


def queued_actions(home: Home) -> list[dict[str, Any]]:
    """Actions waiting in run/control/ for a worker to take them: action, source, when asked, until when (Unix s)."""
    return [
        {key: request.get(key) for key in ("id", "action", "source", "requested_at", "expires_at")}
        for request in control.pending(home.control_dir)
    ]


def format_status(status: dict[str, Any]) -> str:
    """A few human-readable lines for the terminal."""
    wd, worker, health = status["watchdog"], status["worker"], status["health"]
    lines = [f"home:      {status['home']}"]
    if wd.get("pid"):
        lines.append(f"watchdog:  {wd['state']} (pid {wd['pid']}) - {wd.get('reason', '')}")
        lines.append(
            f"restarts:  {wd.get('restarts_total', 0)} total, {wd.get('restarts_in_window', 0)}/"
            f"{wd.get('restart_limit')} in the last {wd.get('restart_window_s', 0):g} s"
        )
        lines.extend(api_status_lines(status["home"]))
        if wd.get("last_exit"):
            lines.append(f"last exit: {wd['last_exit'].get('description')}")
    else:
        lines.append("watchdog:  not running (start it with: continuity start)")
    age = worker.get("heartbeat_age_s")
    beat = "none" if age is None else f"{age:.1f} s ago" + ("" if worker.get("heartbeat_readable") else " (unreadable)")
    lines.append(f"worker:    {'alive' if worker['alive'] else 'not running'} (pid {worker['pid']}), heartbeat {beat}")
    whatsapp = (status.get("heartbeat") or {}).get("whatsapp") or {}
    if whatsapp:
        lines.append(f"whatsapp:  {whatsapp.get('state')} (quality {whatsapp.get('quality', '-')})")
    if whatsapp.get("pairing_code"):  # `continuity whatsapp link --phone`: the code to type on the phone
        lines.append(f"pairing:   code {whatsapp['pairing_code']} (phone: Linked devices > Link with phone number)")
    sending = (status.get("heartbeat") or {}).get("sending") or {}
    if isinstance(sending.get("paced_until"), int | float):  # over a sending limit: messages wait
        until = time.strftime("%H:%M:%S", time.localtime(sending["paced_until"]))
        held = f"{sending.get('paced_by')} reached, {sending.get('pending')} waiting"
        lines.append(f"sending:   paced until {until} ({held})")
    lines.append(
        f"health:    {health['session_health']}" + (f" - {'; '.join(health['reasons'])}" if health["reasons"] else "")
    )
    if whatsapp.get("web_version"):
        lines.append(f"web:       WhatsApp Web {whatsapp['web_version']}")
    if isinstance(whatsapp.get("profile_mib"), int | float):
        limit = whatsapp.get("session_max_mb")
        lines.append(f"profile:   {whatsapp['profile_mib']:.0f} MiB" + (f" of {limit:g} MiB" if limit else ""))
    for queued in status.get("queued_actions") or ():
        until = queued.get("expires_at")
        when = time.strftime("%H:%M:%S", time.localtime(until)) if isinstance(until, int | float) else "?"
        lines.append(f"queued:    {queued.get('action')} from {queued.get('source')}, for a worker until {when}")
    lines.extend(f"warning:   {text}" for text in health.get("warnings") or ())
    for name, on in health["recommendations"].items():
        if on:
            lines.append(f"recommend: {name}" + (f": {on}" if isinstance(on, str) else ""))
    return "\n".join(lines)
