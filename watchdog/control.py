"""Actions queued for the worker in run/control/: one request file each, answered by a result file.

Request `run/control/<id>.json`: {"id", "action", "params", "requested_at", "source"}.
Result `run/control/<id>.result.json`: {"id", "action", "ok", "message", "details", "done_at"}.
The CLI (`continuity whatsapp ...`) and the HTTP API write requests; the worker's loop answers them.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomicfile import read_json_or_none, write_json_atomic

WORKER_ACTIONS = (
    "initialize",
    "reconnect",
    "restart-browser",
    "clear-session",
    "health-check",
    "inspect",
    "backup-session",
    "restore-session",
)
_counter = itertools.count()


class ActionTimeout(TimeoutError):
    """The worker did not answer an action in time (it may be restarting, or no worker runs)."""


def new_action_id(clock: Callable[[], float] = time.time) -> str:
    """A sortable, unique id: milliseconds, pid, counter."""
    return f"{int(clock() * 1000):013d}-{os.getpid()}-{next(_counter)}"


def submit(control_dir: Path, action: str, *, params: dict[str, Any] | None = None, source: str = "cli") -> str:
    """Queue `action` for the worker; returns its id. Raises ValueError for an unknown action."""
    if action not in WORKER_ACTIONS:
        raise ValueError(f"unknown action {action!r} (known: {', '.join(WORKER_ACTIONS)})")
    control_dir.mkdir(parents=True, exist_ok=True)
    action_id = new_action_id()
    request = {"id": action_id, "action": action, "params": params or {}, "requested_at": time.time(), "source": source}
    write_json_atomic(control_dir / f"{action_id}.json", request)
    return action_id


def wait_result(
    control_dir: Path,
    action_id: str,
    *,
    timeout_s: float,
    poll_s: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The worker's answer to `action_id`; raises ActionTimeout after `timeout_s` seconds (the request stays queued)."""
    path = control_dir / f"{action_id}.result.json"
    deadline = time.monotonic() + timeout_s
    while True:
        result = read_json_or_none(path)
        if isinstance(result, dict):
            return result
        if time.monotonic() >= deadline:
            raise ActionTimeout(f"no answer from the worker to {action_id} within {timeout_s:g} s")
        sleep(poll_s)


def pending(control_dir: Path) -> list[dict[str, Any]]:
    """Requests not answered yet, oldest first (unreadable request files are answered as failed)."""
    found = []
    try:
        names = sorted(p for p in os.listdir(control_dir) if p.endswith(".json") and not p.endswith(".result.json"))
    except FileNotFoundError:
        return []
    for name in names:
        request = read_json_or_none(control_dir / name)
        if not isinstance(request, dict) or "action" not in request:
            request = {"id": name[: -len(".json")], "action": None, "params": {}}
        request.setdefault("id", name[: -len(".json")])
        found.append(request)
    return found


def answer(control_dir: Path, request: dict[str, Any], *, ok: bool, message: str, **details: Any) -> dict[str, Any]:
    """Write the result of `request` and remove the request file."""
    result = {
        "id": request["id"],
        "action": request.get("action"),
        "ok": ok,
        "message": message,
        "details": json.loads(json.dumps(details, default=str)),
        "done_at": time.time(),
    }
    write_json_atomic(control_dir / f"{request['id']}.result.json", result)
    (control_dir / f"{request['id']}.json").unlink(missing_ok=True)
    return result
